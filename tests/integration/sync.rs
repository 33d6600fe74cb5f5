//! Syncing: changes propagate within a poll interval; every failure keeps the last good zone.

use std::time::{Duration, Instant};

use crate::common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use serde_json::Value;

fn members() -> Vec<Value> {
    vec![
        member("a45dc9d260", "db", true, 1, &["10.147.17.2"]),
        member("e610b78bf1", "web", true, 2, &["10.147.17.3"]),
    ]
}

fn start(poll: &str) -> (FakeCentral, Server) {
    let fake = FakeCentral::start(network_json(&["10.147.17.0/24"], false, false), members());
    let server = Server::start("", &central_network(&fake, poll));
    server.wait_answer("db.backhaul.", RecordType::A);
    (fake, server)
}

fn rcode(server: &Server, name: &str, t: RecordType) -> ResponseCode {
    query(server.dns, name, t).metadata.response_code
}

fn soa_serial(server: &Server) -> u32 {
    match &query(server.dns, "backhaul.", RecordType::SOA).answers[0].data {
        RData::SOA(soa) => soa.serial,
        other => panic!("{other:?}"),
    }
}

#[test]
fn polls_central_with_the_token_header() {
    let (fake, server) = start("1s");
    let reqs = fake.requests();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert!(paths.contains(&"/api/v1/network/8056c2e21c000001"));
    assert!(paths.contains(&"/api/v1/network/8056c2e21c000001/member"));
    for r in &reqs {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("token {TOKEN}").as_str())
        );
    }
    // Even at debug level the token never reaches the log.
    assert!(!server.log_text().contains(TOKEN));
}

