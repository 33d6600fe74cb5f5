//! Encrypted upstreams: Debian's unbound on loopback serving DNS over TLS and over HTTPS with
//! a certificate from a test CA (made here with openssl); a forwarded name resolves through
//! each, a wrong certificate name fails with a clear log line and SERVFAIL, and not one plain
//! UDP packet goes to the encrypted upstream's port.

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

struct Unbound(Child);

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA (`ca.pem`) and a certificate for `dns.test` signed by it (`srv.pem`, `srv.key`).
fn certificates(dir: &Path) {
    certificates_for(dir, "DNS:dns.test");
}

/// A test CA (`ca.pem`) and a certificate for `san` (`DNS:name`, `IP:address`, comma
/// separated) signed by it (`srv.pem`, `srv.key`).
pub(crate) fn certificates_for(dir: &Path, san: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=backhaul-dns test CA",
    ]);
    ca.extend([
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let mut req = vec!["req"];
    req.extend(ec);
    req.extend([
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=dns.test",
    ]);
    openssl(dir, &req);
    std::fs::write(
        dir.join("srv.ext"),
        format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "srv.ext",
        ],
    );
}

/// unbound answering `www.example.test` from local data, over TLS on `dot` and HTTPS on
/// `doh` only (no plain UDP anywhere).
fn unbound(dir: &Path, dot: u16, doh: u16) -> Unbound {
    assert!(
        Path::new("/usr/sbin/unbound").exists(),
        "this test needs unbound: apt-get install unbound (.ci/run installs it)"
    );
    let d = dir.display();
    let conf = format!(
        "server:\n  interface: 127.0.0.1@{dot}\n  interface: 127.0.0.1@{doh}\n  tls-port: {dot}\n  https-port: {doh}\n\
         \x20 tls-service-key: \"{d}/srv.key\"\n  tls-service-pem: \"{d}/srv.pem\"\n  do-udp: no\n\
         \x20 username: \"\"\n  chroot: \"\"\n  directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n\
         \x20 logfile: \"{d}/unbound.log\"\n  use-syslog: no\n  verbosity: 1\n\
         \x20 access-control: 127.0.0.0/8 allow\n  do-not-query-localhost: yes\n\
         \x20 local-zone: \"example.test.\" static\n  local-data: \"www.example.test. 60 IN A 192.0.2.80\"\n\
         remote-control:\n  control-enable: no\n"
    );
    std::fs::write(dir.join("unbound.conf"), conf).unwrap();
    Unbound(
        Command::new("/usr/sbin/unbound")
            .args(["-d", "-c"])
            .arg(dir.join("unbound.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start unbound"),
    )
}

/// backhaul-dns forwarding to `upstream`, trusting the test CA `ca`.
fn server(upstream: &str, ca: &Path) -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.json"),
        r#"[{"nodeId": "a45dc9d260", "name": "db", "config": {"authorized": true, "creationTime": 1, "ipAssignments": ["10.147.17.2"]}}]"#,
    )
    .unwrap();
    let tables = format!(
        "[forward]\nupstreams = [\"{upstream}\"]\ntls_ca_file = \"ca.pem\"\n\
         [[network]]\nid = \"8056c2e21c000001\"\nsource = \"file\"\nmembers_file = \"m.json\"\n"
    );
    std::fs::copy(ca, dir.path().join("ca.pem")).unwrap();
    let server = Server::start_in(dir, "", &tables);
    server.wait_answer("db.backhaul.", RecordType::A);
    server
}

#[test]
fn forwarded_names_travel_over_tls_and_https_only() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let ca = dir.path().join("ca.pem");
    let (dot, doh) = (free_port(), free_port());
    // Catches any plain UDP query sent to the DoT port (unbound has no UDP socket there).
    let trap = UdpSocket::bind(("127.0.0.1", dot)).unwrap();
    trap.set_nonblocking(true).unwrap();
    let _unbound = unbound(dir.path(), dot, doh);
    let log = || std::fs::read_to_string(dir.path().join("unbound.log")).unwrap_or_default();
    wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", doh))
            .ok()
            .map(|_| ())
    })
    .unwrap_or_else(|| panic!("unbound listens:\n{}", log()));

    for upstream in [
        format!("tls://127.0.0.1:{dot}#dns.test"),
        format!("https://127.0.0.1:{doh}/dns-query#dns.test"),
    ] {
        let server = server(&upstream, &ca);
        let m = wait_for(Duration::from_secs(10), || {
            let m = query(server.dns, "www.example.test.", RecordType::A);
            (m.metadata.response_code == ResponseCode::NoError).then_some(m)
        })
        .unwrap_or_else(|| panic!("{upstream}: no answer\n{}\n{}", server.log_text(), log()));
        assert!(is_a(&m, "192.0.2.80"), "{upstream}: {m:?}");
    }
    // The certificate does not hold the name given: SERVFAIL, and the log says why.
    let server = server(&format!("tls://127.0.0.1:{dot}#wrong.test"), &ca);
    let m = query(server.dns, "www.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{m:?}");
    let line = server.expect_log(Duration::from_secs(5), "TLS failure said", |l| {
        l["message"]
            .as_str()
            .unwrap_or("")
            .contains("TLS certificate was refused")
    });
    assert!(
        line["upstream"].as_str().unwrap().contains("#wrong.test"),
        "{line}"
    );
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .contains("not valid for name"),
        "{line}"
    );
    let mut buf = [0u8; 512];
    assert!(
        trap.recv_from(&mut buf).is_err(),
        "a plain UDP query reached the DoT port"
    );
}
