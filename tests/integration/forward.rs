//! Forwarding: other names are resolved for allowed clients through the configured upstreams
//! (an in-process fake here; never this machine's real resolver).

use std::time::{Duration, Instant};

use crate::common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

fn start_with(upstreams: &str) -> (FakeCentral, Server) {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
    );
    let tables = format!(
        "[forward]\nupstreams = [{upstreams}]\n\n{}",
        central_network(&fake, "1s")
    );
    let server = Server::start("", &tables);
    server.wait_answer("db.backhaul.", RecordType::A);
    (fake, server)
}

#[test]
fn forwards_other_names_with_a_cache() {
    let up = FakeUpstream::start();
    let (_fake, server) = start_with(&format!("\"{}\"", up.addr));
    for (proto, ex) in [
        ("udp", exchange_udp as fn(_, &_) -> _),
        ("tcp", exchange_tcp),
    ] {
        let m = ex(server.dns, &request("example.com.", RecordType::A));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{proto}");
        assert!(is_a(&m, "192.0.2.10"), "{proto}: {m:?}");
        assert!(
            m.metadata.recursion_available && !m.metadata.authoritative,
            "{proto}: RA, not AA"
        );
    }
    // Answered from the cache after the first time.
    assert_eq!(
        up.count("example.com. A"),
        1,
        "{:?}",
        up.seen.lock().unwrap()
    );
    // The client's spelling comes back.
    let m = query(server.dns, "ExAmple.COM.", RecordType::A);
    assert_eq!(m.answers[0].name.to_string(), "ExAmple.COM.");
    // CNAME chains are kept.
    let m = query(server.dns, "www.example.com.", RecordType::A);
    assert!(m.answers.iter().any(|r| matches!(r.data, RData::CNAME(_))));
    assert!(is_a(&m, "192.0.2.10"));
    // Negative answers keep their rcode and SOA.
    let m = query(server.dns, "nx.example.com.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    // Our own names are still ours: never forwarded. Answered with AA, and with RA, since
    // recursion is available to this client (RFC 1035 4.1.1), over both transports.
    for (proto, ex) in [
        ("udp", exchange_udp as fn(_, &_) -> _),
        ("tcp", exchange_tcp),
    ] {
        let m = ex(server.dns, &request("db.backhaul.", RecordType::A));
        assert!(is_a(&m, "10.147.17.2"), "{proto}");
        assert!(
            m.metadata.authoritative && m.metadata.recursion_available,
            "{proto}"
        );
        let m = ex(server.dns, &request("nope.backhaul.", RecordType::A));
        assert!(
            m.metadata.recursion_available,
            "{proto}: on negative answers too"
        );
    }
    assert_eq!(up.count("db.backhaul"), 0);
    // DO is echoed on forwarded answers too.
    let mut q = request("example.com.", RecordType::A);
    q.edns.as_mut().unwrap().set_dnssec_ok(true);
    assert!(exchange_udp(server.dns, &q).edns.unwrap().flags().dnssec_ok);
}

#[test]
fn servfail_when_every_upstream_is_dead() {
    // Nothing listens there: the port of a socket we bound and closed.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (_fake, server) = start_with(&format!("\"{dead}\""));
    let started = Instant::now();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let q = request("example.com.", RecordType::A);
    sock.send_to(&q.to_vec().unwrap(), server.dns).unwrap();
    let mut buf = [0u8; 1500];
    let n = sock.recv(&mut buf).expect("an answer, not silence");
    let m = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(m.metadata.recursion_available);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "before a stub gives up"
    );
    // Our own zone is unaffected.
    assert!(is_a(
        &query(server.dns, "db.backhaul.", RecordType::A),
        "10.147.17.2"
    ));
}

