//! Answering only on the ZeroTier interface, in network namespaces this test builds.
//!
//! A server host with a ZeroTier-like interface (`ztmjfmfyq5`, 10.147.17.1/24, fd00:5a::1/64)
//! and a public-like one (198.51.100.1/24); a client host on the other ends. Needs root: CI
//! runs as root, and these tests fail (never skip) when they cannot build their network.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::netns::*;
use crate::common::*;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

pub(crate) const MEMBERS: &str = r#"[
  {"nodeId": "a45dc9d260", "name": "db", "config": {"authorized": true, "creationTime": 1, "ipAssignments": ["10.147.17.20"]}},
  {"nodeId": "e610b78bf1", "name": "web", "config": {"authorized": true, "creationTime": 2, "ipAssignments": ["10.147.17.21"]}}
]"#;

/// Starts the server inside `lab.srv` with `listen` as its `[listen]` table body.
pub(crate) fn serve(lab: &Lab, listen: &str, prefix: &[&str]) -> Server {
    serve_forwarding(lab, listen, "", prefix)
}

/// Like [`serve`], forwarding other names to `upstreams` (a TOML list body).
pub(crate) fn serve_forwarding(
    lab: &Lab,
    listen: &str,
    upstreams: &str,
    prefix: &[&str],
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("members.json"), MEMBERS).unwrap();
    let config = format!(
        "state_dir = \"state\"\n[listen]\n{listen}\n\n[forward]\nupstreams = [{upstreams}]\n\n[[network]]\nid = \"{NETWORK}\"\n\
         source = \"file\"\nmembers_file = \"members.json\"\npoll_interval = \"1s\"\n"
    );
    let mut full = vec!["ip", "netns", "exec", lab.srv.name.as_str()];
    full.extend_from_slice(prefix);
    Server::launch(dir, &config, &full)
}

pub(crate) fn ask(lab: &Lab, server: SocketAddr, name: &str) -> Option<Message> {
    let q = request(name, RecordType::A).to_vec().unwrap();
    in_netns(&lab.cli.name, || udp_raw(server, &q)).map(|b| Message::from_vec(&b).unwrap())
}

pub(crate) fn ask_from(lab: &Lab, from: &str, server: SocketAddr, name: &str) -> Option<Message> {
    let q = request(name, RecordType::A).to_vec().unwrap();
    let from: SocketAddr = format!("{from}:0").parse().unwrap();
    in_netns(&lab.cli.name, || udp_raw_from(from, server, &q))
        .map(|b| Message::from_vec(&b).unwrap())
}

/// Waits (up to 10 s, the issue's bound) until `server` answers `name` with an address.
pub(crate) fn answered_within_10s(
    lab: &Lab,
    server: SocketAddr,
    name: &str,
    logs: &Server,
) -> Message {
    wait_for(Duration::from_secs(10), || {
        ask(lab, server, name).filter(|m| !m.answers.is_empty())
    })
    .unwrap_or_else(|| {
        panic!(
            "{name} not answered on {server} within 10 s; logs:\n{}",
            logs.log_text()
        )
    })
}

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn answers_on_the_zerotier_interface_only() {
    let lab = Lab::new(true);
    let server = serve(&lab, "interface = \"zt*\"\nport = 53", &[]);
    let m = answered_within_10s(&lab, addr("10.147.17.1:53"), "db.backhaul.", &server);
    assert!(is_a(&m, "10.147.17.20"));
    // IPv6 on the same interface.
    let q = request("web.backhaul.", RecordType::A).to_vec().unwrap();
    let v6 =
        in_netns(&lab.cli.name, || udp_raw(addr("[fd00:5a::1]:53"), &q)).expect("answer over IPv6");
    assert!(is_a(&Message::from_vec(&v6).unwrap(), "10.147.17.21"));
    // Nothing at all on the public address: not even a REFUSED.
    assert!(ask(&lab, addr("198.51.100.1:53"), "db.backhaul.").is_none());
    let sockets = exec_in(&lab.srv.name, &["ss", "-lnu"]);
    assert!(
        !sockets.contains("198.51.100.1") && !sockets.contains("0.0.0.0:53"),
        "{sockets}"
    );
    // The NS name resolves to the interface's addresses, learnt while running.
    let m = wait_for(Duration::from_secs(10), || {
        ask(&lab, addr("10.147.17.1:53"), "backhaul.").filter(|m| is_a(m, "10.147.17.1"))
    });
    assert!(
        m.is_some(),
        "NS name lacks the zt address; logs:\n{}",
        server.log_text()
    );
}

