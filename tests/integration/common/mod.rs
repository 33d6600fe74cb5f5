//! Test harness: a fake ZeroTier Central, the real `backhaul-dns` binary, and a DNS client.
//!
//! The fake follows the ZeroTier Central API v1 (<https://docs.zerotier.com/api/central/v1>): `/api/v1/network/{id}` and `.../member`,
//! `Authorization: token <T>` (or legacy `bearer`), 401/403/404 bodies shaped
//! `{"type","message"}`, 429 with `Retry-After` and `X-Ratelimit-*` headers.

pub mod browser;
pub mod netns;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::{json, Value};

pub const NETWORK: &str = "8056c2e21c000001";
pub const TOKEN: &str = "s3cr3t-T0KEN-for-tests";

// ---------------------------------------------------------------------------------------------
// Fake Central

#[derive(Clone, Debug)]
pub enum Fault {
    Status(u16),
    /// 429 with `Retry-After: <secs>`.
    RateLimited(u64),
    /// The member list cut off mid-document.
    TruncatedJson,
    /// A body that is not JSON at all.
    NotJson,
    /// Valid JSON of the wrong shape (an object instead of a member list).
    WrongShape,
    /// Answer only after this long.
    Hang(Duration),
}

#[derive(Clone, Debug)]
pub struct Logged {
    pub at: Instant,
    pub method: String,
    pub body: String,
    pub path: String,
    pub authorization: Option<String>,
}

pub struct CentralState {
    /// Other network ids answered with the same network object and members.
    pub also: Vec<String>,
    pub network: Value,
    pub members: Vec<Value>,
    pub fault: Option<Fault>,
    pub log: Vec<Logged>,
}

/// An HTTP server on 127.0.0.1 (inside network namespace `ns`, when given) on a runtime of
/// its own: every fake API of these tests (Central, controller, local service) is one.
pub struct FakeHttp {
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FakeHttp {
    pub fn start(app: axum::Router, ns: Option<&str>) -> FakeHttp {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // A listener opened on a thread inside the namespace stays in that namespace.
        let listener = match ns {
            Some(ns) => netns::in_netns(ns, || std::net::TcpListener::bind("127.0.0.1:0").unwrap()),
            None => std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        };
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap()
        });
        FakeHttp {
            addr,
            runtime: Some(runtime),
        }
    }

    /// Stops answering: later connections are refused.
    pub fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct FakeCentral {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<CentralState>>,
    http: FakeHttp,
}

impl FakeCentral {
    pub fn start(network: Value, members: Vec<Value>) -> FakeCentral {
        Self::start_in(network, members, None)
    }

    /// A fake Central on 127.0.0.1 inside network namespace `ns` (a server there polls it).
    pub fn start_in(network: Value, members: Vec<Value>, ns: Option<&str>) -> FakeCentral {
        let state = Arc::new(Mutex::new(CentralState {
            also: Vec::new(),
            network,
            members,
            fault: None,
            log: Vec::new(),
        }));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let http = FakeHttp::start(app, ns);
        FakeCentral {
            addr: http.addr,
            state,
            http,
        }
    }

    pub fn api_url(&self) -> String {
        format!("http://{}/api/v1", self.addr)
    }

    pub fn set_members(&self, members: Vec<Value>) {
        self.state.lock().unwrap().members = members;
    }

    pub fn serve_also(&self, id: &str) {
        self.state.lock().unwrap().also.push(id.to_owned());
    }