#[test]
fn no_upstreams_means_refused() {
    let (_fake, server) = start_with("");
    let m = query(server.dns, "example.com.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.recursion_available);
}

#[test]
fn queries_without_rd_are_not_forwarded() {
    let up = FakeUpstream::start();
    let (_fake, server) = start_with(&format!("\"{}\"", up.addr));
    let mut q = request("example.com.", RecordType::A);
    q.metadata.recursion_desired = false;
    assert_eq!(
        exchange_udp(server.dns, &q).metadata.response_code,
        ResponseCode::Refused
    );
    assert_eq!(up.count("example.com."), 0);
}

#[test]
fn a_cname_out_of_our_zones_is_completed_for_resolver_clients() {
    // Stub resolvers do not chase CNAMEs: for them, this server finishes the chain.
    let up = FakeUpstream::start();
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("records.zone"),
        "site CNAME www.example.com.\nbroken CNAME nx.example.com.\n",
    )
    .unwrap();
    let tables = format!(
        "[forward]\nupstreams = [\"{}\"]\n\n[records]\nzone_file = \"records.zone\"\n\n{}",
        up.addr,
        central_network(&fake, "1s")
    );
    let server = Server::start_in(dir, "", &tables);
    server.wait_answer("db.backhaul.", RecordType::A);
    for (proto, ex) in [
        ("udp", exchange_udp as fn(_, &_) -> _),
        ("tcp", exchange_tcp),
    ] {
        let m = ex(server.dns, &request("site.backhaul.", RecordType::A));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{proto}");
        let chain: Vec<String> = m.answers.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(
            chain,
            ["site.backhaul.", "www.example.com.", "example.com."],
            "{proto}: {m:?}"
        );
        assert!(is_a(&m, "192.0.2.10"), "{proto}");
        assert!(m.metadata.recursion_available && m.metadata.authoritative);
        // The target does not exist: NXDOMAIN, CNAME kept (RFC 6604).
        let m = ex(server.dns, &request("broken.backhaul.", RecordType::A));
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{proto}");
        assert_eq!(m.answers.len(), 1, "{proto}");
    }
    // Without RD (an iterating resolver), the chain is returned as is, not resolved.
    let mut req = request("site.backhaul.", RecordType::A);
    req.metadata.recursion_desired = false;
    let m = exchange_udp(server.dns, &req);
    assert_eq!(m.answers.len(), 1);
    // RA still says recursion is available to this client.
    assert!(m.metadata.recursion_available);
}

/// The server's own /etc/hosts is not an answer for clients: the host's names (and any other
/// hosts-file entry) go to the upstream like every other name. `localhost` is the one
/// exception, by RFC 6761 6.3: a caching server answers it with the loopback address itself,
/// whatever the hosts file says.
#[test]
fn the_hosts_file_of_the_server_is_not_used() {
    let up = FakeUpstream::start();
    let (_fake, server) = start_with(&format!("\"{}\"", up.addr));
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let mut names: Vec<String> = hosts
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split_whitespace().skip(1))
        .chain(hostname.split_whitespace())
        .filter(|n| !n.starts_with("localhost") && !n.starts_with("ip6-"))
        .map(|n| format!("{}.", n.trim_end_matches('.')))
        .collect();
    names.sort();
    names.dedup();
    assert!(
        !names.is_empty(),
        "no host names to try in /etc/hosts or /etc/hostname"
    );
    for name in names {
        let m = query(server.dns, &name, RecordType::A);
        assert!(
            up.count(&format!("{name} A")) >= 1,
            "{name} was answered without asking the upstream: {m:?}"
        );
        // The fake upstream refuses these names: no address comes back.
        assert!(m.answers.is_empty(), "{name}: {m:?}");
    }
    let m = query(server.dns, "localhost.", RecordType::A);
    assert!(is_a(&m, "127.0.0.1"), "{m:?}");
}

/// Queries our parser takes but the forwarder cannot read (junk in a record answering never
/// reads) get FORMERR over UDP and TCP: never silence, which a client waits out.
#[test]
fn queries_the_forwarder_cannot_read_get_formerr() {
    let up = FakeUpstream::start();
    let (_fake, server) = start_with(&format!("\"{}\"", up.addr));
    // id 0xbeef, RD, one question example.com. A, one additional record.
    let query = |additional: &[u8]| {
        let mut q = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        q.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        q.extend_from_slice(additional);
        q
    };
    let cases: [(&str, &[u8]); 2] = [
        ("an A with RDLENGTH 0", &[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]),
        (
            "an OPT with junk options",
            &[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff],
        ),
    ];
    for (what, additional) in cases {
        let q = query(additional);
        let udp = udp_raw(server.dns, &q).unwrap_or_else(|| panic!("{what}: no UDP reply"));
        let tcp = tcp_raw(server.dns, &q);
        for (proto, reply) in [("udp", udp), ("tcp", tcp)] {
            assert_eq!(&reply[0..2], &[0xbe, 0xef], "{what} over {proto}");
            assert_eq!(reply[2] & 0x80, 0x80, "{what} over {proto}: a response");
            let rcode = reply[3] & 0x0f;
            assert!(rcode == 1, "{what} over {proto}: FORMERR, got {rcode}");
        }
    }
}