#[test]
fn follows_addresses_added_and_removed() {
    let lab = Lab::new(true);
    let server = serve(&lab, "interface = \"zt*\"\nport = 53", &[]);
    answered_within_10s(&lab, addr("10.147.17.1:53"), "db.backhaul.", &server);

    ip(&[
        "-n",
        &lab.srv.name,
        "addr",
        "add",
        "10.147.18.1/24",
        "dev",
        ZT_IF,
    ]);
    ip(&[
        "-n",
        &lab.cli.name,
        "addr",
        "add",
        "10.147.18.2/24",
        "dev",
        "czt",
    ]);
    let m = answered_within_10s(&lab, addr("10.147.18.1:53"), "db.backhaul.", &server);
    assert!(is_a(&m, "10.147.17.20"));
    // The new subnet's clients are allowed too.
    let m = ask_from(&lab, "10.147.18.2", addr("10.147.18.1:53"), "db.backhaul.").unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);

    ip(&[
        "-n",
        &lab.srv.name,
        "addr",
        "del",
        "10.147.18.1/24",
        "dev",
        ZT_IF,
    ]);
    server.expect_log(
        Duration::from_secs(10),
        "the removed address is closed",
        |l| l["message"] == "stopped listening (address gone)" && l["address"] == "10.147.18.1:53",
    );
    let sockets = exec_in(&lab.srv.name, &["ss", "-lnu"]);
    assert!(!sockets.contains("10.147.18.1:53"), "{sockets}");
    // The rest keeps working.
    answered_within_10s(&lab, addr("10.147.17.1:53"), "web.backhaul.", &server);
}

#[test]
fn picks_up_an_interface_that_appears_after_start() {
    let lab = Lab::new(false);
    let mut server = serve(&lab, "interface = \"zt*\"\nport = 53", &[]);
    server.expect_log(
        Duration::from_secs(10),
        "a message saying what it waits for",
        |l| {
            l["message"]
                .as_str()
                .unwrap_or("")
                .contains("waiting for an interface matching \"zt*\"")
        },
    );
    assert!(server.alive());
    assert!(ask(&lab, addr("198.51.100.1:53"), "db.backhaul.").is_none());
    lab.add_zt(); // zerotier-one comes up after us
    answered_within_10s(&lab, addr("10.147.17.1:53"), "db.backhaul.", &server);
}

#[test]
fn clients_outside_the_subnets_are_refused_unless_allowed() {
    let lab = Lab::new(true);
    lab.add_outside_client();
    let server = serve(&lab, "interface = \"zt*\"\nport = 53", &[]);
    answered_within_10s(&lab, addr("10.147.17.1:53"), "db.backhaul.", &server);
    let m = ask_from(&lab, "192.0.2.2", addr("10.147.17.1:53"), "db.backhaul.").expect("an answer");
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.answers.is_empty() && !m.metadata.authoritative);
    // Over TCP it is not even served: the connection is closed at accept, so an outside host
    // cannot hold connections.
    let q = request("db.backhaul.", RecordType::A);
    let tcp = in_netns(&lab.cli.name, || {
        use std::io::{Read, Write};
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&addr("192.0.2.2:0").into()).unwrap();
        sock.connect(&addr("10.147.17.1:53").into()).unwrap();
        let mut s: std::net::TcpStream = sock.into();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let bytes = q.to_vec().unwrap();
        let _ = s.write_all(&[&(bytes.len() as u16).to_be_bytes()[..], &bytes].concat());
        let mut buf = [0u8; 2];
        s.read(&mut buf)
    });
    assert!(
        matches!(tcp, Ok(0) | Err(_)),
        "outside TCP client got data: {tcp:?}"
    );

    // `allow` lets that network in.
    let allowed = serve(
        &lab,
        "interface = \"zt*\"\nport = 5353\nallow = [\"192.0.2.0/24\"]",
        &[],
    );
    let m = wait_for(Duration::from_secs(10), || {
        ask_from(&lab, "192.0.2.2", addr("10.147.17.1:5353"), "db.backhaul.")
            .filter(|m| !m.answers.is_empty())
    })
    .unwrap_or_else(|| panic!("allowed client not answered; logs:\n{}", allowed.log_text()));
    assert!(is_a(&m, "10.147.17.20"));
}

