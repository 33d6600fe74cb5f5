//! `[follow]`: a second backhaul-dns serving the first one's zones, found through its catalog,
//! by signed IXFR on NOTIFY: same serials and answers as the primary, a renamed member
//! answered within 5 s of the primary, answering on without the primary, both restarted in
//! either order with nothing lost, and SERVFAIL (and /readyz 503) once the SOA expire passes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::secondaries::kdig;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::Value;

const SECRET: &str = "c2VjcmV0LXNoYXJlZC1ieS1wcmltYXJ5LWFuZC1zZWNvbmRhcmllcw==";
const KEY: &str = "hmac-sha256:xfr:c2VjcmV0LXNoYXJlZC1ieS1wcmltYXJ5LWFuZC1zZWNvbmRhcmllcw==";
const XFR_KEY: &str =
    "[[transfer.key]]\nname = \"xfr\"\nalgorithm = \"hmac-sha256\"\nsecret_file = \"xfr.key\"\n";

fn members(web: &str) -> Vec<Value> {
    vec![
        member("a45dc9d260", "db", true, 1, &["10.147.17.2"]),
        member("e610b78bf1", web, true, 2, &["10.147.17.3"]),
    ]
}

fn primary_config(fake: &FakeCentral, port: u16, follower: u16, soa: &str) -> String {
    format!(
        "state_dir = \"state\"\n[listen]\naddresses = [\"127.0.0.1\"]\nport = {port}\n\
         [forward]\nupstreams = []\n{soa}\
         [transfer]\ncatalog = \"catalog.invalid\"\nallow = [{{ address = \"127.0.0.1\", key = \"xfr\" }}]\n\
         notify = [{{ address = \"127.0.0.1:{follower}\", key = \"xfr\" }}]\n{XFR_KEY}{}",
        central_network(fake, "1s")
    )
}

fn follower_config(port: u16, primary: u16, http: u16) -> String {
    format!(
        "state_dir = \"state\"\n[listen]\naddresses = [\"127.0.0.1\"]\nport = {port}\n\
         [forward]\nupstreams = []\n\
         [follow]\nprimary = \"127.0.0.1:{primary}\"\nkey = \"xfr\"\ncatalog = \"catalog.invalid\"\n\
         [http]\nlisten = \"127.0.0.1:{http}\"\n{XFR_KEY}"
    )
}

fn start(dir: tempfile::TempDir, config: &str) -> Server {
    std::fs::write(dir.path().join("xfr.key"), format!("{SECRET}\n")).unwrap();
    Server::launch(dir, config, &[]).wait_listening()
}

/// Every (owner, type) the primary's zones hold, from a signed AXFR of each.
fn names_of(primary: SocketAddr, zones: &[&str]) -> Vec<(String, RecordType)> {
    let mut out = Vec::new();
    for zone in zones {
        let text = kdig(&[
            "-y",
            KEY,
            &format!("@{}", primary.ip()),
            "-p",
            &primary.port().to_string(),
            "AXFR",
            zone,
            "+noall",
            "+answer",
        ]);
        for line in text
            .lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if let (Some(owner), Some(rtype)) = (fields.first(), fields.get(3)) {
                let rtype: RecordType = rtype.parse().unwrap();
                if rtype != RecordType::TSIG && !out.contains(&(owner.to_string(), rtype)) {
                    out.push((owner.to_string(), rtype));
                }
            }
        }
    }
    assert!(out.len() > 8, "the primary's zones transfer: {out:?}");
    out
}

/// An answer with its ID and the order of records left out.
fn shape(m: &Message) -> (ResponseCode, bool, Vec<String>, Vec<String>) {
    let sorted = |rs: &[hickory_proto::rr::Record]| {
        let mut v: Vec<String> = rs.iter().map(|r| r.to_string()).collect();
        v.sort();
        v
    };
    (
        m.metadata.response_code,
        m.metadata.authoritative,
        sorted(&m.answers),
        sorted(&m.authorities),
    )
}

