//! `[public]`: a second view on public addresses (127.0.0.3 here) that answers from the public
//! zone file only, while the backhaul view (127.0.0.1) falls back to it for names it lacks.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::json;

const PUBLIC: &str = "\
@      NS   ns1.backhaul.
@      MX   10 mx.backhaul.
ns1    A    203.0.113.53
www    A    203.0.113.80
mx     A    203.0.113.25
db     TXT  \"the public has no database here\"
*.cdn  CNAME www
";

/// Every address in the answer, authority and additional sections.
fn addresses(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .chain(&m.authorities)
        .chain(&m.additionals)
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

#[test]
fn public_view_never_sees_members_and_backhaul_falls_back_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let members = json!({
        "network": network_json(&["10.147.17.0/24"], false, false),
        "members": [
            member("a45dc9d260", "db", true, 1, &["10.147.17.2"]),
            member("e610b78bf1", "", true, 2, &["10.147.17.3"]),
        ],
    });
    std::fs::write(dir.path().join("members.json"), members.to_string()).unwrap();
    std::fs::write(dir.path().join("public.zone"), PUBLIC).unwrap();
    std::fs::write(dir.path().join("records.zone"), "grafana CNAME db\n").unwrap();
    // Forwarding is on, to show that the public view still never forwards.
    let upstream = FakeUpstream::start();
    let tables = format!(
        "[forward]\nupstreams = [\"{}\"]\n\n[public]\naddresses = [\"127.0.0.3\"]\nzone_file = \"public.zone\"\n\n\
         [records]\nzone_file = \"records.zone\"\n\n\
         [[network]]\nid = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"members.json\"\n",
        upstream.addr
    );
    let server = Server::start_in(dir, "", &tables);
    let public: SocketAddr = server
        .wait_log(Duration::from_secs(10), |l| {
            l["message"] == "listening (udp and tcp)" && l["view"] == "public"
        })
        .and_then(|l| l["address"].as_str().map(|a| a.parse().unwrap()))
        .unwrap_or_else(|| panic!("no public listener; {}", server.log_text()));
    assert_eq!(public.ip().to_string(), "127.0.0.3");
    let private = server.dns;
    server.wait_answer("db.backhaul.", RecordType::A);

    // The same name, two answers.
    assert!(is_a(
        &query(private, "db.backhaul.", RecordType::A),
        "10.147.17.2"
    ));
    let m = query(public, "db.backhaul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty(), "NODATA publicly: {m:?}");
    assert!(m.metadata.authoritative);
    // Public names answer on both views (the backhaul falls back to the public records).
    for addr in [private, public] {
        assert!(is_a(
            &query(addr, "www.backhaul.", RecordType::A),
            "203.0.113.80"
        ));
        let m = query(addr, "img.cdn.backhaul.", RecordType::A);
        assert!(is_a(&m, "203.0.113.80"), "wildcard CNAME chased: {m:?}");
        assert_eq!(
            rdatas(&query(addr, "backhaul.", RecordType::MX)),
            ["10 mx.backhaul."]
        );
    }
    // Public NS at the apex replace ours in the public view; the backhaul keeps its own.
    assert_eq!(
        rdatas(&query(public, "backhaul.", RecordType::NS)),
        ["ns1.backhaul."]
    );
    assert_eq!(
        rdatas(&query(private, "backhaul.", RecordType::NS)),
        ["backhaul."]
    );
    // Members, private records, reverse zones and forwarding: none of it publicly.
    let nx = |addr, name, rtype| query(addr, name, rtype).metadata.response_code;
    assert_eq!(
        nx(public, "zt-e610b78bf1.backhaul.", RecordType::A),
        ResponseCode::NXDomain
    );
    assert_eq!(
        nx(public, "grafana.backhaul.", RecordType::A),
        ResponseCode::NXDomain
    );
    assert!(is_a(
        &query(private, "grafana.backhaul.", RecordType::A),
        "10.147.17.2"
    ));
    assert_eq!(
        nx(public, "2.17.147.10.in-addr.arpa.", RecordType::PTR),
        ResponseCode::Refused
    );
    assert_eq!(
        nx(public, "example.com.", RecordType::A),
        ResponseCode::Refused
    );
    assert_eq!(
        upstream.count("example.com. A"),
        0,
        "the public view never forwards"
    );
    assert_eq!(
        nx(private, "example.com.", RecordType::A),
        ResponseCode::NoError
    );
    // No zone transfer of the public view either.
    let axfr = exchange_tcp(public, &request("backhaul.", RecordType::AXFR));
    assert_eq!(axfr.metadata.response_code, ResponseCode::Refused);

    // No member address leaks through any public answer, whatever is asked.
    let member_ips: Vec<IpAddr> = ["10.147.17.2", "10.147.17.3"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    for name in [
        "backhaul.",
        "db.backhaul.",
        "zt-a45dc9d260.backhaul.",
        "zt-e610b78bf1.backhaul.",
        "grafana.backhaul.",
        "www.backhaul.",
        "x.cdn.backhaul.",
        "nope.backhaul.",
    ] {
        for rtype in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::ANY,
            RecordType::NS,
            RecordType::TXT,
        ] {
            for m in [
                query(public, name, rtype),
                exchange_tcp(public, &request(name, rtype)),
            ] {
                let leaked: Vec<_> = addresses(&m)
                    .into_iter()
                    .filter(|a| member_ips.contains(a) || a.to_string().starts_with("10."))
                    .collect();
                assert!(leaked.is_empty(), "{name} {rtype}: {leaked:?} in {m:?}");
            }
        }
    }
}

#[test]
fn public_address_cannot_also_be_a_backhaul_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(dir.path().join("m.json"), "[]").unwrap();
    std::fs::write(
        &config,
        format!(
            "[listen]\naddresses = [\"127.0.0.1\"]\n[public]\naddresses = [\"127.0.0.1\"]\nzone_file = \"p.zone\"\n\
             [[network]]\nid = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"m.json\"\n"
        ),
    )
    .unwrap();
    let (code, _, err) = run_cli(&["check"], &config);
    assert_eq!(code, 2);
    assert!(err.contains("public.addresses[0]"), "{err}");
}
