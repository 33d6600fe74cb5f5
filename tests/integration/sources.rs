//! More ways in: a self-hosted controller, several networks in one process, polite pacing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// A fake zerotier-one controller (its `/controller/network` JSON API on port 9993).

const CONTROLLER_NET: &str = "efcc1b0947000002";
const AUTHTOKEN: &str = "controllertoken0123456789";

struct ControllerState {
    members: BTreeMap<String, Value>,
    log: Vec<String>,
}

pub(crate) struct FakeController {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<ControllerState>>,
    _http: FakeHttp,
}

pub(crate) fn controller_member(
    id: &str,
    name: Option<&str>,
    ips: &[&str],
    revision: u64,
) -> Value {
    let mut m = json!({
        "activeBridge": false, "address": id, "authenticationExpiryTime": 0, "authorized": true,
        "capabilities": [], "creationTime": 1689164995720i64 + revision as i64, "id": id,
        "identity": format!("{id}:0:abcd"), "ipAssignments": ips,
        "lastAuthorizedCredential": null, "lastAuthorizedCredentialType": "api",
        "lastAuthorizedTime": 1689714787234i64, "lastDeauthorizedTime": 0,
        "noAutoAssignIps": false, "nwid": CONTROLLER_NET, "objtype": "member",
        "remoteTraceLevel": 0, "remoteTraceTarget": null, "revision": revision,
        "ssoExempt": false, "tags": [], "vMajor": -1, "vMinor": -1, "vProto": -1, "vRev": -1
    });
    if let Some(n) = name {
        m["name"] = json!(n); // only stored by controllers >= 1.14.0
    }
    m
}

impl FakeController {
    pub(crate) fn start(members: Vec<Value>) -> FakeController {
        let state = Arc::new(Mutex::new(ControllerState {
            members: members
                .into_iter()
                .map(|m| (m["id"].as_str().unwrap().to_owned(), m))
                .collect(),
            log: Vec::new(),
        }));
        let app = axum::Router::new()
            .fallback(controller_handler)
            .with_state(state.clone());
        let http = FakeHttp::start(app, None);
        FakeController {
            addr: http.addr,
            state,
            _http: http,
        }
    }

    fn put(&self, member: Value) {
        let id = member["id"].as_str().unwrap().to_owned();
        self.state.lock().unwrap().members.insert(id, member);
    }

    fn remove(&self, id: &str) {
        self.state.lock().unwrap().members.remove(id);
    }

    fn member_fetches(&self, id: &str) -> usize {
        let path = format!("/controller/network/{CONTROLLER_NET}/member/{id}");
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|p| **p == path)
            .count()
    }
}

fn reply(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

async fn controller_handler(
    State(state): State<Arc<Mutex<ControllerState>>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut s = state.lock().unwrap();
    s.log.push(uri.path().to_owned());
    if headers.get("x-zt1-auth").and_then(|v| v.to_str().ok()) != Some(AUTHTOKEN) {
        return reply(401, "{}".into());
    }
    let base = format!("/controller/network/{CONTROLLER_NET}");
    let path = uri.path();
    if path == base {
        let net = json!({
            "id": CONTROLLER_NET, "nwid": CONTROLLER_NET, "objtype": "network", "name": "lab",
            "private": true, "creationTime": 1, "revision": 9, "multicastLimit": 32,
            "enableBroadcast": true, "v4AssignMode": {"zt": true},
            "v6AssignMode": {"rfc4193": false, "zt": false, "6plane": false},
            "routes": [{"target": "172.22.0.0/16", "via": null}],
            "ipAssignmentPools": [], "mtu": 2800, "rules": [], "dns": [],
            "authTokens": [null], "capabilities": [], "rulesSource": "",
            "tags": [{"id": 1000, "default": 0}]
        });
        return reply(200, net.to_string());
    }
    if path == format!("{base}/member") {
        let map: BTreeMap<&String, &Value> = s
            .members
            .iter()
            .map(|(id, m)| (id, &m["revision"]))
            .collect();
        return reply(200, serde_json::to_string(&map).unwrap());
    }
    if let Some(id) = path.strip_prefix(&format!("{base}/member/")) {
        return match s.members.get(id) {
            Some(m) => reply(200, m.to_string()),
            None => reply(404, String::new()),
        };
    }
    reply(404, String::new())
}

pub(crate) fn controller_table(fake: &FakeController, token_file: &str, domain: &str) -> String {
    format!(
        "[[network]]\nid = \"{CONTROLLER_NET}\"\nsource = \"controller\"\napi_url = \"http://{}\"\n\
         token_file = \"{token_file}\"\npoll_interval = \"1s\"\ndomain = \"{domain}\"\n",
        fake.addr
    )
}

pub(crate) fn write_token(dir: &tempfile::TempDir) {
    std::fs::write(dir.path().join("authtoken.secret"), AUTHTOKEN).unwrap();
}

#[test]
fn controller_members_with_revision_based_refetch() {
    let fake = FakeController::start(vec![
        controller_member("aaaaaaaaaa", Some("db"), &["172.22.0.10"], 1),
        controller_member("bbbbbbbbbb", None, &["172.22.0.11"], 1),
        controller_member("cccccccccc", Some("cache"), &["172.22.0.12"], 1),
    ]);
    let dir = tempfile::tempdir().unwrap();
    write_token(&dir);
    let server = Server::start_in(
        dir,
        "",
        &controller_table(&fake, "authtoken.secret", "backhaul"),
    );
    assert!(is_a(
        &server.wait_answer("db.backhaul.", RecordType::A),
        "172.22.0.10"
    ));
    // No name (controllers before 1.14 store none): zt- name only.
    assert!(is_a(
        &server.wait_answer("zt-bbbbbbbbbb.backhaul.", RecordType::A),
        "172.22.0.11"
    ));
    let m = server.wait_answer("12.0.22.172.in-addr.arpa.", RecordType::PTR);
    assert_eq!(rdatas(&m), ["cache.backhaul."]);

    // Several polls later, unchanged members were fetched once each.
    std::thread::sleep(Duration::from_millis(2500));
    for id in ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"] {
        assert_eq!(fake.member_fetches(id), 1, "{id}");
    }
    // One member changes (its revision moves): only it is fetched again.
    fake.put(controller_member(
        "aaaaaaaaaa",
        Some("db"),
        &["172.22.0.20"],
        2,
    ));
    wait_for(Duration::from_secs(5), || {
        is_a(
            &query(server.dns, "db.backhaul.", RecordType::A),
            "172.22.0.20",
        )
        .then_some(())
    })
    .unwrap_or_else(|| panic!("{}", server.log_text()));
    assert_eq!(fake.member_fetches("aaaaaaaaaa"), 2);
    assert_eq!(fake.member_fetches("bbbbbbbbbb"), 1);
    // A deleted member disappears.
    fake.remove("cccccccccc");
    wait_for(Duration::from_secs(5), || {
        (query(server.dns, "cache.backhaul.", RecordType::A)
            .metadata
            .response_code
            == ResponseCode::NXDomain)
            .then_some(())
    })
    .expect("deleted member removed");
}