#[test]
fn rename_and_removal_propagate_within_one_poll_interval() {
    let (fake, server) = start("1s");
    let first = soa_serial(&server);
    let changed = Instant::now();
    fake.set_members(vec![
        member("a45dc9d260", "database", true, 1, &["10.147.17.2"]),
        member("e610b78bf1", "web", true, 2, &["10.147.17.3"]),
    ]);
    server.wait_answer("database.backhaul.", RecordType::A);
    assert_eq!(
        rcode(&server, "db.backhaul.", RecordType::A),
        ResponseCode::NXDomain
    );
    let m = query(server.dns, "2.17.147.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(rdatas(&m), ["database.backhaul."]);
    assert!(
        changed.elapsed() < Duration::from_millis(2500),
        "{:?}",
        changed.elapsed()
    );
    assert!(soa_serial(&server) != first, "serial moved");

    let removed = Instant::now();
    fake.set_members(vec![member(
        "a45dc9d260",
        "database",
        true,
        1,
        &["10.147.17.2"],
    )]);
    wait_for(Duration::from_secs(5), || {
        (rcode(&server, "web.backhaul.", RecordType::A) == ResponseCode::NXDomain).then_some(())
    })
    .expect("removed member disappears");
    assert!(removed.elapsed() < Duration::from_millis(2500));
    assert_eq!(
        rcode(&server, "zt-e610b78bf1.backhaul.", RecordType::A),
        ResponseCode::NXDomain
    );
    assert_eq!(
        rcode(&server, "3.17.147.10.in-addr.arpa.", RecordType::PTR),
        ResponseCode::NXDomain
    );
}

#[test]
fn serial_moves_only_when_content_changes_and_survives_restart() {
    let (fake, server) = start("1s");
    let s1 = soa_serial(&server);
    // Several polls with nothing new: same serial.
    let polls = fake.requests().len();
    wait_for(Duration::from_secs(10), || {
        (fake.requests().len() >= polls + 6).then_some(())
    })
    .expect("server keeps polling");
    assert_eq!(soa_serial(&server), s1);
    // Restart with the same state: same content, same serial.
    let dir = server.stop();
    let tables = std::fs::read_to_string(dir.path().join("backhaul-dns.toml")).unwrap();
    let tables = tables[tables.find("[[network]]").unwrap()..].to_owned();
    let server = Server::start_in(dir, "", &tables);
    server.wait_answer("db.backhaul.", RecordType::A);
    assert_eq!(soa_serial(&server), s1);
    // A change: the serial increases (RFC 1982).
    fake.set_members(vec![member("a45dc9d260", "db", true, 1, &["10.147.17.9"])]);
    wait_for(Duration::from_secs(5), || {
        is_a(
            &query(server.dns, "db.backhaul.", RecordType::A),
            "10.147.17.9",
        )
        .then_some(())
    })
    .unwrap();
    let s2 = soa_serial(&server);
    assert!((s2.wrapping_sub(s1) as i32) > 0, "{s1} -> {s2}");
}

/// Injects `fault` after a good sync and checks: one clear warning, old zone still served,
/// process alive, recovery once the fault is gone.
fn fault_keeps_zone(fault: Fault, says: &str, reason: &str) {
    let (fake, mut server) = start("1s");
    // The fault arrives together with a change the server must not see.
    fake.set_members(vec![member(
        "a45dc9d260",
        "renamed",
        true,
        1,
        &["10.147.17.2"],
    )]);
    fake.set_fault(Some(fault.clone()));
    let line = server
        .wait_log(Duration::from_secs(10), |l| {
            l["level"] == "WARN" && l["message"].as_str().unwrap_or("").contains(says)
        })
        .unwrap_or_else(|| {
            panic!(
                "no warning saying {says:?} for {fault:?}:\n{}",
                server.log_text()
            )
        });
    assert_eq!(line["reason"], reason);
    assert!(line["message"]
        .as_str()
        .unwrap()
        .contains("still serving the last good zone"));
    assert!(server.alive());
    assert!(
        is_a(
            &query(server.dns, "db.backhaul.", RecordType::A),
            "10.147.17.2"
        ),
        "{fault:?}"
    );
    assert_eq!(
        rcode(&server, "web.backhaul.", RecordType::A),
        ResponseCode::NoError
    );
    assert_eq!(
        rcode(&server, "renamed.backhaul.", RecordType::A),
        ResponseCode::NXDomain
    );
    assert!(!server.log_text().contains(TOKEN));
    fake.set_fault(None);
    server.wait_answer("renamed.backhaul.", RecordType::A);
    server.expect_log(Duration::from_secs(5), "recovery logged", |l| {
        l["message"] == "sync recovered"
    });
}

#[test]
fn http_401_keeps_zone() {
    fault_keeps_zone(
        Fault::Status(401),
        "the API token was rejected",
        "unauthorized",
    );
}

#[test]
fn http_403_keeps_zone() {
    fault_keeps_zone(
        Fault::Status(403),
        "the token cannot see network 8056c2e21c000001",
        "no_access",
    );
}

#[test]
fn http_404_keeps_zone() {
    fault_keeps_zone(
        Fault::Status(404),
        "the token cannot see network 8056c2e21c000001",
        "no_access",
    );
}

#[test]
fn http_429_keeps_zone_and_waits() {
    fault_keeps_zone(Fault::RateLimited(1), "rate-limiting", "rate_limited");
}

#[test]
fn http_5xx_keeps_zone() {
    fault_keeps_zone(Fault::Status(502), "answered HTTP 502", "http_status");
}

#[test]
fn truncated_json_keeps_zone() {
    fault_keeps_zone(
        Fault::TruncatedJson,
        "unreadable member list",
        "bad_response",
    );
}

#[test]
fn non_json_keeps_zone() {
    fault_keeps_zone(Fault::NotJson, "unreadable member list", "bad_response");
}

#[test]
fn wrong_json_shape_keeps_zone() {
    fault_keeps_zone(Fault::WrongShape, "unreadable member list", "bad_response");
}

#[test]
fn timeout_keeps_zone() {
    // request_timeout is 2s in the harness.
    fault_keeps_zone(
        Fault::Hang(Duration::from_secs(4)),
        "did not answer within",
        "timeout",
    );
}

#[test]
fn connection_refused_keeps_zone() {
    let (mut fake, mut server) = start("1s");
    fake.stop();
    server.expect_log(
        Duration::from_secs(10),
        "a connect failure saying the API cannot be reached",
        |l| {
            l["reason"] == "connect"
                && l["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("cannot reach the ZeroTier API")
        },
    );
    assert!(server.alive());
    assert!(is_a(
        &query(server.dns, "db.backhaul.", RecordType::A),
        "10.147.17.2"
    ));
}

#[test]
fn backoff_after_repeated_failures() {
    let (fake, server) = start("1s");
    fake.set_fault(Some(Fault::Status(500)));
    let from = fake.requests().len();
    std::thread::sleep(Duration::from_secs(8));
    let during: Vec<Instant> = fake.requests()[from..].iter().map(|r| r.at).collect();
    // Without backoff, 1s polls would make ~8 attempts; with 1, 2, 4 s waits at most 4.
    assert!(during.len() <= 4, "{} attempts in 8s", during.len());
    assert!(!during.is_empty());
    let gaps: Vec<Duration> = during.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|g| g[1] > g[0]), "gaps grow: {gaps:?}");
    drop(server);
}

