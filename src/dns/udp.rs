//! UDP serving with batched system calls: threads read up to [`BATCH`] queries with one
//! recvmmsg(2), answer them from memory and send the answers with one sendmmsg(2).
//!
//! Profiling showed three quarters of the time per UDP query in the kernel, much of it the
//! cost of one receive and one send system call (plus an epoll wake-up) per query. Batching
//! pays those once per burst; answers need no waiting, so a plain thread per core on the
//! socket is all it takes. What each query gets is decided by [`super::request`]; forwarded
//! queries go to the async runtime.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use super::answer::{reply_with, Outcome, Rcode, Transport};
use super::context::{summary, Context};
use super::request::{self, Action, Client};

/// Queries taken per system call.
const BATCH: usize = 32;
/// Largest query read; larger datagrams are cut and then fail to parse.
const RECV_BUFFER: usize = 4096;
/// Receive buffers lie this far apart: a cache line more than their size, so that their
/// first lines (all a query fills) fall in different sets of the L1 cache. At exactly 4 KiB
/// apart every buffer's start competes for the same set.
const RECV_STRIDE: usize = RECV_BUFFER + 64;
/// Room for an answer: beyond the largest UDP answer, and not a power of two, for the same
/// reason as [`RECV_STRIDE`].
const ANSWER_ROOM: usize = 2048 + 64;
/// How often a blocked thread looks at the stop flag even when nothing wakes it.
const STOP_CHECK: Duration = Duration::from_millis(500);
/// Threads per socket, at most: more than the cores available just take turns.
const MAX_THREADS: usize = 4;

/// The threads serving one UDP socket; dropping it stops them and closes the socket.
pub struct UdpServer {
    socket: Arc<UdpSocket>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl UdpServer {
    /// Serves `socket` (bound, any blocking mode) from one thread per available core.
    pub fn start(socket: UdpSocket, ctx: Arc<Context>) -> io::Result<UdpServer> {
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(STOP_CHECK))?;
        let socket = Arc::new(socket);
        let stop = Arc::new(AtomicBool::new(false));
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(MAX_THREADS);
        let runtime = Handle::current();
        let mut server = UdpServer {
            socket: socket.clone(),
            stop: stop.clone(),
            threads: Vec::with_capacity(threads),
        };
        for i in 0..threads {
            let (socket, ctx, stop, runtime) =
                (socket.clone(), ctx.clone(), stop.clone(), runtime.clone());
            // On an error the threads started so far stop when `server` is dropped.
            server.threads.push(
                std::thread::Builder::new()
                    .name(format!("dns-udp-{i}"))
                    .spawn(move || serve(&socket, &ctx, &stop, &runtime))?,
            );
        }
        Ok(server)
    }

    /// Stops the threads after the batch each is answering, and returns them to be joined
    /// (shutdown: every query read is answered).
    pub fn stop(mut self) -> Vec<std::thread::JoinHandle<()>> {
        std::mem::take(&mut self.threads)
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes every thread blocked in recvmmsg at once (on an unconnected UDP socket the call
        // reports ENOTCONN but still marks the socket shut and wakes its readers).
        // SAFETY: a valid descriptor, owned by `self.socket`.
        unsafe { libc::shutdown(self.socket.as_raw_fd(), libc::SHUT_RD) };
    }
}

/// Receive and send state for one thread, allocated once.
struct Batch {
    bufs: Vec<[u8; RECV_STRIDE]>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    outs: Vec<Vec<u8>>,
    send_iovs: Vec<libc::iovec>,
    send_hdrs: Vec<libc::mmsghdr>,
    /// The sender of each query read and what it may have done for it, worked out in a pass
    /// of their own before any query is answered: once per client and batch, compared with
    /// the previous sender as the kernel wrote the address. (Decoding every address into a
    /// `SocketAddr` cost a stall per query: it is stored a byte and a word at a time and read
    /// back whole at once, which the CPU cannot forward from its store buffer.)
    clients: Vec<Option<Client>>,
    /// Which received query each queued answer belongs to (its sender is in `addrs`).
    replied: Vec<usize>,
    /// Receive headers used by the last call, to be pointed at their buffers again.
    used: usize,
}

impl Batch {
    fn new() -> Batch {
        // SAFETY: all-zero is a valid value of these plain C structs (null pointers, zero
        // lengths), and every pointer in them is set by `arm` or `queue` before a system call.
        let zero_iov = || unsafe { zeroed::<libc::iovec>() };
        // SAFETY: as above.
        let zero_hdr = || unsafe { zeroed::<libc::mmsghdr>() };
        // SAFETY: as above; an all-zero sockaddr_storage is an unspecified address.
        let zero_addr = || unsafe { zeroed::<libc::sockaddr_storage>() };
        Batch {
            bufs: vec![[0u8; RECV_STRIDE]; BATCH],
            addrs: (0..BATCH).map(|_| zero_addr()).collect(),
            iovs: (0..BATCH).map(|_| zero_iov()).collect(),
            hdrs: (0..BATCH).map(|_| zero_hdr()).collect(),
            outs: (0..BATCH)
                .map(|_| Vec::with_capacity(ANSWER_ROOM))
                .collect(),
            send_iovs: (0..BATCH).map(|_| zero_iov()).collect(),
            send_hdrs: (0..BATCH).map(|_| zero_hdr()).collect(),
            clients: vec![None; BATCH],
            replied: Vec::with_capacity(BATCH),
            used: BATCH,
        }
    }