#[test]
fn forwarding_only_for_allowed_clients() {
    let lab = Lab::new(true);
    lab.add_outside_client();
    // The upstream lives on the server host's loopback.
    let up = FakeUpstream::start_in(Some(&lab.srv.name));
    let server = serve_forwarding(
        &lab,
        "interface = \"zt*\"\nport = 53",
        &format!("\"{}\"", up.addr),
        &[],
    );
    answered_within_10s(&lab, addr("10.147.17.1:53"), "db.backhaul.", &server);
    // A ZeroTier client gets any name resolved.
    let m = ask(&lab, addr("10.147.17.1:53"), "example.com.").expect("answer");
    assert!(
        is_a(&m, "192.0.2.10") && m.metadata.recursion_available,
        "{m:?}"
    );
    // An outside client gets REFUSED, and nothing reaches the upstream for it.
    let m = ask_from(
        &lab,
        "192.0.2.2",
        addr("10.147.17.1:53"),
        "www.example.com.",
    )
    .expect("answer");
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert_eq!(up.count("www.example.com."), 0);
    // Nor on the public side, where nothing listens at all.
    assert!(ask(&lab, addr("198.51.100.1:53"), "example.com.").is_none());
}

#[test]
fn binds_port_53_with_cap_net_bind_service_only() {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::new(true);
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let with_cap = [
        &nobody[..],
        &[
            "--inh-caps=+net_bind_service",
            "--ambient-caps=+net_bind_service",
        ],
    ]
    .concat();
    let readable = |s: &Server| {
        std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // The unit's AmbientCapabilities=CAP_NET_BIND_SERVICE, as user nobody.
    let server = serve(&lab, "interface = \"zt*\"\nport = 53", &with_cap);
    readable(&server);
    let m = answered_within_10s(&lab, addr("10.147.17.1:53"), "db.backhaul.", &server);
    assert!(is_a(&m, "10.147.17.20"));
    // `ip netns exec` and setpriv both exec, so the child is the server itself.
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid.split_whitespace().skip(1).all(|u| u == "65534"),
        "{uid}"
    );
    let caps = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    // Only CAP_NET_BIND_SERVICE (bit 10) is effective.
    assert_eq!(
        caps.split_whitespace().nth(1),
        Some("0000000000000400"),
        "{caps}"
    );

    // Without the capability: a clear error and exit 1, not a silent retry loop.
    let mut denied = serve(&lab, "interface = \"zt*\"\nport = 53", &nobody);
    readable(&denied);
    let code = denied.exit_code(Duration::from_secs(10));
    assert_eq!(code, Some(1), "logs:\n{}", denied.log_text());
    assert!(
        denied.log_text().contains("CAP_NET_BIND_SERVICE"),
        "{}",
        denied.log_text()
    );
}

// ---------------------------------------------------------------------------------------------
// `[listen] network = ...`: a fake local zerotier-one service (its JSON API on port 9993) inside the
// server's namespace.

const AUTHTOKEN: &str = "abcdefghijklmnopqrstuvwx";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LocalMode {
    Joined,
    NotJoined,
    AccessDenied,
}

struct FakeLocal {
    port: u16,
    mode: Arc<Mutex<LocalMode>>,
    http: FakeHttp,
}

impl FakeLocal {
    fn start(ns: &str) -> FakeLocal {
        let mode = Arc::new(Mutex::new(LocalMode::Joined));
        let app = axum::Router::new()
            .fallback(local_handler)
            .with_state(mode.clone());
        let http = FakeHttp::start(app, Some(ns));
        FakeLocal {
            port: http.addr.port(),
            mode,
            http,
        }
    }

    fn set(&self, m: LocalMode) {
        *self.mode.lock().unwrap() = m;
    }

