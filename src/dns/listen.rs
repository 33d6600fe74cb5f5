//! UDP and TCP listeners: read a query, answer it from the current zone, write the response.
//!
//! Answers come from memory, so each socket answers in its own loop with no task per query;
//! TCP connections get a task each, capped in number and idle time. [`Listeners`] keeps one
//! pair of sockets per address and follows the wanted set as addresses come and go.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use std::net::UdpSocket;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;

use tokio::task::JoinHandle;

use arc_swap::{ArcSwap, ArcSwapOption};
use ipnet::IpNet;

use super::access::SharedAcl;
use super::answer::{respond, Outcome, Policy, Transport};
use super::forward::Forwarder;
use super::udp::UdpServer;
use super::wire;
use super::wire::wire_to_text;
use super::{transfer, SharedZone};
use crate::metrics::Telemetry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// A TCP client that sends nothing for this long is disconnected (RFC 7766 6.2.3).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// At most this many TCP connections at once; more are closed at accept.
const TCP_MAX_CONNECTIONS: usize = 512;
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
    sock.bind(&addr.into())?;
    Ok(sock.into())
}

/// Why an address could not be served.
#[derive(Debug)]
pub enum BindError {
    /// Will not fix itself: the process may not bind this port.
    Permission {
        address: SocketAddr,
        source: io::Error,
    },
    /// May fix itself (address not there yet, port busy): retried on the next check.
    Other {
        address: SocketAddr,
        source: io::Error,
    },
}

/// Which view a listener answers from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum View {
    /// The ZeroTier side: members, private records, forwarding, for allowed clients only.
    Backhaul,
    /// `[public]` addresses: the public zone for everyone; never forwards, never transfers.
    Public,
}

impl View {
    pub fn name(self) -> &'static str {
        match self {
            View::Backhaul => "backhaul",
            View::Public => "public",
        }
    }
}

/// What every listener of one view shares: the zone, who may ask, who may transfer, the
/// forwarder. The parts a reload may change are swapped in place.
pub struct Context {
    pub view: View,
    pub zone: SharedZone,
    pub acl: SharedAcl,
    /// Networks allowed to AXFR (over TCP).
    pub transfer: ArcSwap<Vec<IpNet>>,
    /// `None` when forwarding is off: other names get REFUSED.
    pub forwarder: ArcSwapOption<Forwarder>,
    /// Bounds forwarded UDP queries in flight, so a flood cannot pile up tasks.
    pub forward_slots: Semaphore,
    pub telemetry: Arc<Telemetry>,
    /// `[log] queries`: one line per query.
    pub log_queries: AtomicBool,
}

impl Context {
    pub fn new(
        view: View,
        zone: SharedZone,
        acl: SharedAcl,
        transfer: Vec<IpNet>,
        forwarder: Option<Forwarder>,
        telemetry: Arc<Telemetry>,
    ) -> Context {
        Context {
            view,
            zone,
            acl,
            transfer: ArcSwap::from_pointee(transfer),
            forwarder: ArcSwapOption::from(forwarder.map(Arc::new)),
            forward_slots: Semaphore::new(FORWARD_MAX_IN_FLIGHT),
            telemetry,
            log_queries: AtomicBool::new(false),
        }
    }

    /// Counts an answered query and, with `[log] queries`, logs it.
    pub(super) fn answered(
        &self,
        query: &[u8],
        response: &[u8],
        client: SocketAddr,
        started: Instant,
    ) {
        let took = started.elapsed();
        let qtype = wire::qtype(query).unwrap_or(0);
        let rcode = response.get(3).map_or(2, |b| u16::from(b & 0x0f));
        self.telemetry.query(self.view, qtype, rcode, took);
        if self.log_queries.load(Ordering::Relaxed) {
            let name = wire::parse(query)
                .ok()
                .and_then(|r| r.question.map(|q| wire_to_text(q.name.wire())))
                .unwrap_or_default();
            tracing::info!(target: "backhaul_dns::query", %client, name,
                qtype = %hickory_proto::rr::RecordType::from(qtype),
                rcode = crate::metrics::rcode_name(rcode), latency_us = took.as_micros() as u64,
                view = self.view.name(), "query");
        }
    }

    pub(super) fn policy(&self, client: IpAddr) -> Policy {
        match self.view {
            View::Public => Policy {
                allowed: true,
                forward: false,
            },
            View::Backhaul => Policy {
                allowed: self.acl.load().allows(client),
                forward: self.forwarder.load().is_some(),
            },
        }
    }

    fn may_transfer(&self, client: IpAddr) -> bool {
        self.view == View::Backhaul && self.transfer.load().iter().any(|n| n.contains(&client))
    }
}

/// Forwarded UDP queries waiting for upstreams at once; beyond this, SERVFAIL at once.
const FORWARD_MAX_IN_FLIGHT: usize = 1024;

/// The sockets being served, one UDP and one TCP per address.
pub struct Listeners {
    port: u16,
    ctx: Arc<Context>,
    active: BTreeMap<IpAddr, Active>,
}

struct Active {
    local: SocketAddr,
    /// Dropping it stops the UDP threads, which close the socket.
    _udp: UdpServer,
    tcp: JoinHandle<()>,
}

impl Drop for Active {
    /// Ending the TCP task drops its listener: the address is closed at once.
    fn drop(&mut self) {
        self.tcp.abort();
    }
}

impl Listeners {
    pub fn new(port: u16, ctx: Arc<Context>) -> Listeners {
        Listeners {
            port,
            ctx,
            active: BTreeMap::new(),
        }
    }