/// `[[forward.zone]]`: names under a forward zone go to its upstreams (longest match wins),
/// everything else to the default ones; live on reload; same client rules.
#[test]
fn forward_zones_send_their_names_to_their_own_upstreams() {
    let default = FakeUpstream::start();
    let consul = FakeUpstream::start();
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
    );
    let tables = |zones: &str| {
        format!(
            "[forward]\nupstreams = [\"{}\"]\n{zones}\n{}",
            default.addr,
            central_network(&fake, "1h")
        )
    };
    let zone = format!(
        "[[forward.zone]]\nname = \"consul\"\nupstreams = [\"{}\"]\n",
        consul.addr
    );
    let server = Server::start("", &tables(&zone));
    server.wait_answer("db.backhaul.", RecordType::A);
    let octet = |port: u16| format!("192.0.2.{}", port % 250);
    let m = query(server.dns, "whoami.consul.", RecordType::A);
    assert!(is_a(&m, &octet(consul.addr.port())), "{m:?}");
    assert_eq!(
        (
            consul.count("whoami.consul."),
            default.count("whoami.consul.")
        ),
        (1, 0)
    );
    let m = query(server.dns, "whoami.test.", RecordType::A);
    assert!(is_a(&m, &octet(default.addr.port())), "{m:?}");
    assert_eq!(consul.count("whoami.test."), 0);

    // Without the zone (a live reload), consul names go to the default upstreams.
    std::fs::write(server.path("backhaul-dns.toml"), {
        let text = std::fs::read_to_string(server.path("backhaul-dns.toml")).unwrap();
        text.replace(&zone, "")
    })
    .unwrap();
    wait_for(Duration::from_secs(10), || {
        let m = query(server.dns, "whoami.consul.", RecordType::A);
        is_a(&m, &octet(default.addr.port())).then_some(())
    })
    .unwrap_or_else(|| panic!("the forward zone stayed; logs:\n{}", server.log_text()));
}

/// A forward zone cannot take names this server answers for, and a forward zone that points
/// at this server itself is left out rather than looping.
#[test]
fn forward_zones_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("backhaul-dns.toml");
    std::fs::write(
        &config,
        "[listen]\naddresses = [\"127.0.0.1\"]\n[[forward.zone]]\nname = \"prod.backhaul\"\n\
         upstreams = [\"127.0.0.1:8600\"]\n[[network]]\nid = \"8056c2e21c000001\"\n\
         source = \"file\"\nmembers_file = \"m.json\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("m.json"), "[]").unwrap();
    let (code, _, err) = run_cli(&["check"], &config);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("forward.zone[0].name") && err.contains("overlaps"),
        "{err}"
    );

    // Pointing at this very server: left out, said in the log, and the name is REFUSED
    // instead of going round in a loop.
    let port = free_port();
    let text = format!(
        "state_dir = \"state\"\n[listen]\naddresses = [\"127.0.0.1\"]\nport = {port}\n\
         [forward]\nupstreams = []\n[[forward.zone]]\nname = \"consul\"\n\
         upstreams = [\"127.0.0.1:{port}\"]\n[[network]]\nid = \"8056c2e21c000001\"\n\
         source = \"file\"\nmembers_file = \"m.json\"\n"
    );
    let server = Server::launch(dir, &text, &[]).wait_listening();
    server.expect_log(Duration::from_secs(5), "a warning about the loop", |l| {
        l["message"]
            .as_str()
            .unwrap_or("")
            .contains("that is this server")
    });
    let m = query(server.dns, "whoami.consul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

/// Beyond 1,024 forwarded queries in flight (upstreams that do not answer), more get SERVFAIL
/// at once instead of silence: every query gets an answer, the ones in flight when the
/// forwarder's deadline passes, the others at once.
#[test]
fn forwards_beyond_the_cap_get_servfail_not_silence() {
    // An upstream that takes queries and never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (_fake, server) = start_with(&format!("\"{}\"", silent.local_addr().unwrap()));
    // The 1,024 deadline answers arrive in one burst: a receive buffer large enough for all
    // of them, and a loop that only copies, so that no answer is lost on our side.
    let client = {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        let _ = sock.set_recv_buffer_size(16 << 20);
        // SAFETY: setsockopt with a valid descriptor and a pointer to a live int.
        unsafe {
            let size: libc::c_int = 16 << 20;
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&sock),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        sock.bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
        std::net::UdpSocket::from(sock)
    };
    client
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let sent = 1_300;
    for i in 0..sent {
        let mut q = request(&format!("n{i}.example.com."), RecordType::A);
        q.metadata.id = i as u16;
        client.send_to(&q.to_vec().unwrap(), server.dns).unwrap();
        // Paced (about 20,000 a second), so that the server's socket buffer, which the kernel
        // may cap at 208 KB, never overflows on a busy machine: this test is about what the
        // server answers, not about what the kernel drops.
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let mut replies: Vec<Vec<u8>> = Vec::with_capacity(sent);
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + Duration::from_secs(20);
    while replies.len() < sent && Instant::now() < deadline {
        if let Ok(n) = client.recv(&mut buf) {
            replies.push(buf[..n].to_vec());
        }
    }
    let mut answered = std::collections::BTreeSet::new();
    for r in &replies {
        let m = hickory_proto::op::Message::from_vec(r).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        answered.insert(m.metadata.id);
    }
    assert_eq!(
        answered.len(),
        sent,
        "queries without an answer; logs:\n{}",
        server.log_text()
    );
    drop(silent);
}