    /// Points the receive headers the last call used at their buffer and address slot again
    /// (the kernel overwrites lengths on each call; the others are as armed before).
    fn arm(&mut self) {
        for i in 0..self.used {
            self.iovs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: RECV_BUFFER,
            };
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
    }

    /// Queues the answer in `outs[i]` for the sender of query `i`.
    fn queue(&mut self, i: usize) {
        let k = self.replied.len();
        self.send_iovs[k] = libc::iovec {
            iov_base: self.outs[i].as_mut_ptr().cast(),
            iov_len: self.outs[i].len(),
        };
        let h = &mut self.send_hdrs[k].msg_hdr;
        h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
        h.msg_namelen = self.hdrs[i].msg_hdr.msg_namelen;
        h.msg_iov = &mut self.send_iovs[k];
        h.msg_iovlen = 1;
        self.replied.push(i);
    }
}

fn serve(socket: &Arc<UdpSocket>, ctx: &Arc<Context>, stop: &AtomicBool, runtime: &Handle) {
    let fd = socket.as_raw_fd();
    let mut b = Batch::new();
    while !stop.load(Ordering::Relaxed) {
        b.arm();
        // SAFETY: `hdrs` holds BATCH headers pointing into buffers owned by `b`, which outlives
        // the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                b.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        // What the call filled in is armed again before the next; after a failure, all.
        b.used = if n > 0 { n as usize } else { BATCH };
        if n <= 0 {
            if n < 0 {
                let e = io::Error::last_os_error();
                if !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) {
                    tracing::debug!(error = %e, "udp receive failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            continue;
        }
        let started = Instant::now();
        // One load of the zone and the rules per batch, not per query.
        let zone = ctx.zone.load();
        let rules = ctx.rules();
        b.replied.clear();
        let mut last: Option<Client> = None;
        for i in 0..n as usize {
            b.clients[i] = match last {
                Some(known) if sent_from(&b.addrs[i], known.ip) => last,
                _ => {
                    last = peer(&b.addrs[i]).map(|p| Client::new(&rules, &zone, p.ip()));
                    last
                }
            };
        }
        for i in 0..n as usize {
            let len = (b.hdrs[i].msg_len as usize).min(RECV_BUFFER);
            let Some(client) = &b.clients[i] else {
                continue;
            };
            let (query, out) = (&b.bufs[i][..len], &mut b.outs[i]);
            // Where to send anything that is not answered in this batch.
            let sender = || SocketAddr::new(client.ip, port(&b.addrs[i]));
            match request::handle(ctx, &rules, &zone, query, client, Transport::Udp, out) {
                Action::Reply => b.queue(i),
                Action::Messages(messages) => {
                    // Over UDP one message at most (the transfer code keeps to that).
                    if let Some(first) = messages.into_iter().next() {
                        *out = first;
                        b.queue(i);
                    }
                }
                Action::Forward { chain } => {
                    let partial = chain.then_some(out.as_slice());
                    forward_udp(socket, ctx, runtime, query, partial, sender(), started)
                }
                Action::Update(pending) => {
                    update_udp(socket, ctx, runtime, query, *pending, sender())
                }
                Action::Drop => {}
            }
        }
        // Counted once per batch: they were answered together (one clock read, one latency
        // sample for all). Counted before they leave, so that a client holding its answer
        // finds it in /metrics; the query log, slower, is written after.
        let took = started.elapsed();
        let mut answered = [(0u16, 0u16); BATCH];
        for (k, &i) in b.replied.iter().enumerate() {
            let len = (b.hdrs[i].msg_len as usize).min(RECV_BUFFER);
            answered[k] = summary(&b.bufs[i][..len], &b.outs[i]);
        }
        ctx.telemetry
            .queries(ctx.view, took, &answered[..b.replied.len()]);
        let mut sent = 0;
        while sent < b.replied.len() {
            // SAFETY: the queued headers point into `b`, alive for the call.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    b.send_hdrs[sent..].as_mut_ptr(),
                    (b.replied.len() - sent) as libc::c_uint,
                    0,
                )
            };
            if r <= 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // One bad destination fails the call at that message: skip it, send the rest.
                tracing::debug!(error = %e, "udp send failed");
                sent += 1;
                continue;
            }
            sent += r as usize;
        }
        if rules.log_queries {
            for &i in &b.replied {
                let len = (b.hdrs[i].msg_len as usize).min(RECV_BUFFER);
                if let Some(peer) = peer(&b.addrs[i]) {
                    ctx.log_query(&b.bufs[i][..len], &b.outs[i], peer, took);
                }
            }
        }
    }
}