    pub fn set_fault(&self, fault: Option<Fault>) {
        self.state.lock().unwrap().fault = fault;
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    /// Stops answering: later connections are refused.
    pub fn stop(&mut self) {
        self.http.stop();
    }
}

fn json_response(status: u16, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

fn error_body(kind: &str, message: &str) -> String {
    json!({"type": kind, "message": message}).to_string()
}

async fn handle(
    State(state): State<Arc<Mutex<CentralState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (fault, network, members, also) = {
        let mut s = state.lock().unwrap();
        s.log.push(Logged {
            at: Instant::now(),
            method: method.to_string(),
            body: String::from_utf8_lossy(&body).into_owned(),
            path: uri.path().to_owned(),
            authorization: authorization.clone(),
        });
        (
            s.fault.clone(),
            s.network.clone(),
            s.members.clone(),
            s.also.clone(),
        )
    };
    let authorized = authorization
        .as_deref()
        .and_then(|a| a.split_once(' '))
        .is_some_and(|(scheme, tok)| {
            (scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
                && tok == TOKEN
        });
    if !authorized {
        return json_response(401, error_body("unauthorized", "Authorization required"));
    }
    match fault {
        Some(Fault::Status(code)) => {
            return json_response(code, error_body("internal", "injected fault"))
        }
        Some(Fault::RateLimited(secs)) => {
            return Response::builder()
                .status(StatusCode::TOO_MANY_REQUESTS)
                .header("retry-after", secs.to_string())
                .header("x-ratelimit-limit", "20")
                .header("x-ratelimit-remaining", "0")
                .body(Body::from(error_body("rate_limited", "Too Many Requests")))
                .unwrap()
        }
        Some(Fault::Hang(d)) => tokio::time::sleep(d).await,
        _ => {}
    }
    if method == Method::POST && uri.path() == format!("/api/v1/network/{NETWORK}") {
        // A partial update, as Central applies it: only the keys sent change.
        let update: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return json_response(400, error_body("bad_request", "Bad request")),
        };
        let mut s = state.lock().unwrap();
        if let Some(dns) = update.pointer("/config/dns") {
            s.network["config"]["dns"] = dns.clone();
        }
        return json_response(200, s.network.to_string());
    }
    if method != Method::GET {
        return json_response(405, error_body("method", "not allowed"));
    }
    let path = uri.path().trim_end_matches('/');
    let own = std::iter::once(NETWORK.to_owned())
        .chain(also)
        .map(|id| format!("/api/v1/network/{id}"))
        .find(|p| path == p || path.starts_with(&format!("{p}/")))
        .unwrap_or_else(|| format!("/api/v1/network/{NETWORK}"));
    if path == own {
        return json_response(200, network.to_string());
    }
    if path == format!("{own}/member") {
        let body = serde_json::to_string(&members).unwrap();
        let body = match fault {
            Some(Fault::TruncatedJson) => body[..body.len() * 2 / 3].to_owned(),
            Some(Fault::NotJson) => "<html>Bad Gateway</html>".to_owned(),
            Some(Fault::WrongShape) => json!({"members": members}).to_string(),
            _ => body,
        };
        return json_response(200, body);
    }
    if path.starts_with("/api/v1/network/") {
        // Another account's network: Central says 403 (zeronsd #107).
        return json_response(403, error_body("forbidden", "Access denied"));
    }
    json_response(404, error_body("not_found", "Item not found"))
}

/// A Central `Network` object (after the REAL23 capture), with our routes and IPv6 modes.
pub fn network_json(routes: &[&str], rfc4193: bool, sixplane: bool) -> Value {
    let routes: Vec<Value> = routes
        .iter()
        .map(|r| json!({"target": r, "via": null}))
        .collect();
    json!({
        "id": NETWORK, "type": "Network", "clock": 1691129592607i64,
        "config": {
            "authTokens": null, "creationTime": 1609407652789i64, "capabilities": [],
            "enableBroadcast": true, "id": NETWORK,
            "ipAssignmentPools": [{"ipRangeStart": "10.147.17.1", "ipRangeEnd": "10.147.17.254"}],
            "lastModified": 1691088265669i64, "mtu": 2800, "multicastLimit": 32,
            "name": "test backhaul", "private": true, "remoteTraceLevel": 0,
            "remoteTraceTarget": null, "routes": routes,
            "rules": [{"type": "ACTION_ACCEPT"}], "tags": [],
            "v4AssignMode": {"zt": true},
            "v6AssignMode": {"6plane": sixplane, "rfc4193": rfc4193, "zt": false},
            "dns": {"domain": "", "servers": null},
            "ssoConfig": {"enabled": false, "mode": ""}
        },
        "description": "", "rulesSource": "accept;\n", "permissions": null,
        "ownerId": "327cadab-2a2a-4c48-b592-a2ffe7883856",
        "onlineMemberCount": 0, "authorizedMemberCount": 3, "totalMemberCount": 5,
        "capabilitiesByName": {}, "tagsByName": {}, "ui": null
    })
}

/// A Central `Member` object shaped like the REAL23 capture.
pub fn member(node: &str, name: &str, authorized: bool, created: i64, ips: &[&str]) -> Value {
    json!({
        "id": format!("{NETWORK}-{node}"), "type": "Member", "clock": 1691078748727i64,
        "networkId": NETWORK, "nodeId": node, "controllerId": &NETWORK[..10],
        "hidden": false, "name": name, "description": "",
        "config": {
            "activeBridge": false, "address": node, "authorized": authorized,
            "capabilities": [], "creationTime": created, "id": node,
            "identity": format!("{node}:0:0152e4bb"), "ipAssignments": ips,
            "lastAuthorizedTime": created, "lastDeauthorizedTime": 0,
            "noAutoAssignIps": false, "nwid": NETWORK, "objtype": "member",
            "remoteTraceLevel": 0, "remoteTraceTarget": null, "revision": 3, "tags": [],
            "vMajor": 1, "vMinor": 14, "vRev": 1, "vProto": 12, "ssoExempt": false
        },
        "lastOnline": 1691078701874i64, "lastSeen": 1691078701874i64,
        "physicalAddress": "198.51.100.7", "physicalLocation": null,
        "clientVersion": "1.14.1", "protocolVersion": 12, "supportsRulesEngine": true
    })
}

// ---------------------------------------------------------------------------------------------
// The real binary

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_backhaul-dns")
}

pub struct Server {
    child: Child,
    pub dns: SocketAddr,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub dir: tempfile::TempDir,
}

/// Config text for one Central network served by `fake`, polled every `poll`.
pub fn central_network(fake: &FakeCentral, poll: &str) -> String {
    format!(
        "[[network]]\nid = \"{NETWORK}\"\nsource = \"central\"\napi_url = \"{}\"\n\
         token_file = \"central.token\"\npoll_interval = \"{poll}\"\nrequest_timeout = \"2s\"\n",
        fake.api_url()
    )
}

impl Server {
    /// Writes a config (`top` keys, then `[listen]` on 127.0.0.1 port 0, then `tables`) into a
    /// fresh temp dir with `central.token`, starts the binary and waits until it listens.
    pub fn start(top: &str, tables: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, top, tables)
    }

