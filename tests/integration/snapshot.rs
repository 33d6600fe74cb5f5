//! Last good snapshot: a restart during an API outage still serves.

use std::time::Duration;

use crate::common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

fn relaunch(dir: tempfile::TempDir) -> Server {
    let config = std::fs::read_to_string(dir.path().join("backhaul-dns.toml")).unwrap();
    Server::launch(dir, &config, &[]).wait_listening()
}

fn snapshot_path(server: &Server) -> std::path::PathBuf {
    server.path(&format!("state/snapshots/{NETWORK}.json"))
}

/// A server that has synced from `fake` and saved the snapshot of that sync.
fn synced_and_saved(fake: &FakeCentral) -> Server {
    let server = Server::start("", &central_network(fake, "1s"));
    server.wait_answer("db.backhaul.", RecordType::A);
    // Saved on its own thread, just after the new zone answers.
    wait_for(Duration::from_secs(5), || {
        snapshot_path(&server).exists().then_some(())
    })
    .expect("the first sync's snapshot is saved");
    server
}

fn members() -> Vec<serde_json::Value> {
    vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])]
}

#[test]
fn restart_with_the_api_down_serves_the_snapshot() {
    let mut fake = FakeCentral::start(network_json(&["10.147.17.0/24"], false, false), members());
    let server = synced_and_saved(&fake);
    let dir = server.stop();
    fake.stop();

    let server = relaunch(dir);
    // Served from the snapshot at once, as a complete zone: NXDOMAIN, not SERVFAIL.
    let m = query(server.dns, "db.backhaul.", RecordType::A);
    assert!(is_a(&m, "10.147.17.2"), "{m:?}\n{}", server.log_text());
    let m = query(server.dns, "2.17.147.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(rdatas(&m), ["db.backhaul."]);
    assert_eq!(
        query(server.dns, "nope.backhaul.", RecordType::A)
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
    let line = server.expect_log(Duration::from_secs(5), "snapshot use is logged", |l| {
        l["message"] == "serving the last good snapshot until the first sync"
    });
    assert!(line["age"].as_str().unwrap().ends_with('s'), "{line}");
    // ...while it keeps trying the API.
    server.expect_log(Duration::from_secs(5), "keeps trying", |l| {
        l["reason"] == "connect"
    });
}

#[test]
fn a_change_saved_later_is_saved_at_shutdown() {
    let fake = FakeCentral::start(network_json(&["10.147.17.0/24"], false, false), members());
    let mut server = Server::start("", &central_network(&fake, "1s"));
    server.wait_answer("db.backhaul.", RecordType::A);
    wait_for(Duration::from_secs(5), || {
        snapshot_path(&server).exists().then_some(())
    })
    .expect("the first sync's snapshot is saved");
    // A second change within the spacing of saves waits for its turn...
    let mut more = members();
    more.push(member("b45dc9d260", "logs", true, 2, &["10.147.17.3"]));
    fake.set_members(more);
    server.wait_answer("logs.backhaul.", RecordType::A);
    let path = snapshot_path(&server);
    let saved = || std::fs::read_to_string(&path).unwrap();
    assert!(!saved().contains("\"logs\""), "spaced: {}", saved());
    // ...and SIGTERM saves it before the process exits.
    // SAFETY: a signal to the child this test started.
    unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
    assert_eq!(server.exit_code(Duration::from_secs(10)), Some(0));
    assert!(saved().contains("\"logs\""), "{}", saved());
}

#[test]
fn a_corrupt_snapshot_is_reported_and_ignored() {
    let fake = FakeCentral::start(network_json(&["10.147.17.0/24"], false, false), members());
    fake.set_fault(Some(Fault::Status(503)));
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("state/snapshots");
    std::fs::create_dir_all(&snaps).unwrap();
    std::fs::write(
        snaps.join(format!("{NETWORK}.json")),
        b"{\"format\": 1, \"snapshot\": {\"id\": ",
    )
    .unwrap();
    let mut server = Server::start_in(dir, "", &central_network(&fake, "1s"));
    server.expect_log(Duration::from_secs(5), "a warning", |l| {
        l["level"] == "WARN"
            && l["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("snapshot is corrupt")
    });
    assert!(server.alive());
    assert_eq!(
        query(server.dns, "db.backhaul.", RecordType::A)
            .metadata
            .response_code,
        ResponseCode::ServFail
    );
    fake.set_fault(None);
    server.wait_answer("db.backhaul.", RecordType::A);
    // The next good sync rewrites it.
    wait_for(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(snapshot_path(&server)).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()
    })
    .expect("the corrupt snapshot is replaced");
}

#[test]
fn no_snapshot_and_no_api_starts_and_keeps_trying() {
    let fake = FakeCentral::start(network_json(&["10.147.17.0/24"], false, false), members());
    fake.set_fault(Some(Fault::Status(502)));
    let mut server = Server::start("", &central_network(&fake, "1s"));
    std::thread::sleep(Duration::from_secs(4));
    assert!(server.alive(), "no crash loop");
    assert_eq!(
        query(server.dns, "db.backhaul.", RecordType::A)
            .metadata
            .response_code,
        ResponseCode::ServFail
    );
    // Backoff: 1 s, 2 s, ... so at most 3 attempts (6 requests incl. the network GET) in 4 s.
    let attempts = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(NETWORK))
        .count();
    assert!((2..=4).contains(&attempts), "{attempts} attempts");
    fake.set_fault(None);
    server.wait_answer("db.backhaul.", RecordType::A);
}

/// A snapshot edited by hand (or by anything else with access to state_dir) passes the same
/// address rule as the API: 0.0.0.0, broadcast, multicast and loopback are never served.
#[test]
fn a_snapshot_passes_the_same_address_rule_as_the_api() {
    let mut fake = FakeCentral::start(network_json(&["10.147.17.0/24"], false, false), members());
    let server = synced_and_saved(&fake);
    let path = snapshot_path(&server);
    let dir = server.stop();
    fake.stop();
    let mut saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    saved["snapshot"]["members"][0]["ips"] = serde_json::json!([
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "127.0.0.1",
        "ff02::1",
        "10.147.17.9"
    ]);
    std::fs::write(&path, saved.to_string()).unwrap();

    let server = relaunch(dir);
    let m = query(server.dns, "db.backhaul.", RecordType::A);
    assert_eq!(rdatas(&m), ["10.147.17.9"], "{}", server.log_text());
    let m = query(server.dns, "db.backhaul.", RecordType::AAAA);
    assert!(m.answers.is_empty(), "{m:?}");
}