    fn stop(&mut self) {
        self.http.stop();
    }
}

fn empty(status: u16) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body("{}".into())
        .unwrap()
}

async fn local_handler(
    State(mode): State<Arc<Mutex<LocalMode>>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    // Token forms in the order the service checks them: X-ZT1-Auth, ?auth=, Bearer.
    let header = headers
        .get("x-zt1-auth")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let query = uri
        .query()
        .and_then(|q| q.strip_prefix("auth="))
        .map(str::to_owned);
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.to_owned());
    if header.or(query).or(bearer).as_deref() != Some(AUTHTOKEN) {
        return empty(401);
    }
    let mode = *mode.lock().unwrap();
    if uri.path() != format!("/network/{NETWORK}") || mode == LocalMode::NotJoined {
        return empty(404);
    }
    let status = if mode == LocalMode::AccessDenied {
        "ACCESS_DENIED"
    } else {
        "OK"
    };
    let body = serde_json::json!({
        "allowDNS": false, "allowDefault": false, "allowGlobal": false, "allowManaged": true,
        "assignedAddresses": ["10.147.17.1/24", "fd00:5a:0:0:0:0:0:1/64"],
        "bridge": false, "broadcastEnabled": true, "dhcp": false,
        "dns": {"domain": "", "servers": []},
        "id": NETWORK, "mac": "02:a4:5d:d5:30:a2", "mtu": 2800,
        "multicastSubscriptions": [{"adi": 0, "mac": "ff:ff:ff:ff:ff:ff"}],
        "name": "test backhaul", "netconfRevision": 12, "nwid": NETWORK,
        "portDeviceName": ZT_IF, "portError": 0,
        "routes": [{"flags": 0, "metric": 0, "target": "10.147.17.0/24", "via": null}],
        "status": status, "type": "PRIVATE"
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body.to_string().into())
        .unwrap()
}

fn local_listen(fake: &FakeLocal, token_file: &str) -> String {
    format!(
        "network = \"{NETWORK}\"\nauthtoken_file = \"{token_file}\"\n\
         local_api_url = \"http://127.0.0.1:{}\"\nport = 53",
        fake.port
    )
}

fn waits_saying(server: &Server, says: &str) {
    server.expect_log(
        Duration::from_secs(10),
        &format!("a warning saying {says:?}"),
        |l| l["level"] == "WARN" && l["message"].as_str().unwrap_or("").contains(says),
    );
}

#[test]
fn network_mode_asks_the_local_zerotier_service() {
    let lab = Lab::new(true);
    let mut fake = FakeLocal::start(&lab.srv.name);
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("authtoken.secret");
    std::fs::write(&token_file, format!("{AUTHTOKEN}\n")).unwrap();
    let token_path = token_file.to_str().unwrap();

    // Not joined yet: the server starts, says what to do, and waits.
    fake.set(LocalMode::NotJoined);
    let server = serve(&lab, &local_listen(&fake, token_path), &[]);
    waits_saying(
        &server,
        &format!("has not joined network {NETWORK}: run `zerotier-cli join {NETWORK}`"),
    );
    fake.set(LocalMode::AccessDenied);
    waits_saying(
        &server,
        "is ACCESS_DENIED on this host; authorize this member",
    );
    // Joined and authorized: answered on the assigned addresses, IPv4 and IPv6.
    fake.set(LocalMode::Joined);
    answered_within_10s(&lab, addr("10.147.17.1:53"), "db.backhaul.", &server);
    let q = request("db.backhaul.", RecordType::A).to_vec().unwrap();
    assert!(in_netns(&lab.cli.name, || udp_raw(addr("[fd00:5a::1]:53"), &q)).is_some());
    assert!(ask(&lab, addr("198.51.100.1:53"), "db.backhaul.").is_none());
    // zerotier-one stops: a clear message, and the addresses we have keep answering.
    fake.stop();
    waits_saying(&server, "zerotier-one is not running");
    assert!(ask(&lab, addr("10.147.17.1:53"), "db.backhaul.").is_some());

    // A wrong token is named as such.
    let fake2 = FakeLocal::start(&lab.srv.name);
    let wrong = token_dir.path().join("wrong.secret");
    std::fs::write(&wrong, "not-the-token").unwrap();
    let rejected = serve(
        &lab,
        &local_listen(&fake2, wrong.to_str().unwrap()).replace("port = 53", "port = 5300"),
        &[],
    );
    waits_saying(&rejected, "rejected the token from");
    assert!(!rejected.log_text().contains("not-the-token"));
}

