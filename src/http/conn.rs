//! Serving the HTTP endpoints' connections with the guards a listener reachable by strangers
//! needs: who may connect is decided at accept, before a byte is read; connections are capped
//! in all and per client; request headers must arrive soon and be small; no connection lives
//! for ever. Without these, idle or slow connections from anyone could take every file
//! descriptor of the process, and DNS with them (hyper and axum leave all of it to the
//! caller).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::places::Places;

/// The limits of one endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    /// Connections at once, all clients together.
    pub connections: usize,
    /// Connections at once from one client (an IPv4 address, an IPv6 /64).
    pub per_client: usize,
    /// A request's headers must be complete this long after the connection is ready for one
    /// (also the longest a kept-alive connection waits idle).
    pub header_timeout: Duration,
    /// A connection is closed this long after it was accepted, whatever it is doing (a
    /// browser or Prometheus simply opens another).
    pub lifetime: Duration,
    /// Largest request head (request line and headers) read into memory.
    pub max_head: usize,
}

impl Guard {
    /// The operator's endpoint (`[http]`): a few people and a scraper.
    pub const ENDPOINT: Guard = Guard {
        connections: 128,
        per_client: 16,
        header_timeout: Duration::from_secs(5),
        lifetime: Duration::from_secs(60),
        max_head: 16 * 1024,
    };
    /// The webhook endpoint: ZeroTier Central delivering, one request per connection. A
    /// larger head than the operator's endpoint: the signature header may list several
    /// signatures (the verifier refuses too many before computing any).
    pub const WEBHOOK: Guard = Guard {
        connections: 64,
        per_client: 16,
        header_timeout: Duration::from_secs(5),
        lifetime: Duration::from_secs(30),
        max_head: 64 * 1024,
    };
}

/// Refusals being written at once (a short answer, then close): beyond this a refused
/// connection is closed without one.
const REFUSALS: usize = 64;
/// How long a refusal may take to write and to see the client's request drained.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// Serves `app` on `listener` until `shutdown`: a client that `admit` refuses gets a 403 and
/// is closed; one over the caps a 503. Requests under way at shutdown are finished (within
/// `lifetime`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    admit: impl Fn(IpAddr) -> bool,
    guard: Guard,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let places = Places::default();
    let refusing = Places::default();
    let tasks = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors, usually: back off instead of spinning.
                tracing::debug!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ip = peer.ip().to_canonical();
        let admitted = ip.is_loopback() || admit(ip);
        let place = admitted
            .then(|| places.take(ip, guard.connections, guard.per_client))
            .flatten();
        let Some(place) = place else {
            let answer = if admitted { BUSY } else { FORBIDDEN };
            if let Some(place) = refusing.take(ip, REFUSALS, 2) {
                tasks.spawn(async move {
                    let _place = place;
                    refuse(stream, answer).await;
                });
            }
            continue;
        };
        let (app, shutdown) = (app.clone(), shutdown.clone());
        tasks.spawn(async move {
            let _place = place;
            connection(stream, peer, app, guard, shutdown).await;
        });
    }
    tasks.close();
    tasks.wait().await;
    Ok(())
}

const FORBIDDEN: &str =
    "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nconnection: close\r\n\
    content-length: 45\r\n\r\nnot allowed: add this client to [http] allow\n";
const BUSY: &str = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
    connection: close\r\ncontent-length: 45\r\n\r\ntoo many connections: try again in a moment\n";

/// Writes a canned answer without reading the request, and closes once the client's request
/// has been read away (closing with unread data would reset the connection before the client
/// reads the answer), all within [`REFUSAL_TIME`].
async fn refuse(mut stream: TcpStream, answer: &str) {
    let _ = tokio::time::timeout(REFUSAL_TIME, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}

/// One admitted connection: HTTP/1.1 with the guard's timeouts and bounds.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    guard: Guard,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    serve_io(stream, peer, app, guard, shutdown).await;
}

/// Serves HTTP/1.1 requests arriving on `io` from `peer` until the client closes, the guard's
/// bounds end it, or `shutdown` (the request under way is finished). The byte stream is any
/// transport: a TCP connection here, an in-memory one for the fuzz target.
pub async fn serve_io<IO>(
    io: IO,
    peer: SocketAddr,
    app: Router,
    guard: Guard,
    shutdown: CancellationToken,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Handlers may ask who is asking (`ConnectInfo`), as with axum's own server.
    let app = app.layer(axum::Extension(axum::extract::ConnectInfo(peer)));
    let service = TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(guard.header_timeout)
        .max_buf_size(guard.max_head.max(8192))
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let deadline = tokio::time::sleep(guard.lifetime);
    tokio::pin!(deadline);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(client = %peer, error = %e, "http connection ended");
            }
        }
        _ = &mut deadline => {}
        _ = shutdown.cancelled() => {
            // Finish the request under way, take no more.
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}