fn same_answers(primary: SocketAddr, follower: SocketAddr, names: &[(String, RecordType)]) {
    for (name, rtype) in names {
        let (a, b) = (query(primary, name, *rtype), query(follower, name, *rtype));
        assert_eq!(
            shape(&a),
            shape(&b),
            "{name} {rtype}: primary {a:?}\nfollower {b:?}"
        );
    }
    // A name that does not exist, too.
    let (a, b) = (
        query(primary, "nope.backhaul.", RecordType::A),
        query(follower, "nope.backhaul.", RecordType::A),
    );
    assert_eq!(shape(&a), shape(&b));
}

fn web_at(addr: SocketAddr, name: &str) -> bool {
    is_a(&query(addr, name, RecordType::A), "10.147.17.3")
}

/// Waits up to `secs` for the follower to hold every zone at the primary's serial.
fn same_serials(primary: SocketAddr, follower: SocketAddr, secs: u64, what: &str) {
    wait_for(Duration::from_secs(secs), || {
        (ZONES.iter())
            .all(|z| {
                soa_serial(follower, z).is_some()
                    && soa_serial(follower, z) == soa_serial(primary, z)
            })
            .then_some(())
    })
    .unwrap_or_else(|| panic!("{what}"));
}

const ZONES: [&str; 3] = ["backhaul.", "17.147.10.in-addr.arpa.", "catalog.invalid."];

#[test]
fn a_follower_serves_the_primarys_zones_and_keeps_them() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        members("web"),
    );
    let (p_port, f_port, f_http) = (free_port(), free_port(), free_port());
    let primary_addr: SocketAddr = format!("127.0.0.1:{p_port}").parse().unwrap();
    let follower_addr: SocketAddr = format!("127.0.0.1:{f_port}").parse().unwrap();
    let p_text = primary_config(&fake, p_port, f_port, "");
    let primary = start(tempfile::tempdir().unwrap(), &p_text);
    primary.wait_answer("web.backhaul.", RecordType::A);
    let follower = start(
        tempfile::tempdir().unwrap(),
        &follower_config(f_port, p_port, f_http),
    );

    // Every zone of the primary's catalog, with its serials and answers.
    same_serials(
        primary_addr,
        follower_addr,
        15,
        "the follower takes every zone",
    );
    same_answers(primary_addr, follower_addr, &names_of(primary_addr, &ZONES));
    let (status, body) = get(format!("127.0.0.1:{f_http}").parse().unwrap(), "/readyz");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"followed\""), "{body}");

    // A rename at Central: the follower answers it within 5 s of the primary, by IXFR.
    fake.set_members(members("api"));
    wait_for(Duration::from_secs(15), || {
        web_at(primary_addr, "api.backhaul.").then_some(())
    })
    .expect("the primary takes the rename");
    let renamed = Instant::now();
    wait_for(Duration::from_secs(5), || {
        web_at(follower_addr, "api.backhaul.").then_some(())
    })
    .unwrap_or_else(|| panic!("the follower within 5 s:\n{}", follower.log_text()));
    println!(
        "follower answered the rename {:?} after the primary",
        renamed.elapsed()
    );
    follower.expect_log(Duration::from_secs(5), "the change came by IXFR", |l| {
        l["message"] == "zone transferred from the primary"
            && l["zone"] == "backhaul."
            && l["transfer"]
                .as_str()
                .is_some_and(|t| t.starts_with("IXFR"))
    });
    assert!(!web_at(follower_addr, "web.backhaul."));
    let names = names_of(primary_addr, &ZONES);
    same_serials(
        primary_addr,
        follower_addr,
        5,
        "same serials after the change",
    );
    same_answers(primary_addr, follower_addr, &names);

    // `zone` on the follower prints the zones it holds, at the primary's serials.
    let (code, text, err) = run_cli(&["zone"], &follower.path("backhaul-dns.toml"));
    assert_eq!(code, 0, "{err}");
    let serial = soa_serial(primary_addr, "backhaul.").unwrap();
    assert!(
        text.contains(&format!("; zone backhaul. serial {serial}")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("api.backhaul.")),
        "{text}"
    );

    // The primary stopped: the follower answers on.
    let p_dir = primary.stop();
    assert!(web_at(follower_addr, "api.backhaul."));
    // The follower restarted while the primary is down: it serves what it kept.
    let f_dir = follower.stop();
    let follower = start(f_dir, &follower_config(f_port, p_port, f_http));
    assert!(
        web_at(follower_addr, "api.backhaul."),
        "{}",
        follower.log_text()
    );
    same_answers_without_primary(follower_addr, &names);
    // The primary back: both agree again.
    let primary = start(p_dir, &p_text);
    primary.wait_answer("api.backhaul.", RecordType::A);
    same_serials(
        primary_addr,
        follower_addr,
        10,
        "same serials after both restarted",
    );
    same_answers(primary_addr, follower_addr, &names);
    // Restarted the other way round: the primary first, then the follower.
    let p_dir = primary.stop();
    let primary = start(p_dir, &p_text);
    primary.wait_answer("api.backhaul.", RecordType::A);
    let f_dir = follower.stop();
    let follower = start(f_dir, &follower_config(f_port, p_port, f_http));
    assert!(
        web_at(follower_addr, "api.backhaul."),
        "{}",
        follower.log_text()
    );
    same_answers(primary_addr, follower_addr, &names);
    drop(primary);
}