    /// Serves exactly `want`: binds what is new, closes what is gone. Addresses that fail to
    /// bind are returned (and left for the next call to retry).
    pub async fn set(&mut self, want: &[IpAddr]) -> Vec<BindError> {
        let gone: Vec<IpAddr> = self
            .active
            .keys()
            .filter(|ip| !want.contains(ip))
            .copied()
            .collect();
        for ip in gone {
            if let Some(a) = self.active.remove(&ip) {
                tracing::info!(address = %a.local, "stopped listening (address gone)");
            }
        }
        let mut errors = Vec::new();
        for ip in want {
            if self.active.contains_key(ip) {
                continue;
            }
            match bind(*ip, self.port).await {
                Ok(bound) => {
                    let local = bound
                        .local_addr()
                        .unwrap_or(SocketAddr::new(*ip, self.port));
                    tracing::info!(address = %local, view = self.ctx.view.name(), "listening (udp and tcp)");
                    let Bound { udp, tcp } = bound;
                    let udp = match UdpServer::start(udp, self.ctx.clone()) {
                        Ok(u) => u,
                        Err(source) => {
                            let address = local;
                            errors.push(BindError::Other { address, source });
                            continue;
                        }
                    };
                    let tcp = tokio::spawn(serve_tcp(tcp, self.ctx.clone()));
                    self.active.insert(
                        *ip,
                        Active {
                            local,
                            _udp: udp,
                            tcp,
                        },
                    );
                }
                Err(source) => {
                    let address = SocketAddr::new(*ip, self.port);
                    errors.push(if source.kind() == io::ErrorKind::PermissionDenied {
                        BindError::Permission { address, source }
                    } else {
                        BindError::Other { address, source }
                    });
                }
            }
        }
        errors
    }

    /// Addresses served right now.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.active.keys().copied().collect()
    }
}

/// Upstreams take milliseconds: resolve in a task so the socket keeps answering meanwhile.
/// `partial`: our answer whose CNAME chain the upstreams are to complete.
pub(super) fn forward_udp(
    sock: &Arc<std::net::UdpSocket>,
    ctx: &Arc<Context>,
    runtime: &tokio::runtime::Handle,
    query: &[u8],
    partial: Option<&[u8]>,
    peer: SocketAddr,
    started: Instant,
) {
    let (sock, ctx, query) = (sock.clone(), ctx.clone(), query.to_vec());
    let partial = partial.map(<[u8]>::to_vec);
    runtime.spawn(async move {
        let Ok(_slot) = ctx.forward_slots.try_acquire() else {
            tracing::debug!(client = %peer, "too many forwarded queries in flight: dropped");
            return;
        };
        let Some(forwarder) = ctx.forwarder.load_full() else {
            return;
        };
        let mut out = Vec::with_capacity(512);
        let upstream_ok = match &partial {
            None => forwarder.answer(&query, Transport::Udp, &mut out).await,
            Some(p) => (forwarder.complete_chain(&query, p, Transport::Udp, &mut out)).await,
        };
        ctx.telemetry.forwarded(upstream_ok);
        if !out.is_empty() {
            // One datagram on a socket with a 4 MiB send buffer: this does not wait.
            let _ = sock.send_to(&out, peer);
            ctx.answered(&query, &out, peer, started);
        }
    });
}

async fn serve_tcp(listener: TcpListener, ctx: Arc<Context>) {
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
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_connection(stream, &ctx, peer).await {
                tracing::debug!(client = %peer, error = %e, "tcp connection ended");
            }
            drop(permit);
        });
    }
}

/// RFC 1035 4.2.2 framing: a 2-byte length before each message; several queries per connection.
async fn serve_connection(
    mut stream: TcpStream,
    ctx: &Context,
    peer: SocketAddr,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let policy = ctx.policy(peer.ip());
    let may_transfer = ctx.may_transfer(peer.ip());
    let mut query = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(2048);
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
        let started = Instant::now();
        if may_transfer && transfer::is_transfer(&query) {
            // Hold one zone for the whole transfer: a swap mid-way must not mix two serials.
            let current = ctx.zone.load_full();
            if let Some(messages) = transfer::axfr(&current, &query) {
                for m in &messages {
                    write_frame(&mut stream, m).await?;
                }
                if let Some(first) = messages.first() {
                    ctx.answered(&query, first, peer, started);
                }
                continue;
            }
        }
        match respond(&ctx.zone.load(), &query, Transport::Tcp, policy, &mut out) {
            Outcome::Drop => return Ok(()),
            Outcome::Reply { .. } => {
                write_frame(&mut stream, &out).await?;
                ctx.answered(&query, &out, peer, started);
            }
            Outcome::Forward => {
                if let Some(f) = ctx.forwarder.load_full() {
                    let ok = f.answer(&query, Transport::Tcp, &mut out).await;
                    ctx.telemetry.forwarded(ok);
                    if !out.is_empty() {
                        write_frame(&mut stream, &out).await?;
                        ctx.answered(&query, &out, peer, started);
                    }
                }
            }
            Outcome::ForwardChain => {
                let partial = std::mem::take(&mut out);
                if let Some(f) = ctx.forwarder.load_full() {
                    let ok = (f.complete_chain(&query, &partial, Transport::Tcp, &mut out)).await;
                    ctx.telemetry.forwarded(ok);
                }
                // Without a forwarder (a reload just turned it off), our part is the answer.
                let reply = if out.is_empty() { &partial } else { &out };
                write_frame(&mut stream, reply).await?;
                ctx.answered(&query, reply, peer, started);
            }
        }
    }
}

/// One length-prefixed message, in a single write.
async fn write_frame(stream: &mut TcpStream, message: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(2 + message.len());
    frame.extend_from_slice(&(message.len() as u16).to_be_bytes());
    frame.extend_from_slice(message);
    stream.write_all(&frame).await
}
