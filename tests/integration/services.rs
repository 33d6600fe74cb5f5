//! `[[service]]`: names for the members that do a job (by tag, glob, description), aliases,
//! and health checks against listeners in a network namespace.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use crate::common::netns::*;
use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::{json, Value};

/// A Central member with ZeroTier tags and a description.
fn tagged(node: &str, name: &str, created: i64, ip: &str, tags: Value, description: &str) -> Value {
    let mut m = member(node, name, true, created, &[ip]);
    m["config"]["tags"] = tags;
    m["description"] = json!(description);
    m
}

/// A network whose rules declare `tag role id 1000 enum 1 pg enum 2 web default 0`.
fn network_with_roles() -> Value {
    let mut n = network_json(&["10.147.17.0/24"], false, false);
    n["tagsByName"] =
        json!({"role": {"id": 1000, "default": 0, "enums": {"pg": 1, "web": 2}, "flags": {}}});
    n
}

/// The answer's A and AAAA addresses, in answer order.
fn addresses(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

fn address_set(m: &Message) -> BTreeSet<String> {
    addresses(m).into_iter().collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// SRV answers as `priority port target`.
fn srv(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some(format!("{} {} {}", s.priority, s.port, s.target)),
            _ => None,
        })
        .collect()
}

#[test]
fn services_by_tag_glob_and_description_and_aliases() {
    let fake = FakeCentral::start(
        network_with_roles(),
        vec![
            tagged(
                "00000000a1",
                "db-1",
                1,
                "10.147.17.11",
                json!([[1000, 1]]),
                "",
            ),
            tagged(
                "00000000a2",
                "db-2",
                2,
                "10.147.17.12",
                json!([[1000, 1]]),
                "",
            ),
            tagged(
                "00000000b1",
                "web-1",
                3,
                "10.147.17.21",
                json!([[1000, 2]]),
                "",
            ),
            tagged(
                "00000000b2",
                "web-2",
                4,
                "10.147.17.22",
                json!([]),
                "services: www",
            ),
            tagged(
                "00000000c1",
                "cache-a",
                5,
                "10.147.17.31",
                json!([]),
                "the cache\nservices: cache\ndns: redis kv",
            ),
            // Asks for a member's name as an alias: it must not get it.
            tagged(
                "00000000d1",
                "intruder",
                6,
                "10.147.17.41",
                json!([]),
                "dns: db-1 pg",
            ),
            {
                // Tagged pg but not authorized: never in a service.
                let mut m = tagged(
                    "00000000e1",
                    "db-3",
                    7,
                    "10.147.17.13",
                    json!([[1000, 1]]),
                    "",
                );
                m["config"]["authorized"] = json!(false);
                m
            },
        ],
    );
    let tables = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\n{}\n\
         [[service]]\nname = \"pg\"\ntag = \"role=pg\"\nport = 5432\n\n\
         [[service]]\nname = \"www\"\nmembers = [\"web-*\"]\n\n\
         [[service]]\nname = \"cache\"\n\n\
         [[service]]\nname = \"pg-primary\"\nmembers = [\"db-2\", \"db-*\"]\npolicy = \"first\"\nport = 5432\n",
        central_network(&fake, "1s")
    );
    let server = Server::start("", &tables);
    let dns = server.dns;
    let pg = server.wait_answer("pg.backhaul.", RecordType::A);
    assert_eq!(address_set(&pg), set(&["10.147.17.11", "10.147.17.12"]));
    assert!(pg.metadata.authoritative);
    assert_eq!(pg.answers[0].ttl, 5, "service records have the service TTL");
    // policy = "all" rotates the order from answer to answer.
    let orders: BTreeSet<Vec<String>> = (0..4)
        .map(|_| addresses(&query(dns, "pg.backhaul.", RecordType::A)))
        .collect();
    assert_eq!(orders.len(), 2, "{orders:?}");
    let mut targets = srv(&query(dns, "_pg._tcp.backhaul.", RecordType::SRV));
    targets.sort();
    assert_eq!(targets, ["0 5432 db-1.backhaul.", "0 5432 db-2.backhaul."]);
    // The SRV answer carries the targets' addresses.
    let with_glue = query(dns, "_pg._tcp.backhaul.", RecordType::SRV);
    assert_eq!(with_glue.additionals.len(), 2, "{with_glue:?}");
    // A glob, plus a description line naming the service.
    assert_eq!(
        address_set(&query(dns, "www.backhaul.", RecordType::A)),
        set(&["10.147.17.21", "10.147.17.22"])
    );
    // Neither tag nor members: the members whose description names it.
    assert_eq!(
        addresses(&query(dns, "cache.backhaul.", RecordType::A)),
        ["10.147.17.31"]
    );
    // first: db-2 is named first; SRV lists both in failover order.
    assert_eq!(
        addresses(&query(dns, "pg-primary.backhaul.", RecordType::A)),
        ["10.147.17.12"]
    );
    assert_eq!(
        srv(&query(dns, "_pg-primary._tcp.backhaul.", RecordType::SRV)),
        ["0 5432 db-2.backhaul.", "1 5432 db-1.backhaul."]
    );
    // NODATA for other types at a service name, and the empty non-terminal _tcp exists.
    let txt = query(dns, "pg.backhaul.", RecordType::TXT);
    assert!(txt.answers.is_empty() && txt.metadata.response_code == ResponseCode::NoError);
    let ent = query(dns, "_tcp.backhaul.", RecordType::A);
    assert_eq!(ent.metadata.response_code, ResponseCode::NoError);
    // Aliases: extra names with the member's addresses; PTR stays its own name.
    for alias in ["redis.backhaul.", "kv.backhaul."] {
        assert_eq!(
            addresses(&query(dns, alias, RecordType::A)),
            ["10.147.17.31"]
        );
    }
    let ptr = query(dns, "31.17.147.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(rdatas(&ptr), ["cache-a.backhaul."]);
    // An alias never takes a member's name or a service's: db-1 and pg stay theirs.
    assert_eq!(
        addresses(&query(dns, "db-1.backhaul.", RecordType::A)),
        ["10.147.17.11"]
    );
    assert_eq!(
        address_set(&query(dns, "pg.backhaul.", RecordType::A)).len(),
        2
    );
    server.expect_log(Duration::from_secs(5), "the alias conflict", |l| {
        l["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("alias conflict")
            && l["name"] == "db-1.backhaul."
    });
    // Operators see the services: /readyz, /metrics, `zone`.
    let http = http_addr(&server);
    let (_, body) = get(http, "/readyz");
    let ready: Value = serde_json::from_str(&body).unwrap();
    let pg_status = ready["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "pg.backhaul")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(pg_status["up"], json!(["db-1.backhaul", "db-2.backhaul"]));
    let (_, metrics) = get(http, "/metrics");
    assert_eq!(
        metric(
            &metrics,
            "backhaul_dns_service_members{service=\"pg.backhaul\",state=\"up\"}"
        ),
        Some(2.0),
        "{metrics}"
    );
    let (code, zone, err) = run_cli(&["zone"], &server.path("backhaul-dns.toml"));
    assert_eq!(code, 0, "{err}");
    for line in [
        "pg.backhaul.\t5\tIN\tA\t10.147.17.11",
        "_pg-primary._tcp.backhaul.\t5\tIN\tSRV\t1 1 5432 db-1.backhaul.",
        "redis.backhaul.\t60\tIN\tA\t10.147.17.31",
    ] {
        assert!(
            zone.lines()
                .any(|l| l.split_whitespace().eq(line.split_whitespace())),
            "{line} not in\n{zone}"
        );
    }
}

#[test]
fn numeric_tags_on_a_controller_and_the_tag_default() {
    // A controller has no tagsByName: the service names the tag by number. A members file in
    // the controller's shape is not a thing; the controller itself is faked in `sources`.
    let ctl = crate::sources::FakeController::start(vec![
        {
            let mut m =
                crate::sources::controller_member("aaaaaaaaaa", Some("db"), &["172.22.0.10"], 1);
            m["tags"] = json!([[1000, 1]]);
            m
        },
        {
            let mut m =
                crate::sources::controller_member("bbbbbbbbbb", Some("web"), &["172.22.0.11"], 1);
            m["tags"] = json!([[1000, 2]]);
            m
        },
        crate::sources::controller_member("cccccccccc", Some("plain"), &["172.22.0.12"], 1),
    ]);
    let dir = tempfile::tempdir().unwrap();
    crate::sources::write_token(&dir);
    let tables = format!(
        "{}\n[[service]]\nname = \"pg\"\ntag = \"1000=1\"\n\n\
         [[service]]\nname = \"untagged\"\ntag = \"1000=0\"\n",
        crate::sources::controller_table(&ctl, "authtoken.secret", "backhaul")
    );
    let server = Server::start_in(dir, "", &tables);
    let pg = server.wait_answer("pg.backhaul.", RecordType::A);
    assert_eq!(addresses(&pg), ["172.22.0.10"]);
    // The controller declares tag 1000 with default 0: members without it have value 0.
    let untagged = query(server.dns, "untagged.backhaul.", RecordType::A);
    assert_eq!(addresses(&untagged), ["172.22.0.12"]);
}

#[test]
fn check_refuses_services_that_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(dir.path().join("m.json"), "[]").unwrap();
    let base = "[listen]\naddresses = [\"127.0.0.1\"]\n[[network]]\nid = \"8056c2e21c000001\"\nsource = \"file\"\nmembers_file = \"m.json\"\n";
    for (service, complaint) in [
        ("name = \"pg\"\ncheck = \"tcp\"", "set port as well"),
        ("name = \"pg\"\ntag = \"role\"", "not a tag match"),
        ("name = \"pg\"\npolicy = \"random\"", "not a policy"),
        ("name = \"pg\"\nmembers = [\"db-[\"]", "not a glob"),
        ("name = \"a b\"", "not a name"),
        ("name = \"pg\"\ninterval = \"100ms\"", "1s to 1h"),
        ("name = \"zt-a45dc9d260\"", "zt- name"),
        ("name = \"backhaul.\"", "zone apex"),
        ("name = \"pg.example.com.\"", "outside the domains"),
    ] {
        std::fs::write(&path, format!("{base}[[service]]\n{service}\n")).unwrap();
        let (code, _, err) = run_cli(&["check"], &path);
        assert_eq!(code, 2, "{service}: {err}");
        assert!(err.contains(complaint), "{service}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // Central-only check on a controller network.
    let controller = "[listen]\naddresses = [\"127.0.0.1\"]\n[[network]]\nid = \"8056c2e21c000001\"\nsource = \"controller\"\ntoken_file = \"t\"\n";
    std::fs::write(dir.path().join("t"), "token\n").unwrap();
    std::fs::write(
        &path,
        format!("{controller}[[service]]\nname = \"pg\"\ncheck = \"online\"\n"),
    )
    .unwrap();
    let (code, _, err) = run_cli(&["check"], &path);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("lastSeen"), "{err}");
}

/// Accepts TCP connections on `addr` until dropped; counts them.
pub(crate) struct Listener {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Listener {
    /// Listens on `addr` inside namespace `ns`.
    pub(crate) fn open(ns: &str, addr: &str) -> Listener {
        let addr: SocketAddr = addr.parse().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, a, ns) = (stop.clone(), accepted.clone(), ns.to_owned());
        let thread = std::thread::spawn(move || {
            enter(&ns);
            let l = TcpListener::bind(addr).unwrap();
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                match l.accept() {
                    Ok(_) => {
                        a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        rx.recv().unwrap();
        Listener {
            stop,
            thread: Some(thread),
            accepted,
        }
    }

    pub(crate) fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Listener {
    /// Closes the socket: connects are refused from then on.
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

/// Members on 10.147.17.11-.13 (the client side of the lab's ZeroTier-like link), and an
/// address on the same host that no member has.
const MEMBER_ADDRESSES: [&str; 3] = ["10.147.17.11", "10.147.17.12", "10.147.17.13"];
const NOT_A_MEMBER: &str = "10.147.17.99";

fn checked_members() -> String {
    let members: Vec<Value> = MEMBER_ADDRESSES
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            json!({"nodeId": format!("00000000a{}", i + 1), "name": format!("db-{}", i + 1),
                   "description": "services: pg",
                   "config": {"authorized": true, "creationTime": i + 1, "ipAssignments": [ip]}})
        })
        .collect();
    serde_json::to_string(&members).unwrap()
}

/// Waits until `name` answers exactly `want` (as a set); returns how long that took.
pub(crate) fn until_answers(
    server: &Server,
    lab: &Lab,
    name: &str,
    want: &[&str],
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    let want = set(want);
    let q = request(name, RecordType::A).to_vec().unwrap();
    let mut last = BTreeSet::new();
    let found = wait_for(limit, || {
        let reply = in_netns(&lab.cli.name, || udp_raw(server.dns, &q))?;
        last = address_set(&Message::from_vec(&reply).unwrap());
        (last == want).then_some(())
    });
    assert!(
        found.is_some(),
        "{name} still answers {last:?}, not {want:?}, after {limit:?}; logs:\n{}",
        server.log_text()
    );
    started.elapsed()
}

#[test]
fn tcp_checks_take_members_out_and_back_and_fail_open() {
    let lab = Lab::new(true);
    for address in MEMBER_ADDRESSES.iter().chain([&NOT_A_MEMBER]) {
        ip(&[
            "-n",
            &lab.cli.name,
            "addr",
            "add",
            &format!("{address}/32"),
            "dev",
            "czt",
        ]);
    }
    // Listeners on every member, and one on an address no member has.
    let mut up: Vec<Option<Listener>> = MEMBER_ADDRESSES
        .iter()
        .map(|ip| Some(Listener::open(&lab.cli.name, &format!("{ip}:5432"))))
        .collect();
    let stranger = Listener::open(&lab.cli.name, &format!("{NOT_A_MEMBER}:5432"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("members.json"), checked_members()).unwrap();
    let config = format!(
        "state_dir = \"state\"\n[listen]\ninterface = \"{ZT_IF}\"\nport = 53\n\n[forward]\nupstreams = []\n\n\
         [[network]]\nid = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"members.json\"\npoll_interval = \"1s\"\n\n\
         [[service]]\nname = \"pg\"\nport = 5432\ncheck = \"tcp\"\ninterval = \"1s\"\nfall = 2\nrise = 2\n\n\
         [[service]]\nname = \"pg-primary\"\nport = 5432\ncheck = \"tcp\"\ninterval = \"1s\"\npolicy = \"first\"\n\
         members = [\"db-1\", \"db-2\", \"db-3\"]\n"
    );
    let mut server = Server::launch(dir, &config, &["ip", "netns", "exec", &lab.srv.name]);
    server.dns = "10.147.17.1:53".parse().unwrap();
    // Everyone up.
    until_answers(
        &server,
        &lab,
        "pg.backhaul.",
        &MEMBER_ADDRESSES,
        Duration::from_secs(15),
    );
    until_answers(
        &server,
        &lab,
        "pg-primary.backhaul.",
        &["10.147.17.11"],
        Duration::from_secs(5),
    );
    // db-1 stops listening: it leaves pg and _pg._tcp within interval x fall + 1 s (3 s);
    // the bound is checked with a margin for a loaded machine, the time taken is printed.
    up[0] = None;
    let took = until_answers(
        &server,
        &lab,
        "pg.backhaul.",
        &["10.147.17.12", "10.147.17.13"],
        Duration::from_secs(6),
    );
    println!("down after {took:?} (bound 3 s)");
    // first fails over to db-2, and SRV follows.
    until_answers(
        &server,
        &lab,
        "pg-primary.backhaul.",
        &["10.147.17.12"],
        Duration::from_secs(2),
    );
    let q = request("_pg._tcp.backhaul.", RecordType::SRV)
        .to_vec()
        .unwrap();
    let reply = in_netns(&lab.cli.name, || udp_raw(server.dns, &q)).unwrap();
    let mut targets = srv(&Message::from_vec(&reply).unwrap());
    targets.sort();
    assert_eq!(targets, ["0 5432 db-2.backhaul.", "0 5432 db-3.backhaul."]);
    server.expect_log(Duration::from_secs(2), "the flip logged", |l| {
        l["message"] == "service member down"
            && l["member"] == "db-1.backhaul"
            && l["service"] == "pg.backhaul"
    });
    // Back after `rise` successes; first fails back.
    up[0] = Some(Listener::open(&lab.cli.name, "10.147.17.11:5432"));
    until_answers(
        &server,
        &lab,
        "pg.backhaul.",
        &MEMBER_ADDRESSES,
        Duration::from_secs(6),
    );
    until_answers(
        &server,
        &lab,
        "pg-primary.backhaul.",
        &["10.147.17.11"],
        Duration::from_secs(2),
    );
    // Everyone down: fail open, every member for all, the first for first.
    up.clear();
    until_answers(
        &server,
        &lab,
        "pg.backhaul.",
        &MEMBER_ADDRESSES,
        Duration::from_secs(6),
    );
    server.expect_log(Duration::from_secs(6), "the fail-open warning", |l| {
        l["message"].as_str().unwrap_or("").contains("fail open") && l["service"] == "pg.backhaul"
    });
    until_answers(
        &server,
        &lab,
        "pg-primary.backhaul.",
        &["10.147.17.11"],
        Duration::from_secs(2),
    );
    // A check never touches an address outside the members' own.
    assert_eq!(stranger.accepted(), 0);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn online_follows_last_seen_without_a_zone_build_and_services_reload() {
    let seen = |node: &str, name: &str, created: i64, ip: &str, last_seen: i64| {
        let mut m = tagged(node, name, created, ip, json!([]), "services: pg");
        m["lastSeen"] = json!(last_seen);
        m
    };
    let now = now_ms();
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![
            seen("00000000a1", "db-1", 1, "10.147.17.11", now),
            seen("00000000a2", "db-2", 2, "10.147.17.12", now - 600_000),
        ],
    );
    let tables = format!(
        "{}\n[[service]]\nname = \"pg\"\ncheck = \"online\"\nmax_age = \"1m\"\n",
        central_network(&fake, "1s")
    );
    let server = Server::start("", &tables);
    let dns = server.dns;
    let answers = |name: &str| address_set(&query(dns, name, RecordType::A));
    wait_for(Duration::from_secs(10), || {
        (answers("pg.backhaul.") == set(&["10.147.17.11"])).then_some(())
    })
    .unwrap_or_else(|| panic!("{:?}\n{}", answers("pg.backhaul."), server.log_text()));
    // db-2 checks in: lastSeen moves, nothing else. It joins without a zone build.
    // The first sync's build is logged just after its zone is served: count after that line.
    server.expect_log(Duration::from_secs(5), "the first sync's build", |l| {
        l["message"] == "zone updated" && l["cause"].as_str().unwrap_or("").starts_with("network")
    });
    let builds = server.count_logs(|l| l["message"] == "zone updated");
    fake.set_members(vec![
        seen("00000000a1", "db-1", 1, "10.147.17.11", now_ms()),
        seen("00000000a2", "db-2", 2, "10.147.17.12", now_ms()),
    ]);
    wait_for(Duration::from_secs(10), || {
        (answers("pg.backhaul.") == set(&["10.147.17.11", "10.147.17.12"])).then_some(())
    })
    .unwrap_or_else(|| panic!("{:?}\n{}", answers("pg.backhaul."), server.log_text()));
    assert_eq!(
        server.count_logs(|l| l["message"] == "zone updated"),
        builds,
        "a lastSeen change rebuilt the zone"
    );
    // Services reload with the config.
    let path = server.path("backhaul-dns.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    replace_by_rename(
        &path,
        &format!("{text}\n[[service]]\nname = \"second\"\nmembers = [\"db-2\"]\n"),
    );
    wait_for(Duration::from_secs(10), || {
        (answers("second.backhaul.") == set(&["10.147.17.12"])).then_some(())
    })
    .unwrap_or_else(|| panic!("{}", server.log_text()));
}
