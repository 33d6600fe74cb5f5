//! `[transfer] catalog`: a real Knot configured with nothing but the catalog zone (its
//! `catalog-role: interpret`) and a TSIG key serves every zone of a two-network primary,
//! and follows a network added and removed by a reload, with no change on its side.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::common::*;
use crate::secondaries::{knot_with, Daemon};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::json;

const SECRET: &str = "c2VjcmV0LXNoYXJlZC1ieS1wcmltYXJ5LWFuZC1zZWNvbmRhcmllcw==";

/// Knot on `port`, told only of the catalog zone and how to reach the primary (from
/// 127.0.0.3, with the key `xfr`).
fn knot(dir: &Path, port: u16, primary: SocketAddr) -> Daemon {
    let d = dir.display();
    let zones = format!(
        "\x20 - id: members\n    storage: {d}/zones\n    master: primary\n    acl: notify_from_primary\n\
         zone:\n  - domain: catalog.invalid\n    master: primary\n    acl: notify_from_primary\n\
         \x20   catalog-role: interpret\n    catalog-template: members\n"
    );
    knot_with(dir, port, "127.0.0.3", primary, SECRET, &zones)
}

/// Whether Knot answers the SOA of `zone` authoritatively.
fn serves(port: u16, zone: &str) -> bool {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let q = request(zone, RecordType::SOA).to_vec().unwrap();
    udp_raw(addr, &q)
        .and_then(|b| Message::from_vec(&b).ok())
        .is_some_and(|m| {
            m.metadata.authoritative
                && m.metadata.response_code == ResponseCode::NoError
                && m.answers.iter().any(|r| r.record_type() == RecordType::SOA)
        })
}

fn network_file(dir: &Path, file: &str, id: &str, route: &str, ip: &str) {
    let mut network = network_json(&[route], false, false);
    network["id"] = json!(id);
    let body = json!({"network": network, "members": [member("a45dc9d260", "db", true, 1, &[ip])]});
    std::fs::write(dir.join(file), body.to_string()).unwrap();
}

fn config(port: u16, knot_port: u16, third: bool) -> String {
    let mut text = format!(
        "state_dir = \"state\"\n[listen]\naddresses = [\"127.0.0.1\"]\nport = {port}\n\
         [forward]\nupstreams = []\n\
         [transfer]\ncatalog = \"catalog.invalid\"\nallow = [{{ address = \"127.0.0.3\", key = \"xfr\" }}]\n\
         notify = [{{ address = \"127.0.0.1:{knot_port}\", key = \"xfr\" }}]\n\
         [[transfer.key]]\nname = \"xfr\"\nalgorithm = \"hmac-sha256\"\nsecret_file = \"xfr.key\"\n\
         [[network]]\nid = \"8056c2e21c000001\"\nsource = \"file\"\nmembers_file = \"m1.json\"\n\
         [[network]]\nid = \"8056c2e21c000002\"\nsource = \"file\"\nmembers_file = \"m2.json\"\ndomain = \"other\"\n"
    );
    if third {
        text.push_str(
            "[[network]]\nid = \"8056c2e21c000003\"\nsource = \"file\"\nmembers_file = \"m3.json\"\ndomain = \"third\"\n",
        );
    }
    text
}

#[test]
fn knot_follows_every_zone_through_the_catalog_alone() {
    let (port, knot_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    network_file(
        dir.path(),
        "m1.json",
        "8056c2e21c000001",
        "10.147.17.0/24",
        "10.147.17.2",
    );
    network_file(
        dir.path(),
        "m2.json",
        "8056c2e21c000002",
        "10.147.18.0/24",
        "10.147.18.2",
    );
    network_file(
        dir.path(),
        "m3.json",
        "8056c2e21c000003",
        "10.147.19.0/24",
        "10.147.19.2",
    );
    std::fs::write(dir.path().join("xfr.key"), format!("{SECRET}\n")).unwrap();
    let server = Server::launch(dir, &config(port, knot_port, false), &[]).wait_listening();
    server.wait_answer("db.other.", RecordType::A);
    // The catalog as a secondary reads it: version 2, one PTR per zone served.
    let m = query(server.dns, "version.catalog.invalid.", RecordType::TXT);
    assert_eq!(rdatas(&m), ["2"], "{m:?}");
    let primary: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let knot_dir = tempfile::tempdir().unwrap();
    let _knot = knot(knot_dir.path(), knot_port, primary);
    let zones = [
        "backhaul.",
        "other.",
        "17.147.10.in-addr.arpa.",
        "18.147.10.in-addr.arpa.",
    ];
    let log = || std::fs::read_to_string(knot_dir.path().join("knot.log")).unwrap_or_default();
    wait_for(Duration::from_secs(20), || {
        zones.iter().all(|z| serves(knot_port, z)).then_some(())
    })
    .unwrap_or_else(|| panic!("Knot serves every zone from the catalog:\n{}", log()));
    assert!(!serves(knot_port, "third."));

    // A third network, by editing the primary's config: Knot serves it within 10 s.
    let path = server.path("backhaul-dns.toml");
    std::fs::write(&path, config(port, knot_port, true)).unwrap();
    // SAFETY: kill(2) on the PID of the server this test started.
    unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) };
    wait_for(Duration::from_secs(10), || {
        (serves(knot_port, "third.") && serves(knot_port, "19.147.10.in-addr.arpa.")).then_some(())
    })
    .unwrap_or_else(|| panic!("Knot takes the new network's zones:\n{}", log()));
    // Removed again: Knot drops them.
    std::fs::write(&path, config(port, knot_port, false)).unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) };
    wait_for(Duration::from_secs(10), || {
        (!serves(knot_port, "third.") && !serves(knot_port, "19.147.10.in-addr.arpa."))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("Knot drops the removed network's zones:\n{}", log()));
    assert!(zones.iter().all(|z| serves(knot_port, z)), "{}", log());
}
