//! `[[scope]]`: clients with the addresses of members tagged dev and prod (a fake Central
//! with tagsByName, inside the server's network namespace) ask for every kind of name; what a
//! scope hides is answered as a name that never existed, over UDP and TCP; tag changes and
//! reloads move clients live.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::netns::*;
use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::{json, Value};

const DEV: &str = "10.147.17.21";
const PROD: &str = "10.147.17.31";
const OPS: &str = "10.147.17.41";
const SERVER: &str = "10.147.17.1:53";
const HTTP: &str = "10.147.17.1:8053";
const SECRET: &str = "c2VjcmV0LXNoYXJlZC1ieS1wcmltYXJ5LWFuZC1zZWNvbmRhcmllcw==";

/// A network whose rules declare `tag env id 2000 enum 1 dev enum 2 prod default 0`.
fn network() -> Value {
    let mut n = network_json(&["10.147.17.0/24"], false, false);
    n["tagsByName"] =
        json!({"env": {"id": 2000, "default": 0, "enums": {"dev": 1, "prod": 2}, "flags": {}}});
    n
}

fn members(ops_env: Option<u32>, dev_env: Option<u32>) -> Vec<Value> {
    let with = |node: &str, name: &str, created: i64, ip: &str, env: Option<u32>| {
        let mut m = member(node, name, true, created, &[ip]);
        m["config"]["tags"] = match env {
            Some(v) => json!([[2000, v]]),
            None => json!([]),
        };
        m
    };
    vec![
        with("00000000d1", "dev-1", 1, DEV, dev_env),
        with("00000000f1", "pg.prod", 2, PROD, Some(2)),
        with("00000000c1", "ops", 3, OPS, ops_env),
    ]
}

const RECORDS: &str = "alias CNAME pg.prod\n_db._tcp SRV 0 0 5432 pg.prod\n\
                       secret TXT \"s3cret\"\n*.w TXT \"wild\"\n";

fn config(fake: &FakeCentral, clients: &str) -> String {
    format!(
        "state_dir = \"state\"\n[listen]\ninterface = \"zt*\"\nport = 53\n[forward]\nupstreams = []\n\
         [http]\nlisten = \"{HTTP}\"\n\
         [records]\nzone_file = \"records.zone\"\n\
         [[transfer.key]]\nname = \"xfr\"\nalgorithm = \"hmac-sha256\"\nsecret_file = \"xfr.key\"\n\
         [[service]]\nname = \"all\"\nmembers = [\"*\"]\n\
         [[scope]]\nname = \"dev\"\nclients = [{clients}]\nhide = [\"tag:env=prod\", \"secret\", \"*.w\"]\n\
         {}",
        central_network(fake, "1s")
    )
}

