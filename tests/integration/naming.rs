//! Member names and addresses as served: every naming rule of the README ("Names") through the real binary.

use crate::common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

fn server_with(
    members: Vec<serde_json::Value>,
    rfc4193: bool,
    sixplane: bool,
) -> (FakeCentral, Server) {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], rfc4193, sixplane),
        members,
    );
    let server = Server::start("", &central_network(&fake, "1s"));
    (fake, server)
}

fn nx(server: &Server, name: &str) {
    let m = query(server.dns, name, RecordType::A);
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "{name}: {m:?}"
    );
}

#[test]
fn names_are_normalised_per_the_rules() {
    let (fake, server) = server_with(
        vec![
            member(
                "a45dc9d260",
                "Joe Sixpack's iMac",
                true,
                1,
                &["10.147.17.2"],
            ),
            member("e610b78bf1", "DB", true, 2, &["10.147.17.3"]),
            member(
                "efcc1b0947",
                "my-chain_bootstrap",
                true,
                3,
                &["10.147.17.4"],
            ),
            member("a02505e545", "web.prod", true, 4, &["10.147.17.5"]),
            member("a02505e546", "", true, 5, &["10.147.17.6"]),
            member("a02505e547", "cache.backhaul", true, 6, &["10.147.17.7"]),
            member("a02505e548", "  ☕ ", true, 7, &["10.147.17.8"]),
        ],
        false,
        false,
    );
    let _ = &fake;
    let cases = [
        ("joe-sixpacks-imac.backhaul.", "10.147.17.2"),
        ("db.backhaul.", "10.147.17.3"),
        ("my-chain-bootstrap.backhaul.", "10.147.17.4"),
        ("web.prod.backhaul.", "10.147.17.5"),
        ("cache.backhaul.", "10.147.17.7"),
    ];
    for (name, ip) in cases {
        let m = server.wait_answer(name, RecordType::A);
        assert!(is_a(&m, ip), "{name} -> {:?}", rdatas(&m));
    }
    // Every member keeps its zt- name, named or not.
    for (node, ip) in [
        ("a02505e546", "10.147.17.6"),
        ("a45dc9d260", "10.147.17.2"),
        ("a02505e548", "10.147.17.8"),
    ] {
        let m = server.wait_answer(&format!("zt-{node}.backhaul."), RecordType::A);
        assert!(is_a(&m, ip));
    }
    // Dots make labels: prod.backhaul is an empty non-terminal (NODATA), not NXDOMAIN.
    let m = query(server.dns, "prod.backhaul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    // Nothing is doubled, and unusable names give nothing.
    nx(&server, "cache.backhaul.backhaul.");
    nx(&server, "web-prod.backhaul.");
    // PTR targets are the custom name when there is one, else the zt- name.
    let m = server.wait_answer("3.17.147.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(rdatas(&m), ["db.backhaul."]);
    let m = server.wait_answer("6.17.147.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(rdatas(&m), ["zt-a02505e546.backhaul."]);
}

#[test]
fn duplicate_names_oldest_wins_and_conflict_is_logged() {
    let (_fake, server) = server_with(
        vec![
            member("00000000bb", "web", true, 2000, &["10.147.17.2"]),
            member("00000000aa", "WEB", true, 2000, &["10.147.17.3"]),
            member("00000000cc", "Web", true, 1000, &["10.147.17.4"]),
            member("00000000dd", "api", true, 5000, &["10.147.17.5"]),
            member("00000000ee", "api", true, 5000, &["10.147.17.6"]),
        ],
        false,
        false,
    );
    let m = server.wait_answer("web.backhaul.", RecordType::A);
    assert_eq!(rdatas(&m), ["10.147.17.4"], "oldest creationTime wins");
    let m = server.wait_answer("api.backhaul.", RecordType::A);
    assert_eq!(rdatas(&m), ["10.147.17.5"], "same age: lowest node id wins");
    // Losers keep their zt- names.
    for (node, ip) in [
        ("00000000bb", "10.147.17.2"),
        ("00000000aa", "10.147.17.3"),
        ("00000000ee", "10.147.17.6"),
    ] {
        assert!(is_a(
            &server.wait_answer(&format!("zt-{node}.backhaul."), RecordType::A),
            ip
        ));
    }
    let conflicts = server.count_logs(|l| {
        l["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("name conflict")
    });
    assert!(conflicts >= 3, "logs:\n{}", server.log_text());
    server.expect_log(
        std::time::Duration::from_secs(5),
        "zone update counts the 3 conflicts",
        |l| l["message"] == "zone updated" && l["conflicts"] == 3,
    );
}

#[test]
fn unauthorized_members_get_nothing_unless_included() {
    let members = vec![
        member("a45dc9d260", "ok", true, 1, &["10.147.17.2"]),
        member("e610b78bf1", "pending", false, 2, &["10.147.17.3"]),
    ];
    let (_fake, server) = server_with(members.clone(), false, false);
    server.wait_answer("ok.backhaul.", RecordType::A);
    nx(&server, "pending.backhaul.");
    nx(&server, "zt-e610b78bf1.backhaul.");
    nx(&server, "3.17.147.10.in-addr.arpa.");

    let fake = FakeCentral::start(network_json(&["10.147.17.0/24"], false, false), members);
    let tables = central_network(&fake, "1s") + "include_unauthorized = true\n";
    let server = Server::start("", &tables);
    assert!(is_a(
        &server.wait_answer("pending.backhaul.", RecordType::A),
        "10.147.17.3"
    ));
}

#[test]
fn member_without_addresses_gets_no_name() {
    let (_fake, server) = server_with(
        vec![
            member("a45dc9d260", "ok", true, 1, &["10.147.17.2"]),
            member("e610b78bf1", "lonely", true, 2, &[]),
        ],
        false,
        false,
    );
    server.wait_answer("ok.backhaul.", RecordType::A);
    nx(&server, "lonely.backhaul.");
    nx(&server, "zt-e610b78bf1.backhaul.");
}

#[test]
fn ipv6_assigned_rfc4193_and_6plane_with_reverse() {
    let (_fake, server) = server_with(
        vec![member(
            "a45dc9d260",
            "db",
            true,
            1,
            &["10.147.17.2", "fd00:1234::5"],
        )],
        true,
        true,
    );
    let m = server.wait_answer("db.backhaul.", RecordType::AAAA);
    let mut want = vec![
        "fd00:1234::5".to_owned(),
        "fd80:56c2:e21c:0:199:93a4:5dc9:d260".to_owned(), // RFC4193 worked example
        // 6PLANE: 8056c2e2 ^ 1c000001 = 9c56c2e3
        "fc9c:56c2:e3a4:5dc9:d260::1".to_owned(),
    ];
    want.sort();
    assert_eq!(rdatas(&m), want);
    // PTR in the RFC4193 /88 zone and the member's 6PLANE /80 zone.
    let m = server.wait_answer(
        "0.6.2.d.9.c.d.5.4.a.3.9.9.9.1.0.0.0.0.0.c.1.2.e.2.c.6.5.0.8.d.f.ip6.arpa.",
        RecordType::PTR,
    );
    assert_eq!(rdatas(&m), ["db.backhaul."]);
    let m = server.wait_answer(
        "1.0.0.0.0.0.0.0.0.0.0.0.0.6.2.d.9.c.d.5.4.a.3.e.2.c.6.5.c.9.c.f.ip6.arpa.",
        RecordType::PTR,
    );
    assert_eq!(rdatas(&m), ["db.backhaul."]);
    // Each reverse zone has SOA and NS at its apex.
    for apex in [
        "3.9.9.9.1.0.0.0.0.0.c.1.2.e.2.c.6.5.0.8.d.f.ip6.arpa.",
        "0.6.2.d.9.c.d.5.4.a.3.e.2.c.6.5.c.9.c.f.ip6.arpa.",
        "17.147.10.in-addr.arpa.",
    ] {
        let m = server.wait_answer(apex, RecordType::SOA);
        assert!(m.metadata.authoritative);
        server.wait_answer(apex, RecordType::NS);
    }
    // An address outside every route still has a PTR, in a zone of exactly that name.
    let m = server.wait_answer(
        "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.3.2.1.0.0.d.f.ip6.arpa.",
        RecordType::PTR,
    );
    assert_eq!(rdatas(&m), ["db.backhaul."]);
    // Neighbours of that address are not ours: we do not claim what we do not own.
    let m = query(
        server.dns,
        "6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.3.2.1.0.0.d.f.ip6.arpa.",
        RecordType::PTR,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn ns_name_resolves() {
    let (_fake, server) = server_with(
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
        false,
        false,
    );
    let m = server.wait_answer("backhaul.", RecordType::NS);
    assert_eq!(rdatas(&m), ["backhaul."]);
    let m = server.wait_answer("backhaul.", RecordType::A);
    assert_eq!(rdatas(&m), ["127.0.0.1"]);
}

/// Wildcards per member: `dns: *` in the description, or the network's `wildcard` selectors
/// (a name glob, a tag), give `*.<name>`; names that exist below (another member, a record)
/// stay themselves (RFC 4592); a records-file wildcard of that name wins; the description's
/// wildcard follows a change at Central within a sync.
#[test]
fn wildcards_per_member_answer_below_its_name_and_shadow_nothing() {
    let with = |node: &str, name: &str, created: i64, ip: &str, description: &str, tags| {
        let mut m = member(node, name, true, created, &[ip]);
        m["description"] = serde_json::json!(description);
        m["config"]["tags"] = tags;
        m
    };
    let members = |web_description: &str| {
        vec![
            with(
                "a45dc9d260",
                "web",
                1,
                "10.147.17.2",
                web_description,
                serde_json::json!([]),
            ),
            with(
                "e610b78bf1",
                "api.web",
                2,
                "10.147.17.3",
                "",
                serde_json::json!([]),
            ),
            with(
                "efcc1b0947",
                "lb-1",
                3,
                "10.147.17.4",
                "",
                serde_json::json!([[1000, 1]]),
            ),
            with(
                "a02505e545",
                "edge-7",
                4,
                "10.147.17.5",
                "",
                serde_json::json!([]),
            ),
            with(
                "a02505e546",
                "db",
                5,
                "10.147.17.6",
                "",
                serde_json::json!([]),
            ),
            with(
                "a02505e547",
                "files",
                6,
                "10.147.17.7",
                "dns: *",
                serde_json::json!([]),
            ),
        ]
    };
    let mut network = network_json(&["10.147.17.0/24"], false, false);
    network["tagsByName"] = serde_json::json!({"role": {"id": 1000, "default": 0, "enums": {"ingress": 1}, "flags": {}}});
    let fake = FakeCentral::start(network, members("runs the sites\ndns: www *"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("records.zone"),
        "static.web A 10.147.17.90\n*.files TXT \"the file's own\"\n",
    )
    .unwrap();
    let tables = central_network(&fake, "1s").replace(
        "poll_interval",
        "wildcard = [\"edge-*\", \"tag:role=ingress\"]\npoll_interval",
    );
    let server = Server::start_in(
        dir,
        "",
        &format!("[records]\nzone_file = \"records.zone\"\n{tables}"),
    );
    server.wait_answer("web.backhaul.", RecordType::A);
    let a = |name: &str| rdatas(&query(server.dns, name, RecordType::A));
    wait_for(std::time::Duration::from_secs(10), || {
        (a("site1.web.backhaul.") == ["10.147.17.2"]).then_some(())
    })
    .expect("dns: * gives *.web");
    assert_eq!(a("a.b.web.backhaul."), ["10.147.17.2"]);
    assert_eq!(a("web.backhaul."), ["10.147.17.2"]);
    assert_eq!(
        a("www.backhaul."),
        ["10.147.17.2"],
        "the alias on the same line"
    );
    // Names that exist below stay themselves.
    assert_eq!(a("api.web.backhaul."), ["10.147.17.3"]);
    assert_eq!(a("static.web.backhaul."), ["10.147.17.90"]);
    // The network's selectors: a name glob and a tag.
    assert_eq!(a("x.edge-7.backhaul."), ["10.147.17.5"]);
    assert_eq!(a("x.lb-1.backhaul."), ["10.147.17.4"]);
    nx(&server, "x.db.backhaul.");
    // The records file's own wildcard wins over the member's.
    let m = query(server.dns, "x.files.backhaul.", RecordType::TXT);
    assert_eq!(m.answers.len(), 1, "{m:?}");
    let m = query(server.dns, "x.files.backhaul.", RecordType::A);
    assert!(m.answers.is_empty(), "{m:?}");
    // The description changes at Central: the wildcard goes with the next sync.
    fake.set_members(members("runs the sites"));
    wait_for(std::time::Duration::from_secs(10), || {
        let m = query(server.dns, "site1.web.backhaul.", RecordType::A);
        (m.metadata.response_code == ResponseCode::NXDomain).then_some(())
    })
    .expect("the wildcard leaves with the description");
    assert_eq!(a("web.backhaul."), ["10.147.17.2"]);
}