#[test]
fn controller_rejecting_the_token_is_clear() {
    let fake = FakeController::start(vec![controller_member(
        "aaaaaaaaaa",
        Some("db"),
        &["172.22.0.10"],
        1,
    )]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wrong.secret"), "nope-not-it").unwrap();
    let server = Server::start_in(
        dir,
        "",
        &controller_table(&fake, "wrong.secret", "backhaul"),
    );
    server.expect_log(Duration::from_secs(5), "the log line", |l| {
        l["message"]
            .as_str()
            .unwrap_or("")
            .contains("the API token was rejected")
            && l["message"]
                .as_str()
                .unwrap_or("")
                .contains("authtoken.secret")
    });
    assert!(!server.log_text().contains("nope-not-it"));
}

#[test]
fn two_networks_in_one_process() {
    let central = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
    );
    let controller = FakeController::start(vec![controller_member(
        "aaaaaaaaaa",
        Some("db"),
        &["172.22.0.10"],
        1,
    )]);
    let dir = tempfile::tempdir().unwrap();
    write_token(&dir);
    let tables = format!(
        "{}\n{}",
        central_network(&central, "1s"),
        controller_table(&controller, "authtoken.secret", "lab.internal")
    );
    let server = Server::start_in(dir, "", &tables);
    assert!(is_a(
        &server.wait_answer("db.backhaul.", RecordType::A),
        "10.147.17.2"
    ));
    assert!(is_a(
        &server.wait_answer("db.lab.internal.", RecordType::A),
        "172.22.0.10"
    ));
    // Each domain is its own zone with its own SOA; one set of listeners serves both.
    server.wait_answer("lab.internal.", RecordType::SOA);
    let m = query(server.dns, "nope.lab.internal.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities[0].name.to_string(), "lab.internal.");
    assert_eq!(
        server.count_logs(|l| l["message"] == "listening (udp and tcp)"),
        1
    );
}

#[test]
fn ten_networks_stay_far_below_centrals_rate_limit() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
    );
    let mut tables = String::new();
    for i in 1..=10u64 {
        let id = format!("{:016x}", 0x8056c2e21c000000u64 + i);
        fake.serve_also(&id);
        tables.push_str(&format!(
            "[[network]]\nid = \"{id}\"\napi_url = \"{}\"\ntoken_file = \"central.token\"\n\
             poll_interval = \"1s\"\ndomain = \"n{i}.backhaul\"\n",
            fake.api_url()
        ));
    }
    let server = Server::start("", &tables);
    server.wait_answer("db.n10.backhaul.", RecordType::A);
    std::thread::sleep(Duration::from_secs(4));
    let times: Vec<Instant> = fake.requests().iter().map(|r| r.at).collect();
    assert!(times.len() >= 20, "all networks synced: {}", times.len());
    // The server sends at most 10 requests a second (turns 100 ms apart), even at start-up
    // when all ten networks want to poll at once. Arrival times here also carry the sending
    // side's scheduling on a busy machine, which can bring a few closer together: the bound
    // leaves room for that and stays far below Central's 20 a second.
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|u| **u - *t < Duration::from_secs(1))
            .count();
        assert!(in_window <= 14, "{in_window} requests within 1 s");
    }
}