#[test]
fn unreadable_authtoken_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!("[listen]\nnetwork = \"{NETWORK}\"\nauthtoken_file = \"/nonexistent/authtoken.secret\"\n[[network]]\nid = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"c.toml\"\n"),
    )
    .unwrap();
    let (code, _, err) = run_cli(&["check"], &config);
    assert_eq!(code, 2);
    assert!(
        err.contains("listen.authtoken_file") && err.contains("zerotier-one"),
        "{err}"
    );
}

/// Opens a TCP connection from `from` to `to` (inside the client namespace, on the calling
/// thread's namespace), non-blocking once connected.
pub(crate) fn tcp_from(from: &str, to: SocketAddr) -> std::io::Result<std::net::TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.bind(&addr(&format!("{from}:0")).into())?;
    sock.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(sock.into())
}

/// One framed TCP query (`framed`: length prefix and message) from `from` in the client
/// namespace; the answer, or `None` when the connection gives none within 2 s.
pub(crate) fn tcp_ask_from(
    lab: &Lab,
    from: &str,
    to: SocketAddr,
    framed: &[u8],
) -> Option<Message> {
    in_netns(&lab.cli.name, || {
        use std::io::{Read, Write};
        let mut s = tcp_from(from, to).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(framed).ok()?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).ok()?;
        let mut buf = vec![0; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).ok()?;
        Message::from_vec(&buf).ok()
    })
}

/// One client (an address of the network) pipelines queries on hundreds of connections and
/// never reads; an outside host opens hundreds more. Neither takes the TCP service: the outside
/// host is closed at accept, the other is held to its share and dropped once its answers back
/// up, and a third client's TCP queries are answered meanwhile.
#[test]
fn tcp_clients_that_do_not_read_or_may_not_ask_cannot_take_the_service() {
    let lab = Lab::new(true);
    lab.add_outside_client();
    // The greedy client: a second address on the client host.
    ip(&[
        "-n",
        &lab.cli.name,
        "addr",
        "add",
        "10.147.17.3/24",
        "dev",
        "czt",
    ]);
    let server = serve(
        &lab,
        "interface = \"zt*\"\nport = 53\ntcp_per_client = 16\ntcp_write_timeout = \"1s\"",
        &[],
    );
    let dns = addr("10.147.17.1:53");
    answered_within_10s(&lab, dns, "db.backhaul.", &server);
    let query = {
        let bytes = request("db.backhaul.", RecordType::A).to_vec().unwrap();
        [&(bytes.len() as u16).to_be_bytes()[..], &bytes].concat()
    };
    let held = in_netns(&lab.cli.name, || {
        use std::io::Write;
        let mut held = Vec::new();
        for _ in 0..520 {
            // Connections over the client's share are closed by the server at once; keep
            // what the kernel accepted anyway.
            let Ok(mut s) = tcp_from("10.147.17.3", dns) else {
                continue;
            };
            s.set_nonblocking(true).unwrap();
            // As many queries as the socket takes, then never a read.
            let pipeline = query.repeat(4000);
            let _ = s.write(&pipeline);
            held.push(s);
        }
        for _ in 0..200 {
            if let Ok(s) = tcp_from("192.0.2.2", dns) {
                held.push(s);
            }
        }
        held
    });
    // A third client's TCP queries are answered.
    let answered = wait_for(Duration::from_secs(10), || {
        tcp_ask_from(&lab, "10.147.17.2", dns, &query).filter(|m| is_a(m, "10.147.17.20"))
    });
    assert!(
        answered.is_some(),
        "an allowed client's TCP query was not answered while others held connections; logs:\n{}",
        server.log_text()
    );
    // The server holds at most the greedy client's share, and nothing of the outside host's.
    let established = wait_for(Duration::from_secs(10), || {
        let ss = exec_in(
            &lab.srv.name,
            &["ss", "-tnH", "state", "established", "( sport = :53 )"],
        );
        let greedy = ss.matches("10.147.17.3:").count();
        let outside = ss.matches("192.0.2.2:").count();
        (greedy <= 16 && outside == 0).then_some((greedy, outside))
    });
    assert!(
        established.is_some(),
        "{}",
        exec_in(&lab.srv.name, &["ss", "-tn", "state", "established"])
    );
    drop(held);
}

