//! TCP serving (RFC 1035 4.2.2, RFC 7766): length-prefixed messages, several queries per
//! connection, zone transfers for `[transfer] allow`, a task per connection, capped in number
//! and idle time.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use super::answer::{respond, Outcome, Transport};
use super::context::Context;
use super::{signed, transfer};

/// Accepts connections until shutdown; each is served by a task of its own. A client that
/// may neither query nor transfer is closed at accept, as is one over the caps of
/// `[listen] tcp_*` (in all, per client).
pub async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                tracing::warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if !ctx.policy(peer.ip()).allowed && !ctx.may_transfer(peer.ip()) {
            tracing::debug!(client = %peer, "tcp from a client that may not ask: closing");
            continue;
        }
        let Some(slot) = ctx.tcp_slot(peer.ip()) else {
            tracing::debug!(client = %peer, "too many tcp connections: closing");
            continue;
        };
        let conn_ctx = ctx.clone();
        ctx.tasks.spawn(async move {
            let _slot = slot;
            if let Err(e) = serve_connection(stream, &conn_ctx, peer).await {
                tracing::debug!(client = %peer, error = %e, "tcp connection ended");
            }
        });
    }
}

/// Reads the next query's length; `None` when the connection is to end (closed by the
/// client, idle too long, or the server shutting down between queries).
async fn next_length(stream: &mut TcpStream, ctx: &Context) -> io::Result<Option<usize>> {
    tokio::select! {
        _ = ctx.shutdown.cancelled() => Ok(None),
        read = timeout(ctx.tcp_idle(), stream.read_u16()) => match read {
            Err(_) => Ok(None),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Ok(r) => r.map(|len| Some(usize::from(len))),
        },
    }
}

/// One connection: queries in order, each answered before the next is read.
async fn serve_connection(
    mut stream: TcpStream,
    ctx: &Context,
    peer: SocketAddr,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let policy = ctx.policy(peer.ip());
    let listed = ctx.may_transfer(peer.ip());
    let may_transfer = ctx.transfer_allowed(peer.ip(), None);
    let mut query = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(2048);
    while let Some(len) = next_length(&mut stream, ctx).await? {
        query.resize(len, 0);
        timeout(ctx.tcp_idle(), stream.read_exact(&mut query))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "query body timed out"))??;
        let started = Instant::now();
        if listed && transfer::is_transfer(&query) {
            if !may_transfer {
                // Its allow entry names a key: REFUSED below, as to anyone else.
                ctx.unsigned_transfer(peer.ip());
            } else {
                // Hold one zone for the whole transfer: a swap mid-way must not mix serials.
                let current = ctx.zone.load_full();
                let reply = transfer::reply(&current, &query, None);
                ctx.transferred(&query, &reply, peer.ip(), None);
                write_all(&mut stream, &reply.messages, ctx, &query, peer, started).await?;
                continue;
            }
        }
        match respond(&ctx.zone.load(), &query, Transport::Tcp, policy, &mut out) {
            Outcome::Drop => return Ok(()),
            Outcome::Signed(at) => {
                let current = ctx.zone.load_full();
                let messages =
                    signed::replies(ctx, &current, &query, at, Transport::Tcp, peer.ip());
                write_all(&mut stream, &messages, ctx, &query, peer, started).await?;
                continue;
            }
            Outcome::Reply { .. } => {}
            Outcome::Forward => ctx.forwarded(&query, None, Transport::Tcp, &mut out).await,
            Outcome::ForwardChain => {
                let partial = std::mem::take(&mut out);
                (ctx.forwarded(&query, Some(&partial), Transport::Tcp, &mut out)).await;
            }
        }
        write_frame(&mut stream, &out, ctx).await?;
        ctx.answered(&query, &out, peer, started);
    }
    Ok(())
}

/// The messages of one reply (a transfer's, or one), each in its frame; the first is counted.
async fn write_all(
    stream: &mut TcpStream,
    messages: &[Vec<u8>],
    ctx: &Context,
    query: &[u8],
    peer: SocketAddr,
    started: Instant,
) -> io::Result<()> {
    for m in messages {
        write_frame(stream, m, ctx).await?;
    }
    if let Some(first) = messages.first() {
        ctx.answered(query, first, peer, started);
    }
    Ok(())
}

/// One length-prefixed message, in a single write, within the write timeout: a client that
/// sends queries but does not read the answers is dropped once the buffers are full.
async fn write_frame(stream: &mut TcpStream, message: &[u8], ctx: &Context) -> io::Result<()> {
    let mut frame = Vec::with_capacity(2 + message.len());
    frame.extend_from_slice(&(message.len() as u16).to_be_bytes());
    frame.extend_from_slice(message);
    let limit = ctx.tcp_limits.load().write_timeout;
    timeout(limit, stream.write_all(&frame))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client does not read"))?
}