    pub fn start_in(dir: tempfile::TempDir, top: &str, tables: &str) -> Server {
        let config = format!(
            "state_dir = \"state\"\n{top}\n[listen]\naddresses = [\"127.0.0.1\"]\nport = 0\n\n{}{tables}",
            Self::no_forwarding_unless_set(tables)
        );
        let server = Server::launch(dir, &config, &[]);
        server.wait_listening()
    }

    /// This machine's resolv.conf names a resolver outside loopback: a test must never forward to
    /// it, so every test config disables forwarding unless the test points it at a fake.
    pub fn no_forwarding_unless_set(tables: &str) -> &'static str {
        if tables.contains("[forward]") {
            ""
        } else {
            "[forward]\nupstreams = []\n\n"
        }
    }

    /// Writes `config` (plus `central.token`) into `dir` and starts `PREFIX... backhaul-dns run`
    /// without waiting for anything.
    pub fn launch(dir: tempfile::TempDir, config: &str, prefix: &[&str]) -> Server {
        std::fs::write(dir.path().join("central.token"), format!("{TOKEN}\n")).unwrap();
        let path = dir.path().join("backhaul-dns.toml");
        std::fs::write(&path, config).unwrap();
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(binary());
                c
            }
            None => Command::new(binary()),
        };
        let mut child = cmd
            .args(["run", "--config"])
            .arg(&path)
            .args(["--log-format", "json", "--log-level", "debug"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start backhaul-dns");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Server {
            child,
            dns: "127.0.0.1:0".parse().unwrap(),
            logs,
            dir,
        }
    }

    /// Waits for the first "listening" line and takes its address as `dns`; fails at once if
    /// the server exits first.
    pub fn wait_listening(mut self) -> Server {
        let deadline = Instant::now() + Duration::from_secs(15);
        let line = loop {
            let found = self.wait_log(Duration::ZERO, |l| {
                l["message"] == "listening (udp and tcp)" && l["view"] == "backhaul"
            });
            if let Some(line) = found {
                break line;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(200)); // the last log lines
                panic!(
                    "server exited ({status}) before listening; logs:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "server did not start within 15 s; logs:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        self.dns = line["address"].as_str().unwrap().parse().unwrap();
        self
    }

    /// Exit code once the process has ended (waiting up to `limit`).
    pub fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        wait_for(limit, || {
            self.child
                .try_wait()
                .unwrap()
                .map(|s| s.code().unwrap_or(-1))
        })
    }

    pub fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// The first JSON log line matching `pred` within `limit`; fails the test with `what` and
    /// the server's whole log otherwise.
    pub fn expect_log(&self, limit: Duration, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_log(limit, pred)
            .unwrap_or_else(|| panic!("{what}: no such log line; logs:\n{}", self.log_text()))
    }

    /// The first JSON log line matching `pred`, waiting up to `limit`.
    pub fn wait_log(&self, limit: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        wait_for(limit, || {
            self.logs
                .lock()
                .unwrap()
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| pred(v))
        })
    }

    pub fn count_logs(&self, pred: impl Fn(&Value) -> bool) -> usize {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| pred(v))
            .count()
    }

    /// Waits until `name` answers with NOERROR and at least one record of `rtype`.
    pub fn wait_answer(&self, name: &str, rtype: RecordType) -> Message {
        wait_for(Duration::from_secs(15), || {
            let mut m = query(self.dns, name, rtype);
            if m.metadata.truncation {
                m = exchange_tcp(self.dns, &request(name, rtype));
            }
            (m.metadata.response_code == hickory_proto::op::ResponseCode::NoError
                && !m.answers.is_empty())
            .then_some(m)
        })
        .unwrap_or_else(|| panic!("{name} {rtype} never answered; logs:\n{}", self.log_text()))
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Stops the server and hands back its directory (config, state) for a restart.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the binary with `args`, returning (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], config: &Path) -> (i32, String, String) {
    let out = Command::new(binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------------------------------
// DNS client

/// A query with EDNS (1232 bytes, DO clear), as a stub resolver sends it.
pub fn request(name: &str, rtype: RecordType) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    m.set_edns(edns);
    m
}

/// A loopback port free for both UDP and TCP, for a server whose config must name its port.
/// Picked below the kernel's ephemeral range: a port found with bind(0) comes from that range
/// and can be handed to a client socket of a test running alongside before the server binds
/// it (the server then fails to start).
pub fn free_port() -> u16 {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768)
        .max(10_001);
    for _ in 0..1000 {
        let port = rand::random_range(10_000..ephemeral);
        if UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free loopback port below {ephemeral}");
}

/// A query id no other request of this test process has had (until 65,536 of them): tests
/// tell exchanges apart by id (in logs, in dnstap), and a time-based id repeated within one
/// test. Starts at a point the clock picks, so ids differ from run to run.
fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let seed = || {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        t.map_or(1, |d| d.subsec_nanos() ^ std::process::id())
    };
    let _ = NEXT.compare_exchange(
        u32::MAX,
        seed() & 0xffff,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    NEXT.fetch_add(1, Ordering::Relaxed) as u16
}

pub fn query(addr: SocketAddr, name: &str, rtype: RecordType) -> Message {
    exchange_udp(addr, &request(name, rtype))
}

pub fn exchange_udp(addr: SocketAddr, m: &Message) -> Message {
    let bytes = udp_raw(addr, &m.to_vec().unwrap()).expect("no UDP answer");
    let resp = Message::from_vec(&bytes).expect("answer parses");
    assert_eq!(resp.metadata.id, m.metadata.id, "answer id matches");
    resp
}

pub fn exchange_tcp(addr: SocketAddr, m: &Message) -> Message {
    let bytes = tcp_raw(addr, &m.to_vec().unwrap());
    let resp = Message::from_vec(&bytes).expect("answer parses");
    assert_eq!(resp.metadata.id, m.metadata.id, "answer id matches");
    resp
}

/// One datagram out, one back (or `None` after 2 s).
pub fn udp_raw(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let any: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    udp_raw_from(any, addr, bytes)
}

/// Like [`udp_raw`], from a chosen source address.
pub fn udp_raw_from(from: SocketAddr, addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind(from).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.send_to(bytes, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

pub fn tcp_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    tcp_exchange(TcpStream::connect(addr).unwrap(), bytes)
}

/// One DNS message over an open TCP connection (length-framed) and its answer.
pub fn tcp_exchange(mut s: TcpStream, bytes: &[u8]) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut frame = (bytes.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(bytes);
    s.write_all(&frame).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// Answer RDATA as text, sorted: `["10.147.17.5"]`, `["db.backhaul."]`.
/// The serial of `zone`'s SOA as the server at `addr` answers it; `None` without an answer
/// (not up yet) or without an SOA.
pub fn soa_serial(addr: SocketAddr, zone: &str) -> Option<u32> {
    let q = request(zone, RecordType::SOA).to_vec().unwrap();
    let m = Message::from_vec(&udp_raw(addr, &q)?).ok()?;
    m.answers.iter().find_map(|r| match &r.data {
        hickory_proto::rr::RData::SOA(s) => Some(s.serial),
        _ => None,
    })
}

pub fn rdatas(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    v.sort();
    v
}

pub fn is_a(m: &Message, ip: &str) -> bool {
    m.answers
        .iter()
        .any(|r| matches!(&r.data, RData::A(a) if a.0.to_string() == ip))
}

// ---------------------------------------------------------------------------------------------
// A fake upstream resolver: the only place forwarded queries may go in tests.

pub struct FakeUpstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl FakeUpstream {
    /// On 127.0.0.1 of this process's namespace.
    pub fn start() -> FakeUpstream {
        Self::start_in(None)
    }

    /// On 127.0.0.1 inside network namespace `ns` (when given).
    pub fn start_in(ns: Option<&str>) -> FakeUpstream {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log = seen.clone();
        let ns = ns.map(str::to_owned);
        std::thread::spawn(move || {
            if let Some(ns) = ns {
                netns::enter(&ns);
            }
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = sock.local_addr().unwrap().port();
            tx.send(sock.local_addr().unwrap()).unwrap();
            let mut buf = [0u8; 4096];
            while let Ok((n, peer)) = sock.recv_from(&mut buf) {
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(query) = q.queries.first().cloned() else {
                    continue;
                };
                log.lock()
                    .unwrap()
                    .push(format!("{} {}", query.name(), query.query_type()));
                let resp = upstream_answer(&q, &query, port);
                let _ = sock.send_to(&resp.to_vec().unwrap(), peer);
            }
        });
        FakeUpstream {
            addr: rx.recv().unwrap(),
            seen,
        }
    }

    pub fn count(&self, name: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.starts_with(name))
            .count()
    }
}

/// example.com A 192.0.2.10; www.example.com CNAME example.com; nx.example.com NXDOMAIN.
fn upstream_answer(q: &Message, query: &Query, port: u16) -> Message {
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::rdata::{A, CNAME, SOA};
    use hickory_proto::rr::Record;
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_query(query.clone());
    if let Some(e) = &q.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.set_dnssec_ok(e.flags().dnssec_ok);
        r.set_edns(edns);
    }
    let name = query.name().to_lowercase().to_string();
    let example = Name::from_ascii("example.com.").unwrap();
    let a = Record::from_rdata(
        example.clone(),
        300,
        RData::A(A("192.0.2.10".parse().unwrap())),
    );
    match (name.as_str(), query.query_type()) {
        ("example.com.", RecordType::A) => {
            r.add_answer(a);
        }
        ("www.example.com.", RecordType::A) => {
            r.add_answer(Record::from_rdata(
                Name::from_ascii("www.example.com.").unwrap(),
                300,
                RData::CNAME(CNAME(example.clone())),
            ));
            r.add_answer(a);
        }
        // Every fake upstream also knows one name of its own: `whoami.test.` answers with
        // the port it listens on in the last octet, so a test sees which upstream answered.
        ("whoami.test.", RecordType::A) | ("whoami.consul.", RecordType::A) => {
            r.add_answer(Record::from_rdata(
                query.name().clone(),
                30,
                RData::A(A(std::net::Ipv4Addr::new(192, 0, 2, (port % 250) as u8))),
            ));
        }
        _ if name.ends_with("example.com.") => {
            r.metadata.response_code = if name == "example.com." {
                ResponseCode::NoError
            } else {
                ResponseCode::NXDomain
            };
            let soa = SOA::new(
                Name::from_ascii("ns.example.com.").unwrap(),
                Name::from_ascii("hostmaster.example.com.").unwrap(),
                1,
                3600,
                600,
                86400,
                120,
            );
            r.add_authority(Record::from_rdata(example, 120, RData::SOA(soa)));
        }
        _ => r.metadata.response_code = ResponseCode::Refused,
    }
    r
}

/// How editors save: write a new file, rename it over the old one.
pub fn replace_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The HTTP endpoint

/// `GET path` over HTTP/1.1; returns (status, body).
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    std::io::Write::write_all(&mut s, request.as_bytes()).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut s, &mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of one sample line of /metrics (`name{labels}`), if present.
pub fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

pub fn http_addr(server: &Server) -> SocketAddr {
    let line = server.expect_log(
        Duration::from_secs(10),
        "the http endpoint listening",
        |l| {
            l["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("http endpoint listening")
        },
    );
    line["address"].as_str().unwrap().parse().unwrap()
}