/// `GET /healthz` from address `from` inside the client namespace; the status code.
fn http_status_from(lab: &Lab, from: &str, to: SocketAddr) -> u16 {
    in_netns(&lab.cli.name, || {
        use std::io::{Read, Write};
        let mut s = tcp_from(from, to).unwrap();
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET /healthz HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text[9..12].parse().unwrap()
    })
}

#[test]
fn the_http_endpoint_answers_the_network_and_allowed_clients_only() {
    let lab = Lab::new(true);
    lab.add_outside_client();
    let server = serve(
        &lab,
        &format!(
            "interface = \"{ZT_IF}\"\nport = 53\n\n[http]\nlisten = \"10.147.17.1:9153\"\nallow = [\"192.0.2.9/32\"]"
        ),
        &[],
    );
    let http = http_addr(&server);
    assert_eq!(http, addr("10.147.17.1:9153"));
    // Inside the ZeroTier subnet: answered (once the subnets are known).
    wait_for(Duration::from_secs(10), || {
        (http_status_from(&lab, "10.147.17.2", http) == 200).then_some(())
    })
    .unwrap_or_else(|| panic!("{}", server.log_text()));
    // Outside it and not in [http] allow: 403.
    assert_eq!(http_status_from(&lab, "192.0.2.2", http), 403);
}

/// `client-setup`, run where the server runs: each OS's commands name the server's ZeroTier
/// addresses and every zone; the plain resolv.conf variant, applied to the client namespace
/// (`ip netns exec` reads /etc/netns/<name>/resolv.conf), makes glibc's `getent hosts` and
/// `_whoami` work.
#[test]
fn client_setup_prints_commands_that_work() {
    let lab = Lab::new(true);
    let server = serve(&lab, "interface = \"zt*\"\nport = 53", &[]);
    answered_within_10s(&lab, addr("10.147.17.1:53"), "db.backhaul.", &server);
    let config = server.path("backhaul-dns.toml");
    let setup = |os: &str| {
        let out = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.srv.name,
                binary(),
                "client-setup",
                "--config",
            ])
            .arg(&config)
            .args(["--os", os])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{os}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    for os in ["linux", "networkmanager", "resolvconf", "macos", "windows"] {
        let text = setup(os);
        for part in [
            "10.147.17.1",
            "backhaul",
            "20.17.147.10.in-addr.arpa",
            "_whoami.backhaul",
        ] {
            assert!(text.contains(part), "{os} lacks {part}:\n{text}");
        }
        assert!(
            !text.contains("198.51.100.1"),
            "{os} names the public address:\n{text}"
        );
    }
    assert!(setup("linux").contains(&format!("resolvectl dns {ZT_IF} 10.147.17.1")));
    // The resolv.conf line, applied to the client namespace's own resolv.conf.
    let text = setup("resolvconf");
    let line = (text.lines())
        .find(|l| l.ends_with("> /etc/resolv.conf"))
        .expect("a line writing /etc/resolv.conf");
    let resolv_conf = ResolvConf::new(&lab.cli.name);
    let line = line.replace(
        "/etc/resolv.conf",
        &resolv_conf.path().display().to_string(),
    );
    let status = std::process::Command::new("sh")
        .args(["-c", &line])
        .status()
        .unwrap();
    assert!(status.success(), "{line}");
    let hosts = exec_in(&lab.cli.name, &["getent", "hosts", "db.backhaul"]);
    assert!(hosts.starts_with("10.147.17.20"), "{hosts}");
    // The search domain: a short name works too.
    let short = exec_in(&lab.cli.name, &["getent", "hosts", "web"]);
    assert!(short.starts_with("10.147.17.21"), "{short}");
}