/// The kept names answer (the primary's answers were compared before it stopped).
fn same_answers_without_primary(follower: SocketAddr, names: &[(String, RecordType)]) {
    for (name, rtype) in names {
        let m = query(follower, name, *rtype);
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{name} {rtype}: {m:?}"
        );
        assert!(m.metadata.authoritative, "{name} {rtype}");
    }
}

#[test]
fn a_follower_answers_servfail_once_the_soa_expire_passes() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        members("web"),
    );
    let (p_port, f_port, f_http) = (free_port(), free_port(), free_port());
    let follower_addr: SocketAddr = format!("127.0.0.1:{f_port}").parse().unwrap();
    let soa = "[soa]\nrefresh = \"2s\"\nretry = \"1s\"\nexpire = \"6s\"\n";
    let primary = start(
        tempfile::tempdir().unwrap(),
        &primary_config(&fake, p_port, f_port, soa),
    );
    primary.wait_answer("web.backhaul.", RecordType::A);
    let follower = start(
        tempfile::tempdir().unwrap(),
        &follower_config(f_port, p_port, f_http),
    );
    wait_for(Duration::from_secs(15), || {
        web_at(follower_addr, "web.backhaul.").then_some(())
    })
    .unwrap_or_else(|| panic!("the follower takes the zone:\n{}", follower.log_text()));
    let http: SocketAddr = format!("127.0.0.1:{f_http}").parse().unwrap();
    assert_eq!(get(http, "/readyz").0, 200);
    let stopped = Instant::now();
    drop(primary);
    follower.expect_log(Duration::from_secs(20), "expiry logged", |l| {
        l["level"] == "ERROR" && l["zone"] == "backhaul."
    });
    // The primary last vouched for the zone at most one refresh (2 s) before it stopped.
    assert!(
        stopped.elapsed() >= Duration::from_secs(4),
        "not before the expire"
    );
    // Logged, then handed to the builder to serve: wait until it is.
    let servfail = |name: &str, rtype| {
        query(follower_addr, name, rtype).metadata.response_code == ResponseCode::ServFail
    };
    wait_for(Duration::from_secs(5), || {
        servfail("web.backhaul.", RecordType::A).then_some(())
    })
    .unwrap_or_else(|| panic!("SERVFAIL once expired:\n{}", follower.log_text()));
    let m = query(follower_addr, "backhaul.", RecordType::SOA);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{m:?}");
    let (status, body) = get(http, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"expired\":true"), "{body}");
}
