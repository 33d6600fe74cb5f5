//! Network namespaces for tests: a server host and a client host joined by veth pairs.
//!
//! Needs root (CI runs as root). Setup failures panic: these tests must fail, never skip,
//! when they cannot build their network. Namespaces are deleted on drop, also after a failure.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs `ip ARGS...`, panicking with its stderr if it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run `ip` (package iproute2); these tests need root");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Output of a command run inside a namespace.
pub fn exec_in(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub struct Netns {
    pub name: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Netns {
    pub fn new(role: &str) -> Netns {
        let name = format!(
            "bh-{role}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Moves the calling thread into network namespace `ns`: sockets it opens from then on live
/// there (other threads are not affected).
pub fn enter(ns: &str) {
    let file = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: setns on this thread only, with a valid namespace fd that outlives the call.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// Runs `f` on a thread that has entered namespace `ns`: sockets it opens live there.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter(ns);
            f()
        })
        .join()
        .unwrap()
    })
}

/// A TCP connection to `to` from the address `from`, for a client with several addresses
/// (std cannot bind before connecting). Call it on a thread inside the client's namespace.
pub fn tcp_from(from: SocketAddr, to: SocketAddr) -> std::net::TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = rt.block_on(async {
        let socket = if from.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .unwrap();
        socket.bind(from).unwrap();
        socket.connect(to).await.unwrap()
    });
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// The resolv.conf glibc reads inside a namespace: `ip netns exec` puts
/// /etc/netns/<name>/resolv.conf in place of /etc/resolv.conf. Removed when dropped.
pub struct ResolvConf {
    dir: PathBuf,
}

impl ResolvConf {
    pub fn new(ns: &str) -> ResolvConf {
        let dir = PathBuf::from(format!("/etc/netns/{ns}"));
        std::fs::create_dir_all(&dir).unwrap();
        ResolvConf { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }

    pub fn write(&self, text: &str) {
        std::fs::write(self.path(), text).unwrap();
    }
}

impl Drop for ResolvConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The interface name ZeroTier would give network 8056c2e21c000001 (ZeroTier names it `zt` + a base32 hash of the network id).
pub const ZT_IF: &str = "ztmjfmfyq5";

/// A server host and a client host: a ZeroTier-like link (10.147.17.0/24, fd00:5a::/64)
/// and a public-like link (198.51.100.0/24).
pub struct Lab {
    pub srv: Netns,
    pub cli: Netns,
}

impl Lab {
    pub fn new(with_zt: bool) -> Lab {
        let lab = Lab {
            srv: Netns::new("srv"),
            cli: Netns::new("cli"),
        };
        let (s, c) = (lab.srv.name.as_str(), lab.cli.name.as_str());
        ip(&[
            "-n", s, "link", "add", "pub0", "type", "veth", "peer", "name", "cpub", "netns", c,
        ]);
        ip(&["-n", s, "addr", "add", "198.51.100.1/24", "dev", "pub0"]);
        ip(&["-n", c, "addr", "add", "198.51.100.2/24", "dev", "cpub"]);
        ip(&["-n", s, "link", "set", "pub0", "up"]);
        ip(&["-n", c, "link", "set", "cpub", "up"]);
        if with_zt {
            lab.add_zt();
        }
        lab
    }

    /// Gives the client 192.0.2.2, an address outside every subnet of the server's interfaces,
    /// routed over the ZeroTier-like link (the client must call `ask_from` with it).
    pub fn add_outside_client(&self) {
        ip(&[
            "-n",
            &self.cli.name,
            "addr",
            "add",
            "192.0.2.2/24",
            "dev",
            "czt",
        ]);
        ip(&[
            "-n",
            &self.srv.name,
            "route",
            "add",
            "192.0.2.0/24",
            "dev",
            ZT_IF,
        ]);
    }

    /// Creates the ZeroTier-like link, as zerotier-one does when it joins a network.
    pub fn add_zt(&self) {
        let (s, c) = (self.srv.name.as_str(), self.cli.name.as_str());
        ip(&[
            "-n", s, "link", "add", ZT_IF, "type", "veth", "peer", "name", "czt", "netns", c,
        ]);
        ip(&["-n", s, "addr", "add", "10.147.17.1/24", "dev", ZT_IF]);
        ip(&["-n", c, "addr", "add", "10.147.17.2/24", "dev", "czt"]);
        ip(&[
            "-n",
            s,
            "-6",
            "addr",
            "add",
            "fd00:5a::1/64",
            "dev",
            ZT_IF,
            "nodad",
        ]);
        ip(&[
            "-n",
            c,
            "-6",
            "addr",
            "add",
            "fd00:5a::2/64",
            "dev",
            "czt",
            "nodad",
        ]);
        ip(&["-n", s, "link", "set", ZT_IF, "up"]);
        ip(&["-n", c, "link", "set", "czt", "up"]);
    }
}
