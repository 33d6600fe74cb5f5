//! Hostile input gets nowhere: what strangers and members can make the server do, tried
//! against the binary.

use std::io::{Read, Write};
use std::time::Duration;

use crate::common::netns::*;
use crate::common::*;
use crate::netns::{addr, answered_within_10s, ask, serve, tcp_from};
use hickory_proto::rr::RecordType;

/// Raises this test process's open-file limit to its hard limit: it opens more than a
/// thousand connections.
fn raise_nofile() {
    // SAFETY: plain libc calls with a valid rlimit struct on this process.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0);
        r.rlim_cur = r.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &r), 0);
    }
}

/// One HTTP request from `from` (in the client namespace) to `to` with `host` as its Host
/// header; the status code (0 when the connection gives no answer).
fn http_from(lab: &Lab, from: &str, to: std::net::SocketAddr, path: &str, host: &str) -> u16 {
    in_netns(&lab.cli.name, || {
        let Ok(mut s) = tcp_from(from, to) else {
            return 0;
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        if s.write_all(request.as_bytes()).is_err() {
            return 0;
        }
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
    })
}

/// Established connections to the server's port `port` from `from`, as the server's
/// namespace sees them.
fn established(lab: &Lab, port: u16, from: &str) -> usize {
    let ss = exec_in(
        &lab.srv.name,
        &[
            "ss",
            "-tnH",
            "state",
            "established",
            &format!("( sport = :{port} )"),
        ],
    );
    ss.matches(&format!("{from}:")).count()
}

/// With systemd's default open-file limit (1024), a stranger outside `[http] allow` opening
/// 1,100 connections to the HTTP endpoint and sending the start of a request on each, and an
/// allowed client holding idle and trickling connections, take nothing from DNS or from the
/// endpoint's own clients: the stranger is closed at accept, idle connections are closed after
/// the header timeout, and a page that rebinds its own name to the server gets 403.
#[test]
fn http_floods_slow_clients_and_rebinding_get_nowhere() {
    raise_nofile();
    let lab = Lab::new(true);
    lab.add_outside_client();
    let server = serve(
        &lab,
        &format!("interface = \"{ZT_IF}\"\nport = 53\n\n[http]\nlisten = \"10.147.17.1:9153\""),
        &["prlimit", "--nofile=1024:1024"],
    );
    let dns = addr("10.147.17.1:53");
    let http = addr("10.147.17.1:9153");
    answered_within_10s(&lab, dns, "db.backhaul.", &server);
    wait_for(Duration::from_secs(10), || {
        (http_from(&lab, "10.147.17.2", http, "/healthz", "10.147.17.1:9153") == 200).then_some(())
    })
    .unwrap_or_else(|| panic!("the endpoint never answered; logs:\n{}", server.log_text()));

    // DNS rebinding: a page whose own name now resolves to this server sends that name.
    assert_eq!(
        http_from(
            &lab,
            "10.147.17.2",
            http,
            "/api/v1/names",
            "evil.example:9153"
        ),
        403
    );
    assert_eq!(
        http_from(
            &lab,
            "10.147.17.2",
            http,
            "/api/v1/names",
            "ns.backhaul:9153"
        ),
        200,
        "a name in our own domain is ours"
    );

    let held = in_netns(&lab.cli.name, || {
        let mut held = Vec::new();
        // The stranger: 1,100 connections, each with the start of a request.
        for _ in 0..1100 {
            if let Ok(mut s) = tcp_from("192.0.2.2", http) {
                s.set_nonblocking(true).unwrap();
                let _ = s.write(b"GET / HTTP/1.1\r\n");
                held.push(s);
            }
        }
        // An allowed client: 40 idle connections and 40 that send one byte now and then.
        for i in 0..80 {
            if let Ok(mut s) = tcp_from("10.147.17.2", http) {
                s.set_nonblocking(true).unwrap();
                if i % 2 == 0 {
                    let _ = s.write(b"G");
                }
                held.push(s);
            }
        }
        held
    });

    // Meanwhile DNS answers every query, and the endpoint answers an allowed client.
    let mut answered = 0;
    for _ in 0..200 {
        if ask(&lab, dns, "db.backhaul.").is_some_and(|m| is_a(&m, "10.147.17.20")) {
            answered += 1;
        }
    }
    assert_eq!(
        answered, 200,
        "DNS answered {answered} of 200 during the flood"
    );
    let status = wait_for(Duration::from_secs(10), || {
        let s = http_from(&lab, "10.147.17.2", http, "/healthz", "10.147.17.1:9153");
        (s == 200).then_some(s)
    });
    assert_eq!(status, Some(200), "logs:\n{}", server.log_text());

    // The stranger holds nothing; the idle and trickling connections are closed after the
    // header timeout (5 s), even though the client never closes them.
    let cleared = wait_for(Duration::from_secs(20), || {
        let outside = established(&lab, 9153, "192.0.2.2");
        let inside = established(&lab, 9153, "10.147.17.2");
        (outside == 0 && inside == 0).then_some(())
    });
    assert!(
        cleared.is_some(),
        "connections still held: {}",
        exec_in(&lab.srv.name, &["ss", "-tn", "state", "established"])
    );
    // A trickle of bytes does not keep a connection open either.
    let trickle = in_netns(&lab.cli.name, || {
        let mut s = tcp_from("10.147.17.2", http).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let started = std::time::Instant::now();
        for b in b"GET /healthz HTTP/1.1\r\nHost: 10.147.17.1\r\nX-Slow: "
            .iter()
            .cycle()
        {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            let mut buf = [0u8; 64];
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => break, // an error status, then close
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
            if started.elapsed() > Duration::from_secs(30) {
                break;
            }
        }
        started.elapsed()
    });
    assert!(
        trickle < Duration::from_secs(20),
        "a connection trickling its headers was kept for {trickle:?}"
    );
    assert_eq!(
        ask(&lab, dns, "web.backhaul.").map(|m| is_a(&m, "10.147.17.21")),
        Some(true)
    );
    drop(held);
}

/// Hundreds of members that want one name: each conflict is logged by the zone build once,
/// and reading the names (`/hosts`, `/api/v1/names`) again and again logs nothing more and
/// hands out the same document, rendered once per build.
#[test]
fn reading_the_names_again_and_again_logs_nothing_and_renders_once() {
    let members: Vec<serde_json::Value> = (0..300u64)
        .map(|i| {
            let ip = format!("10.147.{}.{}", 17 + i / 200, 1 + i % 200);
            member(
                &format!("{:010x}", 0xa000000000 + i),
                "same",
                true,
                i as i64,
                &[&ip],
            )
        })
        .collect();
    let fake = FakeCentral::start(network_json(&["10.147.0.0/16"], false, false), members);
    let server = Server::start(
        "",
        &format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n\n{}",
            central_network(&fake, "1s")
        ),
    );
    server.wait_answer("same.backhaul.", RecordType::A);
    let http = http_addr(&server);
    let conflicts = || {
        server.count_logs(|l| {
            l["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("name conflict")
        })
    };
    wait_for(Duration::from_secs(10), || {
        (conflicts() >= 299).then_some(())
    })
    .unwrap_or_else(|| panic!("conflicts not logged: {}", conflicts()));
    let logged = conflicts();
    let (status, first) = get(http, "/hosts");
    assert_eq!(status, 200);
    assert!(first.contains("\tsame.backhaul"), "{first}");
    for _ in 0..20 {
        assert_eq!(get(http, "/hosts"), (200, first.clone()));
        let (status, json) = get(http, "/api/v1/names");
        assert_eq!(status, 200);
        assert!(json.contains("same.backhaul"));
    }
    // Every poll of the fake (each second) finds no change: still the same conflicts.
    assert_eq!(
        conflicts(),
        logged,
        "reading the names logged conflicts again"
    );
}

/// Eight addresses of the network each open 64 connections, pipeline queries and never read
/// the answers (the 512 places, a gigabyte of send queues). The server drops them as
/// their small send buffers fill, keeps their share small while busy, and a ninth client's
/// TCP queries are answered meanwhile.
#[test]
fn tcp_clients_that_never_read_hold_neither_places_nor_memory() {
    raise_nofile();
    let lab = Lab::new(true);
    let greedy: Vec<String> = (30..38).map(|i| format!("10.147.17.{i}")).collect();
    for a in &greedy {
        ip(&[
            "-n",
            &lab.cli.name,
            "addr",
            "add",
            &format!("{a}/24"),
            "dev",
            "czt",
        ]);
    }
    let server = serve(&lab, &format!("interface = \"{ZT_IF}\"\nport = 53"), &[]);
    let dns = addr("10.147.17.1:53");
    answered_within_10s(&lab, dns, "db.backhaul.", &server);
    let query = {
        let bytes = request("db.backhaul.", hickory_proto::rr::RecordType::A)
            .to_vec()
            .unwrap();
        [&(bytes.len() as u16).to_be_bytes()[..], &bytes].concat()
    };
    let pipeline = query.repeat(2000);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let answered = std::thread::scope(|scope| {
        // The greedy clients reconnect as they are dropped, for as long as the check runs.
        for a in &greedy {
            let (pipeline, stop, lab) = (&pipeline, &stop, &lab);
            scope.spawn(move || {
                enter(&lab.cli.name);
                let mut held: Vec<std::net::TcpStream> = Vec::new();
                let started = std::time::Instant::now();
                while !stop.load(std::sync::atomic::Ordering::Relaxed)
                    && started.elapsed() < Duration::from_secs(60)
                {
                    held.retain(|s| {
                        s.peer_addr().is_ok() && s.take_error().ok().flatten().is_none()
                    });
                    while held.len() < 64 {
                        let Ok(mut s) = tcp_from(a, dns) else { break };
                        s.set_nonblocking(true).unwrap();
                        let _ = s.write(pipeline);
                        held.push(s);
                    }
                    for s in &mut held {
                        let _ = s.write(pipeline);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
        // Let them take what they can (every place, 8 x 64, without the busy share), at most
        // 8 s; then ask as a ninth client.
        let deadline = std::time::Instant::now() + Duration::from_secs(8);
        let held = || {
            greedy
                .iter()
                .map(|a| established(&lab, 53, a))
                .sum::<usize>()
        };
        let mut most = 0;
        while std::time::Instant::now() < deadline && most < 500 {
            most = most.max(held());
            std::thread::sleep(Duration::from_millis(100));
        }
        let answered = wait_for(Duration::from_secs(10), || {
            crate::netns::tcp_ask_from(&lab, "10.147.17.2", dns, &query)
                .filter(|m| is_a(m, "10.147.17.20"))
        });
        // What the server's sockets hold for them: Send-Q, summed.
        let ss = exec_in(
            &lab.srv.name,
            &["ss", "-tnH", "state", "established", "( sport = :53 )"],
        );
        let queued: u64 = ss
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        most = most.max(held());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (answered, queued, most)
    });
    let (answered, queued, most) = answered;
    eprintln!("never-reading clients: at most {most} connections, {queued} bytes queued");
    // Past half the places (256 of 512) each may hold 64 / 4 = 16: a few over half at most.
    assert!(
        most <= 256 + 8 * 16,
        "the greedy clients held {most} of 512 places"
    );
    assert!(
        answered.is_some(),
        "a ninth client's TCP query was not answered; logs:\n{}",
        server.log_text()
    );
    assert!(
        queued < 64 << 20,
        "{queued} bytes queued to connections that never read"
    );
}

/// Upstreams that are this server's own ZeroTier address (plain, or written as IPv4-mapped
/// IPv6), in a forward zone and as the default, on an interface that comes up after start:
/// once the address is known they are left out (with a warning), so a query is answered at
/// once instead of looping through ourselves.
#[test]
fn forwarding_never_loops_through_an_address_that_appears_later() {
    let lab = Lab::new(false);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("members.json"), crate::netns::MEMBERS).unwrap();
    let config = format!(
        "state_dir = \"state\"\n[listen]\ninterface = \"zt*\"\nport = 53\n\n\
         [forward]\nupstreams = [\"[::ffff:10.147.17.1]:53\"]\n\n\
         [[forward.zone]]\nname = \"consul\"\nupstreams = [\"10.147.17.1:53\"]\n\n\
         [[network]]\nid = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"members.json\"\n"
    );
    let server = Server::launch(dir, &config, &["ip", "netns", "exec", &lab.srv.name]);
    server.expect_log(Duration::from_secs(10), "waiting for the interface", |l| {
        l["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("not answering yet")
    });
    lab.add_zt();
    let dns = addr("10.147.17.1:53");
    answered_within_10s(&lab, dns, "db.backhaul.", &server);
    for upstream in ["[::ffff:10.147.17.1]:53", "10.147.17.1:53"] {
        server.expect_log(Duration::from_secs(10), "the loop is refused", |l| {
            l["upstream"] == upstream
                && l["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("that is this server")
        });
    }
    for name in ["www.example.com.", "web.service.consul."] {
        let started = std::time::Instant::now();
        let m = ask(&lab, dns, name).unwrap_or_else(|| panic!("{name}: no answer"));
        assert_eq!(
            m.metadata.response_code,
            hickory_proto::op::ResponseCode::Refused,
            "{name}: with every upstream being ourselves, nothing is forwarded"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{name}: {:?}",
            started.elapsed()
        );
    }
}

/// Members that name the cloud metadata address, or an address outside their network's routes,
/// and ask to be in a service: the server never connects there and never answers with those
/// addresses; the link-local one is not served at all.
#[test]
fn health_checks_go_only_to_addresses_on_the_network() {
    use crate::services::{until_answers, Listener};
    let lab = Lab::new(true);
    lab.add_outside_client();
    for a in ["10.147.17.11/32", "192.0.2.50/32"] {
        ip(&["-n", &lab.cli.name, "addr", "add", a, "dev", "czt"]);
    }
    let good = Listener::open(&lab.cli.name, "10.147.17.11:5432");
    let outside = Listener::open(&lab.cli.name, "192.0.2.50:5432");
    let members = serde_json::json!({
        "network": {"id": NETWORK, "config": {"routes": [{"target": "10.147.17.0/24", "via": null}]}},
        "members": [
            {"nodeId": "00000000a1", "name": "db-1", "description": "services: pg",
             "config": {"authorized": true, "creationTime": 1, "ipAssignments": ["10.147.17.11"]}},
            {"nodeId": "00000000a2", "name": "meta", "description": "services: pg",
             "config": {"authorized": true, "creationTime": 2, "ipAssignments": ["169.254.169.254"]}},
            {"nodeId": "00000000a3", "name": "away", "description": "services: pg",
             "config": {"authorized": true, "creationTime": 3, "ipAssignments": ["192.0.2.50"]}},
        ],
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("members.json"), members.to_string()).unwrap();
    let config = format!(
        "state_dir = \"state\"\n[listen]\ninterface = \"{ZT_IF}\"\nport = 53\n\n[forward]\nupstreams = []\n\n\
         [[network]]\nid = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"members.json\"\n\n\
         [[service]]\nname = \"pg\"\nport = 5432\ncheck = \"tcp\"\ninterval = \"1s\"\n"
    );
    let mut server = Server::launch(dir, &config, &["ip", "netns", "exec", &lab.srv.name]);
    server.dns = addr("10.147.17.1:53");
    until_answers(
        &server,
        &lab,
        "pg.backhaul.",
        &["10.147.17.11"],
        Duration::from_secs(15),
    );
    // Checks ran (db-1 was checked); a few more rounds, then nobody connected elsewhere.
    wait_for(Duration::from_secs(10), || {
        (good.accepted() >= 3).then_some(())
    })
    .expect("db-1 is checked every second");
    until_answers(
        &server,
        &lab,
        "pg.backhaul.",
        &["10.147.17.11"],
        Duration::from_secs(5),
    );
    assert_eq!(
        outside.accepted(),
        0,
        "a check went outside the network's routes"
    );
    // The link-local address is not served even as the member's own name.
    let meta = ask(&lab, server.dns, "meta.backhaul.").unwrap();
    assert!(meta.answers.is_empty(), "{meta:?}");
}

/// `check` on a records file whose `$INCLUDE` names `target` (written by `setup` in the
/// config's directory): exit code, stderr, and how long it took (killed after 30 s).
fn check_including(target: &str, setup: impl FnOnce(&std::path::Path)) -> (i32, String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    std::fs::write(dir.path().join("m.json"), "[]").unwrap();
    std::fs::write(
        dir.path().join("records.zone"),
        format!("ok A 10.147.17.9\n$INCLUDE {target}\n"),
    )
    .unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"state\"\n[listen]\naddresses = [\"127.0.0.1\"]\n[forward]\nupstreams = []\n\
             [records]\nzone_file = \"records.zone\"\n[[network]]\nid = \"{NETWORK}\"\n\
             source = \"file\"\nmembers_file = \"m.json\"\n"
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = std::process::Command::new("timeout")
        .args(["30", binary(), "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

/// `$INCLUDE` of a FIFO, of `/dev/zero`, of a directory, and eight files that each include the
/// next eight times: each is refused at once with one line saying why (none hangs, none
/// grows without bound).
#[test]
fn includes_of_special_files_and_include_bombs_are_refused_quickly() {
    let fifo = check_including("pipe", |dir| {
        let path = std::ffi::CString::new(dir.join("pipe").to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo has no other effect.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    });
    let zero = check_including("/dev/zero", |_| {});
    let directory = check_including("sub", |dir| std::fs::create_dir(dir.join("sub")).unwrap());
    let bomb = check_including("b0.zone", |dir| {
        for i in 0..8 {
            let next = format!("$INCLUDE b{}.zone\n", i + 1).repeat(8);
            let body = if i < 7 {
                next
            } else {
                "x TXT \"leaf\"\n".to_owned()
            };
            std::fs::write(dir.join(format!("b{i}.zone")), body).unwrap();
        }
    });
    for (what, (code, err, took), says) in [
        ("fifo", fifo, "not a regular file"),
        ("/dev/zero", zero, "not a regular file"),
        ("directory", directory, "not a regular file"),
        ("include bomb", bomb, "files read through $INCLUDE"),
    ] {
        assert_eq!(code, 2, "{what}: exit code; stderr: {err}");
        assert!(err.contains(says), "{what}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err}");
        assert!(took < Duration::from_secs(10), "{what}: took {took:?}");
    }
}

/// Sends `n` copies of `query` (ids 0..n) from `from` to `to` as fast as it can, never
/// waiting for answers, while a second thread reads what comes back: (full answers, TC=1
/// slips, bytes received).
fn flood(from: &str, to: std::net::SocketAddr, query: &[u8], n: u16) -> (usize, usize, usize) {
    let sock = std::net::UdpSocket::bind(format!("{from}:0")).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let reader = sock.try_clone().unwrap();
    std::thread::scope(|scope| {
        let counts = scope.spawn(move || {
            let (mut full, mut slipped, mut bytes) = (0, 0, 0);
            let mut buf = [0u8; 4096];
            while let Ok((len, _)) = reader.recv_from(&mut buf) {
                bytes += len;
                if buf[2] & 0x02 != 0 {
                    slipped += 1;
                } else {
                    full += 1;
                }
            }
            (full, slipped, bytes)
        });
        for id in 0..n {
            let mut q = query.to_vec();
            q[..2].copy_from_slice(&id.to_be_bytes());
            sock.send_to(&q, to).unwrap();
            // A breath every 100 datagrams: the machine's loopback queue is shared with the
            // other tests running meanwhile, which must lose nothing to this flood.
            if id % 100 == 99 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        counts.join().unwrap()
    })
}

/// Response rate limiting as NSD and Knot do it, on by default for the public view: a TXT
/// flood (answers from our zone, the best amplifier) and an ANY flood at one name from one
/// source are cut to the rate, half of the rest slip out empty with TC=1, the bytes sent back
/// stay below the bytes received; random names under the zone share the zone's NXDOMAIN
/// budget; another prefix, and another name, are answered in full meanwhile.
#[test]
fn every_response_class_is_rate_limited_on_the_public_view_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let txt = format!(
        "@ TXT \"{}\" \"{}\"\nwww A 192.0.2.80\n",
        "v".repeat(250),
        "w".repeat(250)
    );
    std::fs::write(dir.path().join("public.zone"), txt).unwrap();
    std::fs::write(dir.path().join("members.json"), crate::netns::MEMBERS).unwrap();
    let tables = format!(
        "[public]\naddresses = [\"127.0.0.3\"]\nzone_file = \"public.zone\"\n\n\
         [[network]]\nid = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"members.json\"\n"
    );
    let server = Server::start_in(dir, "", &tables);
    let public: std::net::SocketAddr = server
        .wait_log(Duration::from_secs(10), |l| {
            l["message"] == "listening (udp and tcp)" && l["view"] == "public"
        })
        .and_then(|l| l["address"].as_str().map(|a| a.parse().unwrap()))
        .unwrap();
    let ask = |name: &str, rtype| request(name, rtype).to_vec().unwrap();
    let txt = ask("backhaul.", RecordType::TXT);
    let one = udp_raw(public, &txt).unwrap();
    assert!(one.len() > 500, "a TXT answer of {} bytes", one.len());
    let n: u16 = 5000;
    for (what, query, from) in [
        ("TXT", txt.clone(), "127.0.0.4"),
        ("ANY", ask("backhaul.", RecordType::ANY), "127.0.0.5"),
    ] {
        // The default rate is 200 per second and /24: these sources are one prefix each only
        // by being alone in the test; the limit is per prefix, class and name.
        let (full, slipped, bytes) = flood(from, public, &query, n);
        let sent = usize::from(n) * query.len();
        eprintln!("{what} flood: {full} full, {slipped} TC=1, {bytes} bytes back for {sent} sent");
        // The bucket's burst (200) and its refill while the flood lasts; of the rest about
        // every second slips (some may be lost on the way back, as UDP is).
        assert!(full <= 600, "{what}: {full} full answers of {n}");
        assert!(slipped >= 1000, "{what}: {slipped} slipped of {n}");
        assert!(
            bytes < sent * 2,
            "{what}: {bytes} bytes back for {sent} sent"
        );
    }
    // Random names: one zone's NXDOMAIN budget.
    let sock = std::net::UdpSocket::bind("127.0.1.6:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    for i in 0..n {
        let q = ask(&format!("r{i}.backhaul."), RecordType::A);
        sock.send_to(&q, public).unwrap();
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let mut full = 0;
    let mut buf = [0u8; 4096];
    while let Ok((_, _)) = sock.recv_from(&mut buf) {
        full += usize::from(buf[2] & 0x02 == 0);
    }
    assert!(full <= 600, "random names: {full} full NXDOMAIN of {n}");
    // Meanwhile: another prefix gets the TXT answer in full, the flooding prefix another
    // name, and the flooder everything over TCP.
    for (from, q) in [
        ("127.1.0.9", &txt),
        ("127.0.0.4", &ask("www.backhaul.", RecordType::A)),
    ] {
        let m = udp_raw_from(format!("{from}:0").parse().unwrap(), public, q).unwrap();
        assert_eq!(m[2] & 0x02, 0, "{from}: truncated");
        assert!(!hickory_proto::op::Message::from_vec(&m)
            .unwrap()
            .answers
            .is_empty());
    }
    assert!(tcp_raw(public, &txt).len() > 500);
}