/// Upstreams take milliseconds: resolve in a task so the socket keeps answering meanwhile.
/// `partial`: our answer whose CNAME chain the upstreams are to complete. Beyond
/// [`Context::forward_slots`] in flight, the client gets SERVFAIL at once.
fn forward_udp(
    sock: &Arc<UdpSocket>,
    ctx: &Arc<Context>,
    runtime: &Handle,
    query: &[u8],
    partial: Option<&[u8]>,
    peer: SocketAddr,
    started: Instant,
) {
    let Ok(slot) = ctx.forward_slots.try_acquire() else {
        let mut out = Vec::with_capacity(512);
        if let Outcome::Reply { .. } =
            reply_with(query, Rcode::ServFail, Transport::Udp, true, &mut out)
        {
            ctx.answered(query, &out, peer, started);
            let _ = sock.send_to(&out, peer);
        }
        return;
    };
    slot.forget();
    let (sock, ctx, query) = (sock.clone(), ctx.clone(), query.to_vec());
    let partial = partial.map(<[u8]>::to_vec);
    let tasks = ctx.tasks.clone();
    tasks.spawn_on(
        async move {
            // The slot taken above goes back however this task ends.
            let _slot = SlotBack(&ctx.forward_slots);
            let mut out = Vec::with_capacity(512);
            let client = peer.ip();
            (ctx.forwarded(&query, partial.as_deref(), client, Transport::Udp, &mut out)).await;
            if !out.is_empty() {
                // One datagram on a socket with a 4 MiB send buffer: this does not wait.
                ctx.answered(&query, &out, peer, started);
                let _ = sock.send_to(&out, peer);
            }
        },
        runtime,
    );
}

/// An UPDATE waits for the builder: applied and answered in a task, the socket answering on.
fn update_udp(
    sock: &Arc<UdpSocket>,
    ctx: &Arc<Context>,
    runtime: &Handle,
    query: &[u8],
    pending: super::update::PendingUpdate,
    peer: SocketAddr,
) {
    let (sock, ctx, query) = (sock.clone(), ctx.clone(), query.to_vec());
    let tasks = ctx.tasks.clone();
    let started = Instant::now();
    tasks.spawn_on(
        async move {
            let out = super::update::answer(ctx.updater(), pending).await;
            if !out.is_empty() {
                ctx.answered(&query, &out, peer, started);
                let _ = sock.send_to(&out, peer);
            }
        },
        runtime,
    );
}

/// Returns one permit to its semaphore when dropped.
struct SlotBack<'a>(&'a tokio::sync::Semaphore);

impl Drop for SlotBack<'_> {
    fn drop(&mut self) {
        self.0.add_permits(1);
    }
}

/// Whether the sender recvmmsg filled in has the address `ip` (any port).
#[inline]
fn sent_from(addr: &libc::sockaddr_storage, ip: IpAddr) -> bool {
    match (i32::from(addr.ss_family), ip) {
        (libc::AF_INET, IpAddr::V4(ip)) => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a = unsafe { &*(addr as *const _ as *const libc::sockaddr_in) };
            u32::from_be(a.sin_addr.s_addr) == u32::from(ip)
        }
        (libc::AF_INET6, IpAddr::V6(ip)) => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a = unsafe { &*(addr as *const _ as *const libc::sockaddr_in6) };
            a.sin6_addr.s6_addr == ip.octets()
        }
        _ => false,
    }
}

/// The sender's port from what recvmmsg filled in (0 for a family we do not serve).
fn port(addr: &libc::sockaddr_storage) -> u16 {
    peer(addr).map_or(0, |p| p.port())
}

/// The sender's address from what recvmmsg filled in.
fn peer(addr: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(addr.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a = unsafe { &*(addr as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a = unsafe { &*(addr as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::new(IpAddr::V6(ip), u16::from_be(a.sin6_port)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `addr` as recvmmsg would fill it in.
    fn storage(addr: SocketAddr) -> libc::sockaddr_storage {
        let sock: socket2::SockAddr = addr.into();
        // SAFETY: socket2 stores the address in a transparent wrapper of sockaddr_storage.
        unsafe { *sock.as_ptr().cast::<libc::sockaddr_storage>() }
    }

    #[test]
    fn a_sender_is_matched_by_address_alone() {
        let v4: SocketAddr = "10.147.17.9:5300".parse().unwrap();
        let v6: SocketAddr = "[fd00::9]:5300".parse().unwrap();
        for addr in [v4, v6] {
            let raw = storage(addr);
            assert_eq!(peer(&raw), Some(addr));
            assert_eq!(port(&raw), 5300);
            assert!(sent_from(&raw, addr.ip()), "{addr}");
            let other_port = SocketAddr::new(addr.ip(), 53);
            assert!(sent_from(&storage(other_port), addr.ip()), "{other_port}");
        }
        let (raw4, raw6) = (storage(v4), storage(v6));
        assert!(!sent_from(&raw4, "10.147.17.10".parse().unwrap()));
        assert!(!sent_from(&raw6, "fd00::a".parse().unwrap()));
        // Another family never matches, a v4-mapped address included.
        assert!(!sent_from(&raw4, v6.ip()));
        assert!(!sent_from(&raw6, v4.ip()));
        assert!(!sent_from(&raw4, "::ffff:10.147.17.9".parse().unwrap()));
    }
}
