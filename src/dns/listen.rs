//! Binding and following addresses: [`Listeners`] keeps one UDP and one TCP socket per
//! address, served by [`super::udp`] and [`super::tcp`], and follows the wanted set as
//! addresses come and go.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::context::Context;
use super::udp::UdpServer;

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
    // Answers are never fragmented (they are at most 1232 bytes, DNS Flag Day 2020): DF set,
    // and path-MTU hints (which anyone can forge with ICMP) ignored. For IPv4 this also
    // spares the kernel the hashed IP ID it draws for every datagram that may be fragmented
    // (about 4% of the kernel's time per answer, measured with perf).
    let _ = never_fragment(&sock, addr.is_ipv6());
    sock.bind(&addr.into())?;
    Ok(sock.into())
}

/// `IP_MTU_DISCOVER` / `IPV6_MTU_DISCOVER` = `PMTUDISC_PROBE`: DF set, the interface MTU used.
fn never_fragment(sock: &socket2::Socket, v6: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (level, name, value) = if v6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_PROBE,
        )
    } else {
        (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_PROBE,
        )
    };
    // SAFETY: a valid socket descriptor and a c_int option value that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
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

/// The sockets being served, one UDP and one TCP per address.
pub struct Listeners {
    port: u16,
    ctx: Arc<Context>,
    active: BTreeMap<IpAddr, Active>,
}

struct Active {
    local: SocketAddr,
    /// Dropping it stops the UDP threads, which close the socket.
    udp: Option<UdpServer>,
    tcp: Option<JoinHandle<()>>,
}

impl Drop for Active {
    /// Ending the TCP task drops its listener: the address is closed at once.
    fn drop(&mut self) {
        if let Some(tcp) = &self.tcp {
            tcp.abort();
        }
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
                    let tcp = tokio::spawn(super::tcp::serve(tcp, self.ctx.clone()));
                    self.active.insert(
                        *ip,
                        Active {
                            local,
                            udp: Some(udp),
                            tcp: Some(tcp),
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

    /// Shutdown, once the context's shutdown token is cancelled: every socket stops after
    /// the queries it has read are answered (UDP threads finish their batch, TCP stops
    /// accepting); connections and forwards still under way are the context's tasks.
    pub async fn close(&mut self) {
        let mut threads = Vec::new();
        for (_, mut active) in std::mem::take(&mut self.active) {
            if let Some(udp) = active.udp.take() {
                threads.extend(udp.stop());
            }
            if let Some(tcp) = active.tcp.take() {
                let _ = tcp.await;
            }
        }
        let joined = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        });
        let _ = joined.await;
    }

    /// Addresses served right now.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.active.keys().copied().collect()
    }
}