#[test]
fn rate_limit_retry_after_is_honoured() {
    let (fake, _server) = start("1s");
    fake.set_fault(Some(Fault::RateLimited(4)));
    let from = fake.requests().len();
    std::thread::sleep(Duration::from_millis(6500));
    let during: Vec<Instant> = fake.requests()[from..].iter().map(|r| r.at).collect();
    assert!(
        during.len() <= 2,
        "Retry-After: 4 means no retry sooner: {}",
        during.len()
    );
    if let [a, b, ..] = during[..] {
        assert!(b - a >= Duration::from_millis(3900), "{:?}", b - a);
    }
}

#[test]
fn a_bad_member_is_skipped_and_the_rest_served() {
    let mut list = members();
    list.push(serde_json::json!({"nodeId": 12345, "config": {"authorized": true}}));
    list.push(serde_json::json!({"nodeId": "efcc1b0947", "name": "noconfig"}));
    list.push(member(
        "a02505e545",
        "halfbad",
        true,
        3,
        &["10.147.17.300", "10.147.17.5"],
    ));
    let fake = FakeCentral::start(network_json(&["10.147.17.0/24"], false, false), list);
    let server = Server::start("", &central_network(&fake, "1s"));
    server.wait_answer("db.backhaul.", RecordType::A);
    server.wait_answer("web.backhaul.", RecordType::A);
    let m = server.wait_answer("halfbad.backhaul.", RecordType::A);
    assert_eq!(rdatas(&m), ["10.147.17.5"]);
    assert_eq!(
        rcode(&server, "noconfig.backhaul.", RecordType::A),
        ResponseCode::NXDomain
    );
    let says = |text: &'static str| {
        move |l: &serde_json::Value| l["message"].as_str().unwrap_or("").contains(text)
    };
    server.expect_log(
        Duration::from_secs(5),
        "a skipped member",
        says("skipping it"),
    );
    server.expect_log(
        Duration::from_secs(5),
        "the bad address",
        says("10.147.17.300"),
    );
    // Each problem is reported once, not on every poll: wait for three more polls.
    let polls = || {
        fake.requests()
            .iter()
            .filter(|r| r.path.ends_with("/member"))
            .count()
    };
    let seen = polls();
    wait_for(Duration::from_secs(15), || {
        (polls() >= seen + 3).then_some(())
    })
    .expect("three more polls");
    assert_eq!(
        server.count_logs(says("skipping it")),
        2,
        "{}",
        server.log_text()
    );
    assert_eq!(
        server.count_logs(says("10.147.17.300")),
        1,
        "{}",
        server.log_text()
    );
}

#[test]
fn members_file_source_follows_edits_and_survives_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("members.json");
    std::fs::write(&file, serde_json::to_vec(&members()).unwrap()).unwrap();
    let tables = format!(
        "[[network]]\nid = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"members.json\"\npoll_interval = \"200ms\"\n"
    );
    let server = Server::start_in(dir, "", &tables);
    server.wait_answer("db.backhaul.", RecordType::A);
    // A plain member list has no routes: each PTR gets a zone of exactly its own name.
    let m = server.wait_answer("2.17.147.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(rdatas(&m), ["db.backhaul."]);
    // An edit that does not parse: warning, old zone kept.
    std::fs::write(&file, b"[{\"nodeId\": \"a45dc9d260\", ").unwrap();
    server.expect_log(
        Duration::from_secs(5),
        "a file failure naming the file",
        |l| l["reason"] == "file" && l["message"].as_str().unwrap_or("").contains("members.json"),
    );
    assert!(is_a(
        &query(server.dns, "db.backhaul.", RecordType::A),
        "10.147.17.2"
    ));
    // A good edit: served.
    let mut next = members();
    next.push(member("a02505e545", "cache", true, 3, &["10.147.17.4"]));
    std::fs::write(&file, serde_json::to_vec(&next).unwrap()).unwrap();
    server.wait_answer("cache.backhaul.", RecordType::A);
}
