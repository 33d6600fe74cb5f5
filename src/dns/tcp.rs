//! TCP serving (RFC 1035 4.2.2, RFC 7766): length-prefixed messages, several queries per
//! connection (pipelined queries read and answered in batches), zone transfers for
//! `[transfer] allow`, a task per connection, capped in number and idle time.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use super::answer::Transport;
use super::context::Context;
use super::request::{self, Action, Client};

/// The send buffer of each connection: a few large answers, or a transfer's message or two.
const SEND_BUFFER: usize = 64 * 1024;

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
        let rules = ctx.rules();
        if !rules.policy(peer.ip()).allowed && !rules.transfer_listed(peer.ip()) {
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

/// How much of a connection's incoming bytes are read at once: pipelined queries then cost
/// one system call for many, not two each.
const READ_BUFFER: usize = 16 * 1024;
/// Answers gathered before they are written: while more queries are already read, their
/// answers go out together.
const WRITE_BUFFER: usize = 16 * 1024;

type Reader = BufReader<OwnedReadHalf>;
type Writer = BufWriter<OwnedWriteHalf>;

/// Reads the next query's length; `None` when the connection is to end (closed by the
/// client, idle too long, or the server shutting down between queries).
async fn next_length(reader: &mut Reader, ctx: &Context) -> io::Result<Option<usize>> {
    tokio::select! {
        _ = ctx.shutdown.cancelled() => Ok(None),
        read = timeout(ctx.tcp_idle(), reader.read_u16()) => match read {
            Err(_) => Ok(None),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Ok(r) => r.map(|len| Some(usize::from(len))),
        },
    }
}

/// Whether a whole next query is already read: its answer can wait to go out with this one.
fn next_query_read(reader: &Reader) -> bool {
    let buffered = reader.buffer();
    buffered.len() >= 2
        && buffered.len() >= 2 + usize::from(u16::from_be_bytes([buffered[0], buffered[1]]))
}

/// One connection: queries in order, each answered before the next is read. What each gets
/// is decided by [`request::handle`], as for UDP. Answers to pipelined queries that were read
/// together are written together.
async fn serve_connection(stream: TcpStream, ctx: &Context, peer: SocketAddr) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    // A fixed, small send buffer (instead of the kernel's, which grows to megabytes): a
    // client that pipelines queries and never reads fills it within a few hundred answers
    // and meets the write timeout, rather than parking a megabyte per connection.
    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
    let (reader, writer) = stream.into_split();
    let mut reader = BufReader::with_capacity(READ_BUFFER, reader);
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER, writer);
    let mut query = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(2048);
    while let Some(len) = next_length(&mut reader, ctx).await? {
        query.resize(len, 0);
        timeout(ctx.tcp_idle(), reader.read_exact(&mut query))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "query body timed out"))??;
        let started = Instant::now();
        // The zone is held for the whole decision: a transfer must not mix serials.
        let action = {
            let (rules, zone) = (ctx.rules(), ctx.zone.load());
            let client = Client::new(&rules, &zone, peer.ip());
            request::handle(
                ctx,
                &rules,
                &zone,
                &query,
                &client,
                Transport::Tcp,
                &mut out,
            )
        };
        match action {
            Action::Drop => break,
            Action::Messages(messages) => {
                if let Some(first) = messages.first() {
                    ctx.answered(&query, first, peer, started);
                }
                for m in &messages {
                    write_frame(&mut writer, m, ctx).await?;
                }
            }
            Action::Reply => {
                ctx.answered(&query, &out, peer, started);
                write_frame(&mut writer, &out, ctx).await?;
            }
            Action::Update(pending) => {
                flush(&mut writer, ctx).await?;
                let reply = super::update::answer(ctx.updater(), *pending).await;
                ctx.answered(&query, &reply, peer, started);
                write_frame(&mut writer, &reply, ctx).await?;
            }
            Action::Forward { chain } => {
                // Upstreams take milliseconds: what is answered so far goes out first.
                flush(&mut writer, ctx).await?;
                let partial = chain.then(|| std::mem::take(&mut out));
                let client = peer.ip();
                (ctx.forwarded(&query, partial.as_deref(), client, Transport::Tcp, &mut out)).await;
                ctx.answered(&query, &out, peer, started);
                write_frame(&mut writer, &out, ctx).await?;
            }
        }
        if !next_query_read(&reader) {
            flush(&mut writer, ctx).await?;
        }
    }
    flush(&mut writer, ctx).await
}

/// One length-prefixed message into the connection's buffer (written out when it fills),
/// within the write timeout: a client that sends queries but does not read the answers is
/// dropped once the buffers are full.
async fn write_frame(writer: &mut Writer, message: &[u8], ctx: &Context) -> io::Result<()> {
    let len = (message.len() as u16).to_be_bytes();
    let write = async {
        writer.write_all(&len).await?;
        writer.write_all(message).await
    };
    timeout(ctx.tcp_write_timeout(), write)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client does not read"))?
}

/// Writes out the answers gathered, within the write timeout.
async fn flush(writer: &mut Writer, ctx: &Context) -> io::Result<()> {
    timeout(ctx.tcp_write_timeout(), writer.flush())
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client does not read"))?
}