/// The body of `GET path` on the status endpoint, asked from `from`.
fn http_get(lab: &Lab, from: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let from: SocketAddr = format!("{from}:0").parse().unwrap();
    let text = in_netns(&lab.cli.name, || {
        let mut s = tcp_from(from, HTTP.parse().unwrap());
        let request = format!("GET {path} HTTP/1.1\r\nHost: {HTTP}\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    });
    assert!(text.starts_with("HTTP/1.1 200"), "{path}: {text}");
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// One query from `from` (an address of the client namespace) over UDP or TCP.
fn ask(lab: &Lab, from: &str, name: &str, rtype: RecordType, tcp: bool) -> Message {
    let q = request(name, rtype).to_vec().unwrap();
    let server: SocketAddr = SERVER.parse().unwrap();
    let from: SocketAddr = format!("{from}:0").parse().unwrap();
    let bytes = in_netns(&lab.cli.name, || {
        if tcp {
            tcp_exchange(tcp_from(from, server), &q)
        } else {
            udp_raw_from(from, server, &q).expect("an answer over UDP")
        }
    });
    Message::from_vec(&bytes).unwrap()
}

/// A hidden name's answer has the shape of a name that never existed: same flags and
/// rcode, nothing in the answer, the same SOA (TTL included) in authority, the same OPT.
fn like_a_name_that_never_existed(lab: &Lab, from: &str, name: &str, rtype: RecordType, tcp: bool) {
    let hidden = ask(lab, from, name, rtype, tcp);
    // A name that never existed in the same zone.
    let never = if name.ends_with(".in-addr.arpa.") {
        "250.17.147.10.in-addr.arpa."
    } else {
        "never-existed.backhaul."
    };
    let never = ask(lab, from, never, rtype, tcp);
    let shape = |m: &Message| {
        (
            m.metadata.response_code,
            m.metadata.authoritative,
            m.metadata.recursion_available,
            m.metadata.truncation,
            m.answers.clone(),
            m.authorities.clone(),
            m.additionals.clone(),
            m.edns.clone(),
        )
    };
    assert_eq!(
        shape(&hidden),
        shape(&never),
        "{name} {rtype} from {from} (tcp: {tcp})"
    );
    assert_eq!(hidden.metadata.response_code, ResponseCode::NXDomain);
}

fn addresses(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = (m.answers.iter())
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_scope_sees_nothing_of_what_it_hides_and_follows_tags_and_reloads() {
    let lab = Lab::new(true);
    for ip in [DEV, PROD, OPS] {
        ip_addr_add(&lab, ip);
    }
    let fake = FakeCentral::start_in(network(), members(None, Some(1)), Some(&lab.srv.name));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("records.zone"), RECORDS).unwrap();
    std::fs::write(dir.path().join("xfr.key"), format!("{SECRET}\n")).unwrap();
    let text = config(&fake, "\"tag:env=dev\"");
    let server =
        Server::launch(dir, &text, &["ip", "netns", "exec", &lab.srv.name]).wait_listening();
    wait_for(Duration::from_secs(15), || {
        let m = ask(&lab, OPS, "pg.prod.backhaul.", RecordType::A, false);
        (addresses(&m) == [PROD]).then_some(())
    })
    .expect("the members are served");

    for tcp in [false, true] {
        // Every kind of name of a prod member, and the hidden records, do not exist for dev.
        for (name, rtype) in [
            ("pg.prod.backhaul.", RecordType::A),
            ("PG.Prod.backhaul.", RecordType::AAAA),
            ("pg.prod.backhaul.", RecordType::ANY),
            ("zt-00000000f1.backhaul.", RecordType::A),
            ("31.17.147.10.in-addr.arpa.", RecordType::PTR),
            ("prod.backhaul.", RecordType::A),
            ("secret.backhaul.", RecordType::TXT),
            ("x.w.backhaul.", RecordType::TXT),
            ("below.pg.prod.backhaul.", RecordType::A),
        ] {
            like_a_name_that_never_existed(&lab, DEV, name, rtype, tcp);
        }
        // A CNAME to a hidden name stops there: NXDOMAIN, no target data.
        let m = ask(&lab, DEV, "alias.backhaul.", RecordType::A, tcp);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{m:?}");
        assert_eq!(m.answers.len(), 1, "the CNAME alone: {m:?}");
        // An SRV of the records file keeps its target's name but not its address.
        let m = ask(&lab, DEV, "_db._tcp.backhaul.", RecordType::SRV, tcp);
        assert_eq!(m.answers.len(), 1, "{m:?}");
        assert!(
            m.additionals
                .iter()
                .all(|r| r.record_type() != RecordType::A),
            "{m:?}"
        );
        // A service answers dev without its prod member.
        let m = ask(&lab, DEV, "all.backhaul.", RecordType::A, tcp);
        assert_eq!(addresses(&m), [DEV, OPS], "{m:?}");
        // Its own names and the others' are there.
        let m = ask(&lab, DEV, "dev-1.backhaul.", RecordType::A, tcp);
        assert_eq!(addresses(&m), [DEV]);

        // A client in no scope sees everything.
        let m = ask(&lab, OPS, "alias.backhaul.", RecordType::A, tcp);
        assert_eq!(addresses(&m), [PROD], "{m:?}");
        let m = ask(&lab, OPS, "all.backhaul.", RecordType::A, tcp);
        assert_eq!(addresses(&m), [DEV, PROD, OPS], "{m:?}");
        let m = ask(&lab, OPS, "prod.backhaul.", RecordType::A, tcp);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
        let m = ask(&lab, OPS, "x.w.backhaul.", RecordType::TXT, tcp);
        assert_eq!(m.answers.len(), 1, "{m:?}");
        let m = ask(&lab, OPS, "_db._tcp.backhaul.", RecordType::SRV, tcp);
        assert!(
            m.additionals
                .iter()
                .any(|r| r.record_type() == RecordType::A),
            "{m:?}"
        );
    }

    // Signed queries (TSIG) see what the client's scope sees, like any other.
    let kdig = |from: &str, name: &str| {
        exec_in(
            &lab.cli.name,
            &[
                "kdig",
                "-b",
                from,
                "-y",
                &format!("hmac-sha256:xfr:{SECRET}"),
                "@10.147.17.1",
                name,
                "A",
            ],
        )
    };
    let signed = kdig(DEV, "pg.prod.backhaul.");
    assert!(
        signed.contains("status: NXDOMAIN") && signed.contains("TSIG PSEUDOSECTION"),
        "{signed}"
    );
    assert!(!signed.contains(PROD), "{signed}");
    let signed = kdig(OPS, "pg.prod.backhaul.");
    assert!(
        signed.contains("status: NOERROR") && signed.contains(PROD),
        "{signed}"
    );

    // `_whoami` tells each client who it is, in every zone.
    let whoami = |from: &str, name: &str| {
        let m = ask(&lab, from, name, RecordType::TXT, false);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
        assert!(m.metadata.authoritative && m.answers[0].ttl == 0, "{m:?}");
        m.answers[0].data.to_string()
    };
    let told = whoami(DEV, "_whoami.backhaul.");
    for part in [
        "address=10.147.17.21",
        "member=dev-1.backhaul",
        "node=00000000d1",
        "scope=dev",
        "view=backhaul",
    ] {
        assert!(told.contains(part), "{part} in {told}");
    }
    let told = whoami("10.147.17.2", "_WhoAmI.17.147.10.in-addr.arpa.");
    assert!(
        told.contains("address=10.147.17.2") && told.contains("member=none"),
        "{told}"
    );
    assert!(told.contains("scope=none"), "{told}");
    let m = ask(&lab, DEV, "_whoami.backhaul.", RecordType::A, false);
    assert!(m.answers.is_empty() && m.metadata.response_code == ResponseCode::NoError);
    // Never to a client outside the allowed set.
    lab.add_outside_client();
    let q = request("_whoami.backhaul.", RecordType::TXT)
        .to_vec()
        .unwrap();
    let from: SocketAddr = "192.0.2.2:0".parse().unwrap();
    let refused = in_netns(&lab.cli.name, || {
        udp_raw_from(from, SERVER.parse().unwrap(), &q)
    })
    .map(|b| Message::from_vec(&b).unwrap());
    assert!(
        refused.as_ref().is_none_or(
            |m| m.metadata.response_code == ResponseCode::Refused && m.answers.is_empty()
        ),
        "{refused:?}"
    );

    // The names endpoints answer each client with what its scope sees.
    let hosts = http_get(&lab, DEV, "/hosts");
    assert!(
        hosts.contains("dev-1.backhaul") && hosts.contains("ops.backhaul"),
        "{hosts}"
    );
    assert!(!hosts.contains("prod") && !hosts.contains(PROD), "{hosts}");
    let json = http_get(&lab, DEV, "/api/v1/names");
    assert!(
        !json.contains("prod") && !json.contains(PROD) && !json.contains("secret"),
        "{json}"
    );
    assert!(json.contains("\"all.backhaul\""), "{json}");
    let page = http_get(&lab, DEV, "/");
    assert!(
        !page.contains("pg.prod") && !page.contains(PROD),
        "the status page too"
    );
    let hosts = http_get(&lab, OPS, "/hosts");
    assert!(
        hosts.contains("pg.prod.backhaul") && hosts.contains(PROD),
        "{hosts}"
    );
    let page = http_get(&lab, OPS, "/");
    assert!(
        page.contains("<h2>Scopes</h2>") && page.contains("pg.prod"),
        "{page}"
    );

    // ops is tagged prod at Central: hidden from dev within a sync.
    fake.set_members(members(Some(2), Some(1)));
    wait_for(Duration::from_secs(10), || {
        let m = ask(&lab, DEV, "ops.backhaul.", RecordType::A, false);
        (m.metadata.response_code == ResponseCode::NXDomain).then_some(())
    })
    .expect("a member tagged prod disappears for dev");
    // dev-1 loses its tag: its address is in no scope, and sees prod.
    fake.set_members(members(Some(2), None));
    wait_for(Duration::from_secs(10), || {
        let m = ask(&lab, DEV, "pg.prod.backhaul.", RecordType::A, false);
        (addresses(&m) == [PROD]).then_some(())
    })
    .expect("a client that leaves the scope sees everything");

    // A reload puts the untagged ops address in the scope by network.
    let path = server.path("backhaul-dns.toml");
    std::fs::write(
        &path,
        config(&fake, &format!("\"tag:env=dev\", \"{OPS}/32\"")),
    )
    .unwrap();
    // SAFETY: kill(2) on the PID of the server this test started.
    unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) };
    wait_for(Duration::from_secs(10), || {
        let m = ask(&lab, OPS, "pg.prod.backhaul.", RecordType::A, false);
        (m.metadata.response_code == ResponseCode::NXDomain).then_some(())
    })
    .expect("a reload changes the scopes live");
    like_a_name_that_never_existed(&lab, OPS, "pg.prod.backhaul.", RecordType::A, true);

    // `check` holds the tags scopes name against the networks' rules as last synced.
    wait_for(Duration::from_secs(10), || {
        let dir = server.path("state").join("snapshots");
        (std::fs::read_dir(dir).ok()?.count() > 0).then_some(())
    })
    .expect("a snapshot is saved");
    let typo = server.path("typo.toml");
    std::fs::write(&typo, config(&fake, "\"tag:env=dve\"")).unwrap();
    let (code, _, err) = run_cli(&["check"], &typo);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("scope[0].clients") && err.contains("tag:env=dve"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let (code, _, err) = run_cli(&["check"], &path);
    assert_eq!(code, 0, "{err}");
}

/// Adds `ip` to the client's ZeroTier-like interface (one host per member address).
fn ip_addr_add(lab: &Lab, ip: &str) {
    let cidr = format!("{ip}/24");
    crate::common::netns::ip(&["-n", &lab.cli.name, "addr", "add", &cidr, "dev", "czt"]);
}

/// A member of two networks (one host, two subnets on one link): each client gets the address
/// in its own subnet first, from dig-like queries and from `getent hosts` (glibc's resolver,
/// pointed at the server through the namespace's resolv.conf).
#[test]
fn a_host_on_two_networks_is_answered_with_the_askers_subnet_first() {
    let lab = Lab::new(true);
    crate::common::netns::ip(&[
        "-n",
        &lab.srv.name,
        "addr",
        "add",
        "10.147.18.1/24",
        "dev",
        ZT_IF,
    ]);
    crate::common::netns::ip(&[
        "-n",
        &lab.cli.name,
        "addr",
        "add",
        "10.147.18.2/24",
        "dev",
        "czt",
    ]);
    let dir = tempfile::tempdir().unwrap();
    for (file, id, route, ip) in [
        (
            "m1.json",
            "8056c2e21c000001",
            "10.147.17.0/24",
            "10.147.17.5",
        ),
        (
            "m2.json",
            "8056c2e21c000002",
            "10.147.18.0/24",
            "10.147.18.5",
        ),
    ] {
        let mut network = network_json(&[route], false, false);
        network["id"] = json!(id);
        let members =
            json!({"network": network, "members": [member("a45dc9d260", "db", true, 1, &[ip])]});
        std::fs::write(dir.path().join(file), members.to_string()).unwrap();
    }
    let config = "state_dir = \"state\"\n[listen]\ninterface = \"zt*\"\nport = 53\n[forward]\nupstreams = []\n\
                  [[network]]\nid = \"8056c2e21c000001\"\nsource = \"file\"\nmembers_file = \"m1.json\"\n\
                  [[network]]\nid = \"8056c2e21c000002\"\nsource = \"file\"\nmembers_file = \"m2.json\"\n";
    let _server =
        Server::launch(dir, config, &["ip", "netns", "exec", &lab.srv.name]).wait_listening();
    let first = |from: &str, server: &str| {
        let q = request("db.backhaul.", RecordType::A).to_vec().unwrap();
        let (from, server): (SocketAddr, SocketAddr) = (
            format!("{from}:0").parse().unwrap(),
            format!("{server}:53").parse().unwrap(),
        );
        let m = in_netns(&lab.cli.name, || udp_raw_from(from, server, &q))?;
        let m = Message::from_vec(&m).ok()?;
        (m.answers.len() == 2).then(|| m.answers[0].data.to_string())
    };
    wait_for(Duration::from_secs(10), || {
        first("10.147.17.2", "10.147.17.1")
    })
    .expect("both networks are served");
    for _ in 0..3 {
        assert_eq!(first("10.147.17.2", "10.147.17.1").unwrap(), "10.147.17.5");
        assert_eq!(first("10.147.18.2", "10.147.18.1").unwrap(), "10.147.18.5");
    }
    // glibc's resolver in the client namespace, through its own resolv.conf.
    let resolv_conf = ResolvConf::new(&lab.cli.name);
    for (server, want) in [
        ("10.147.17.1", "10.147.17.5"),
        ("10.147.18.1", "10.147.18.5"),
    ] {
        resolv_conf.write(&format!("nameserver {server}\n"));
        let line = exec_in(&lab.cli.name, &["getent", "hosts", "db.backhaul"]);
        assert!(line.starts_with(want), "asking {server}: {line}");
    }
}
