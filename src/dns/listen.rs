//! UDP and TCP listeners: read a query, answer it from the current zone, write the response.
//!
//! Answers come from memory, so each socket answers in its own loop with no task per query;
//! TCP connections get a task each, capped in number and idle time.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::time::timeout;

use super::answer::{respond, Outcome, Transport};
use super::SharedZone;

/// A TCP client that sends nothing for this long is disconnected (RFC 7766 6.2.3).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// At most this many TCP connections at once; more are closed at accept.
const TCP_MAX_CONNECTIONS: usize = 512;
/// Largest query we read over UDP; larger datagrams are cut and then fail to parse.
const UDP_RECV_BUFFER: usize = 4096;
/// Kernel socket buffers: absorb bursts instead of dropping them (the kernel caps this at
/// net.core.rmem_max / wmem_max).
const UDP_SOCKET_BUFFER: usize = 4 << 20;

/// One address's sockets, bound and ready to serve.
pub struct Bound {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
}

impl Bound {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }
}

/// Binds UDP and TCP on `ip:port`. Port 0 lets the OS choose for UDP and TCP takes the same
/// number, so one port serves both (tests use this).
pub async fn bind(ip: IpAddr, port: u16) -> io::Result<Bound> {
    let mut last_err = None;
    for _ in 0..20 {
        let udp = udp_socket(SocketAddr::new(ip, port))?;
        let chosen = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(ip, chosen)).await {
            Ok(tcp) => return Ok(Bound { udp, tcp }),
            // With port 0 the UDP number may be taken for TCP: try another.
            Err(e) if port == 0 && e.kind() == io::ErrorKind::AddrInUse => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free port")))
}

fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    // Best effort: a smaller buffer still works, it just drops sooner under a flood.
    let _ = sock.set_recv_buffer_size(UDP_SOCKET_BUFFER);
    let _ = sock.set_send_buffer_size(UDP_SOCKET_BUFFER);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

/// Serves one address until the process ends.
pub fn spawn(bound: Bound, zone: SharedZone) {
    let Bound { udp, tcp } = bound;
    tokio::spawn(serve_udp(udp, zone.clone()));
    tokio::spawn(serve_tcp(tcp, zone));
}

async fn serve_udp(sock: UdpSocket, zone: SharedZone) {
    let mut buf = vec![0u8; UDP_RECV_BUFFER];
    let mut out = Vec::with_capacity(2048);
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "udp receive failed");
                continue;
            }
        };
        let outcome = respond(&zone.load(), &buf[..n], Transport::Udp, &mut out);
        if let Outcome::Reply { .. } = outcome {
            if let Err(e) = sock.send_to(&out, peer).await {
                tracing::debug!(client = %peer, error = %e, "udp send failed");
            }
        }
    }
}

async fn serve_tcp(listener: TcpListener, zone: SharedZone) {
    let slots = Arc::new(Semaphore::new(TCP_MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                tracing::warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(client = %peer, "too many tcp connections: closing");
            continue;
        };
        let zone = zone.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_connection(stream, zone).await {
                tracing::debug!(client = %peer, error = %e, "tcp connection ended");
            }
            drop(permit);
        });
    }
}

/// RFC 1035 4.2.2 framing: a 2-byte length before each message; several queries per connection.
async fn serve_connection(mut stream: TcpStream, zone: SharedZone) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut query = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(2048);
    let mut frame = Vec::with_capacity(2048);
    loop {
        let len = match timeout(TCP_IDLE, stream.read_u16()).await {
            Err(_) => return Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => usize::from(r?),
        };
        query.resize(len, 0);
        timeout(TCP_IDLE, stream.read_exact(&mut query))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "query body timed out"))??;
        match respond(&zone.load(), &query, Transport::Tcp, &mut out) {
            Outcome::Drop => return Ok(()),
            Outcome::Reply { .. } => {
                frame.clear();
                frame.extend_from_slice(&(out.len() as u16).to_be_bytes());
                frame.extend_from_slice(&out);
                stream.write_all(&frame).await?;
            }
        }
    }
}
