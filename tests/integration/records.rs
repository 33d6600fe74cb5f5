//! `[records] zone_file`: extra records merged with the members, CNAME chasing, RFC 4592
//! wildcards, overrides of member names, and bad files that keep the old records.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::json;

const RECORDS: &str = "\
; extra names for the backhaul
db2      CNAME db
_pg._tcp SRV 0 0 5432 db
@        TXT \"v=spf1 -all\"
@        MX 10 mail
mail     A 10.147.17.50
         AAAA fd00::50
*.dev    A 10.147.17.60
web      A 10.147.17.99  ; takes the name from the member called web
gone     CNAME nothere
out      CNAME www.example.com.
loop1    CNAME loop2
loop2    CNAME loop1
";

fn write_members(dir: &Path) {
    let members = json!({
        "network": network_json(&["10.147.17.0/24"], false, false),
        "members": [
            member("a45dc9d260", "db", true, 1, &["10.147.17.2"]),
            member("e610b78bf1", "web", true, 2, &["10.147.17.3"]),
        ],
    });
    std::fs::write(dir.join("members.json"), members.to_string()).unwrap();
}

const TABLES: &str =
    "[records]\nzone_file = \"records.zone\"\n\n[[network]]\nid = \"8056c2e21c000001\"\n\
                      source = \"file\"\nmembers_file = \"members.json\"\npoll_interval = \"1h\"\n";

fn start(records: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    write_members(dir.path());
    std::fs::write(dir.path().join("records.zone"), records).unwrap();
    let server = Server::start_in(dir, "", TABLES);
    server.wait_answer("db.backhaul.", RecordType::A);
    server
}

fn types(m: &Message) -> Vec<(String, RecordType)> {
    m.answers
        .iter()
        .map(|r| (r.name.to_string(), r.record_type()))
        .collect()
}

#[test]
fn every_type_cname_chase_wildcards_and_override() {
    let server = start(RECORDS);
    let dns = server.dns;
    for (proto, ex) in [
        ("udp", exchange_udp as fn(_, &_) -> _),
        ("tcp", exchange_tcp),
    ] {
        // A CNAME to a member name is chased: CNAME first, then the member's address.
        let m = ex(dns, &request("DB2.backhaul.", RecordType::A));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{proto}");
        assert!(m.metadata.authoritative, "{proto}");
        assert_eq!(
            types(&m),
            [
                ("DB2.backhaul.".into(), RecordType::CNAME),
                ("db.backhaul.".into(), RecordType::A)
            ],
            "{proto}: {m:?}"
        );
        assert!(is_a(&m, "10.147.17.2"), "{proto}");
    }
    // Asking for the CNAME itself gives just the CNAME.
    let m = query(dns, "db2.backhaul.", RecordType::CNAME);
    assert_eq!(rdatas(&m), ["db.backhaul."]);
    // Each type the file holds.
    let srv = query(dns, "_pg._tcp.backhaul.", RecordType::SRV);
    assert_eq!(rdatas(&srv), ["0 0 5432 db.backhaul."]);
    let txt = query(dns, "backhaul.", RecordType::TXT);
    assert!(matches!(&txt.answers[0].data, RData::TXT(t) if t.to_string() == "v=spf1 -all"));
    let mx = query(dns, "backhaul.", RecordType::MX);
    assert_eq!(rdatas(&mx), ["10 mail.backhaul."]);
    // The targets' in-zone addresses come along in the additional section.
    let additional = |m: &Message| -> Vec<String> {
        let mut a: Vec<String> = (m.additionals.iter())
            .map(|r| format!("{} {}", r.name, r.data))
            .collect();
        a.sort();
        a
    };
    assert_eq!(
        additional(&mx),
        ["mail.backhaul. 10.147.17.50", "mail.backhaul. fd00::50"]
    );
    assert_eq!(additional(&srv), ["db.backhaul. 10.147.17.2"]);
    assert_eq!(
        rdatas(&query(dns, "mail.backhaul.", RecordType::AAAA)),
        ["fd00::50"]
    );
    // RFC 4592: the wildcard answers for names below `dev` that do not exist, with the
    // question's name as owner; other types there are NODATA; existing names are not touched.
    for name in ["x.dev.backhaul.", "a.b.dev.backhaul."] {
        let m = query(dns, name, RecordType::A);
        assert_eq!(rdatas(&m), ["10.147.17.60"], "{name}");
        assert_eq!(m.answers[0].name.to_string(), name);
        assert!(m.metadata.authoritative);
    }
    let nodata = query(dns, "x.dev.backhaul.", RecordType::AAAA);
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(nodata.authorities[0].record_type(), RecordType::SOA);
    // `dev` itself is an empty non-terminal: NODATA, not the wildcard.
    let ent = query(dns, "dev.backhaul.", RecordType::A);
    assert_eq!(ent.metadata.response_code, ResponseCode::NoError);
    assert!(ent.answers.is_empty());
    // No wildcard at the apex: other names are NXDOMAIN.
    let nx = query(dns, "nx.backhaul.", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);

    // A CNAME to a missing in-zone name: NXDOMAIN with the CNAME in the answer and the SOA
    // of the target's zone in authority (RFC 6604).
    let m = query(dns, "gone.backhaul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(types(&m), [("gone.backhaul.".into(), RecordType::CNAME)]);
    assert_eq!(m.authorities[0].name.to_string(), "backhaul.");
    // A CNAME out of our zones is returned as is (forwarding is off in this test).
    let m = query(dns, "out.backhaul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(rdatas(&m), ["www.example.com."]);
    // A loop ends at its first repeat: each CNAME once, as NSD and Knot answer.
    let m = query(dns, "loop1.backhaul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let owners: Vec<String> = m.answers.iter().map(|r| r.name.to_string()).collect();
    assert_eq!(owners, ["loop1.backhaul.", "loop2.backhaul."], "{m:?}");

    // The file's `web` wins over the member named web, which keeps its zt- name (and its PTR
    // points there); said once in the log.
    assert_eq!(
        rdatas(&query(dns, "web.backhaul.", RecordType::A)),
        ["10.147.17.99"]
    );
    assert_eq!(
        rdatas(&query(dns, "zt-e610b78bf1.backhaul.", RecordType::A)),
        ["10.147.17.3"]
    );
    assert_eq!(
        rdatas(&query(dns, "3.17.147.10.in-addr.arpa.", RecordType::PTR)),
        ["zt-e610b78bf1.backhaul."]
    );
    let overridden = |l: &serde_json::Value| {
        l["message"]
            .as_str()
            .unwrap_or("")
            .contains("defines this name: the member keeps only its zt- name")
    };
    assert_eq!(server.count_logs(overridden), 1, "{}", server.log_text());
    // Another rebuild (a members change) does not repeat it.
    let mut more = std::fs::read_to_string(server.path("records.zone")).unwrap();
    more.push_str("extra A 10.147.17.70\n");
    replace_by_rename(&server.path("records.zone"), &more);
    server.wait_answer("extra.backhaul.", RecordType::A);
    assert_eq!(server.count_logs(overridden), 1, "{}", server.log_text());
}

#[test]
fn a_bad_file_names_its_line_and_keeps_the_old_records() {
    // At start-up (and for `check`): refused with the line, exit code 2.
    let dir = tempfile::tempdir().unwrap();
    write_members(dir.path());
    std::fs::write(
        dir.path().join("records.zone"),
        "ok A 10.147.17.9\n; comment\nbad A 10.147.17\n",
    )
    .unwrap();
    let config = dir.path().join("backhaul-dns.toml");
    std::fs::write(
        &config,
        format!("[listen]\naddresses = [\"127.0.0.1\"]\n[forward]\nupstreams = []\n{TABLES}"),
    )
    .unwrap();
    let (code, _, err) = run_cli(&["check"], &config);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("records.zone, line 3"), "{err}");

    // While running: the edit is rejected with its line and the previous records keep serving.
    let server = start(RECORDS);
    server.wait_answer("db2.backhaul.", RecordType::CNAME);
    replace_by_rename(
        &server.path("records.zone"),
        "db2 CNAME db\nweb A 10.147.17.99\nnew A 10.147.17.80\nx CNAME db\nx TXT \"no\"\n",
    );
    let rejected = server.expect_log(Duration::from_secs(10), "reload rejected", |l| {
        l["message"]
            .as_str()
            .unwrap_or("")
            .contains("reload rejected")
    });
    let text = rejected["message"].as_str().unwrap();
    assert!(text.contains("records.zone, line 5"), "{text}");
    for (name, rtype) in [
        ("mail.backhaul.", RecordType::A),
        ("_pg._tcp.backhaul.", RecordType::SRV),
    ] {
        assert_eq!(
            query(server.dns, name, rtype).answers.len(),
            1,
            "{name} still served"
        );
    }
    assert_eq!(
        query(server.dns, "new.backhaul.", RecordType::A)
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
    // Fixed: served.
    replace_by_rename(
        &server.path("records.zone"),
        "db2 CNAME db\nnew A 10.147.17.80\n",
    );
    server.wait_answer("new.backhaul.", RecordType::A);
    assert_eq!(
        query(server.dns, "mail.backhaul.", RecordType::A)
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
}

/// A record that parses but cannot be sent (a TXT string over 255 bytes, as a DKIM key pasted
/// whole): refused by `check` and at start-up with its line; added live, the reload is
/// rejected and member changes keep applying (the build never sees it).
#[test]
fn a_record_that_cannot_be_encoded_is_refused_and_members_keep_syncing() {
    let long_txt = format!(
        "ok A 10.147.17.9\ndkim TXT \"v=DKIM1; p={}\"\n",
        "A".repeat(300)
    );
    let dir = tempfile::tempdir().unwrap();
    write_members(dir.path());
    std::fs::write(dir.path().join("records.zone"), &long_txt).unwrap();
    let config = dir.path().join("backhaul-dns.toml");
    std::fs::write(
        &config,
        format!("[listen]\naddresses = [\"127.0.0.1\"]\n[forward]\nupstreams = []\n{TABLES}"),
    )
    .unwrap();
    let (code, _, err) = run_cli(&["check"], &config);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("records.zone, line 2"), "{err}");
    assert!(err.contains("255 bytes"), "{err}");
    let (code, _, err) = run_cli(&["zone"], &config);
    assert_eq!(code, 2, "zone refuses it too, no panic: {err}");

    let server = start(RECORDS);
    replace_by_rename(&server.path("records.zone"), &long_txt);
    let rejected = server.expect_log(Duration::from_secs(10), "reload rejected", |l| {
        l["message"]
            .as_str()
            .unwrap_or("")
            .contains("reload rejected")
    });
    assert!(
        rejected["message"]
            .as_str()
            .unwrap()
            .contains("records.zone, line 2"),
        "{rejected}"
    );
    // A member moves: the new address is served although the records file is still bad.
    let moved = json!({
        "network": network_json(&["10.147.17.0/24"], false, false),
        "members": [member("a45dc9d260", "db", true, 1, &["10.147.17.77"])],
    });
    replace_by_rename(&server.path("members.json"), &moved.to_string());
    wait_for(Duration::from_secs(10), || {
        is_a(
            &query(server.dns, "db.backhaul.", RecordType::A),
            "10.147.17.77",
        )
        .then_some(())
    })
    .unwrap_or_else(|| panic!("member change not applied; logs:\n{}", server.log_text()));
    let bugs = server.count_logs(|l| l["message"].as_str().unwrap_or("").contains("a bug"));
    assert_eq!(bugs, 0, "{}", server.log_text());
}

/// The apex: when the records file sets the apex's NS and addresses, its records stand alone
/// (the listen addresses are not mixed in, one TTL per RRset); the SOA names the first NS as
/// the primary, and `[soa]` sets the rest.
#[test]
fn the_records_file_owns_the_apex_when_it_sets_it_and_soa_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    write_members(dir.path());
    std::fs::write(
        dir.path().join("records.zone"),
        "@ NS ns1\n@ NS ns2\nns1 A 10.147.17.10\nns2 A 10.147.17.12\n@ 300 A 10.147.17.11\n",
    )
    .unwrap();
    let top = "[soa]\nrname = \"dns-admin@backhaul\"\nrefresh = \"2h\"\nretry = \"30m\"\nexpire = \"21d\"";
    let server = Server::start_in(dir, top, TABLES);
    server.wait_answer("db.backhaul.", RecordType::A);
    let m = query(server.dns, "backhaul.", RecordType::A);
    assert_eq!(
        rdatas(&m),
        ["10.147.17.11"],
        "the file's apex address alone"
    );
    assert!(m.answers.iter().all(|r| r.ttl == 300), "{m:?}");
    let m = query(server.dns, "backhaul.", RecordType::NS);
    let mut ns = rdatas(&m);
    ns.sort();
    assert_eq!(ns, ["ns1.backhaul.", "ns2.backhaul."]);
    let mut glue: Vec<String> = (m.additionals.iter())
        .map(|r| format!("{} {}", r.name, r.data))
        .collect();
    glue.sort();
    assert_eq!(
        glue,
        ["ns1.backhaul. 10.147.17.10", "ns2.backhaul. 10.147.17.12"]
    );
    let m = query(server.dns, "backhaul.", RecordType::SOA);
    let RData::SOA(soa) = &m.answers[0].data else {
        panic!("{m:?}")
    };
    assert_eq!(soa.mname.to_string(), "ns1.backhaul.");
    assert_eq!(soa.rname.to_string(), "dns-admin.backhaul.");
    assert_eq!(
        (soa.refresh, soa.retry, soa.expire),
        (7200, 1800, 21 * 86400)
    );
    // A reverse zone's SOA names our own NS (the file sets nothing there).
    let m = query(server.dns, "17.147.10.in-addr.arpa.", RecordType::SOA);
    let RData::SOA(soa) = &m.answers[0].data else {
        panic!("{m:?}")
    };
    assert_eq!(soa.mname.to_string(), "backhaul.");
}

/// A name server on `ip`:53 authoritative for everything it is asked: A queries get
/// 10.96.0.10. Counts the queries it answered.
struct DelegatedServer {
    asked: Arc<AtomicUsize>,
}

fn delegated_server(ip: &str) -> DelegatedServer {
    use hickory_proto::op::MessageType;
    let sock = std::net::UdpSocket::bind((ip, 53)).expect("binding port 53 needs root");
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            count.fetch_add(1, Ordering::Relaxed);
            let mut r = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
            r.metadata.authoritative = true;
            if let Some(query) = q.queries.first() {
                r.add_query(query.clone());
                if query.query_type() == RecordType::A {
                    r.add_answer(hickory_proto::rr::Record::from_rdata(
                        query.name().clone(),
                        30,
                        RData::A(hickory_proto::rr::rdata::A("10.96.0.10".parse().unwrap())),
                    ));
                }
            }
            let _ = sock.send_to(&r.to_vec().unwrap(), peer);
        }
    });
    DelegatedServer { asked }
}

/// Delegations: NS below the apex cuts the zone. Resolvers get a referral (AA clear, the NS
/// set in authority, glue in additional); clients that may have names resolved get the
/// answer through the delegated server; DS at the cut is ours.
#[test]
fn a_delegation_refers_resolvers_and_resolves_for_clients() {
    let delegated = delegated_server("127.0.0.77");
    let up = FakeUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    write_members(dir.path());
    std::fs::write(
        dir.path().join("records.zone"),
        "k8s NS ns.k8s\nns.k8s A 127.0.0.77\nk8s DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118\n",
    )
    .unwrap();
    let tables = format!("[forward]\nupstreams = [\"{}\"]\n{TABLES}", up.addr);
    let server = Server::start_in(dir, "", &tables);
    server.wait_answer("db.backhaul.", RecordType::A);

    // Without RD (a resolver walking down): a referral.
    let mut q = request("www.k8s.backhaul.", RecordType::A);
    q.metadata.recursion_desired = false;
    let m = exchange_udp(server.dns, &q);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(!m.metadata.authoritative && m.answers.is_empty(), "{m:?}");
    let authority: Vec<String> = m.authorities.iter().map(|r| r.to_string()).collect();
    assert_eq!(authority, ["k8s.backhaul. 60 IN NS ns.k8s.backhaul."]);
    let glue: Vec<String> = m.additionals.iter().map(|r| r.to_string()).collect();
    assert_eq!(glue, ["ns.k8s.backhaul. 60 IN A 127.0.0.77"]);
    assert_eq!(delegated.asked.load(Ordering::Relaxed), 0);

    // With RD from a client we resolve for: the delegated server's answer.
    let m = query(server.dns, "www.k8s.backhaul.", RecordType::A);
    assert!(is_a(&m, "10.96.0.10"), "{m:?}\n{}", server.log_text());
    assert!(delegated.asked.load(Ordering::Relaxed) >= 1);
    assert_eq!(up.count("www.k8s.backhaul."), 0, "not the default upstream");

    // DS at the cut: ours, authoritative.
    let mut q = request("k8s.backhaul.", RecordType::DS);
    q.metadata.recursion_desired = false;
    let m = exchange_udp(server.dns, &q);
    assert!(m.metadata.authoritative && m.answers.len() == 1, "{m:?}");
}

/// The serial of a zone as `backhaul-dns zone` prints it (`; zone <apex> serial <n>`).
fn printed_serial(text: &str, apex: &str) -> Option<u32> {
    let head = format!("; zone {apex} serial ");
    let line = text.lines().find(|l| l.starts_with(&head))?;
    line[head.len()..].split_whitespace().next()?.parse().ok()
}

/// A slow disk under a running server: strace attached to it delays the return of every
/// fsync by 1.1 s. Detached (SIGTERM, strace's clean exit) when dropped; the server runs on.
struct SlowDisk(std::process::Child);

impl SlowDisk {
    fn under(pid: u32) -> SlowDisk {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new("strace")
            .args(["-f", "-o", "/dev/null", "-e", "trace=fsync,fdatasync"])
            .args(["-e", "inject=fsync,fdatasync:delay_exit=1100000", "-p"])
            .arg(pid.to_string())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("strace (Debian package strace)");
        // "Process N attached" once per thread; the first means the tracing has begun.
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        assert!(first.contains("attached"), "strace: {first}");
        std::thread::spawn(move || lines.for_each(drop));
        SlowDisk(child)
    }
}

impl Drop for SlowDisk {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// `backhaul-dns zone` run the moment an edit is served prints the serial being served, on a
/// slow disk too: the server makes its serial book readable before it serves the new zone
/// (it used to write it after, with fsyncs, and a one-shot reading the book in between
/// stamped a serial of its own).
#[test]
fn zone_prints_the_serial_being_served_right_after_an_edit() {
    let server = start(RECORDS);
    let _slow = SlowDisk::under(server.pid());
    let config = server.path("backhaul-dns.toml");
    let served = |server: &Server| match query(server.dns, "backhaul.", RecordType::SOA)
        .answers
        .first()
        .map(|r| &r.data)
    {
        Some(RData::SOA(soa)) => Some(soa.serial),
        _ => None,
    };
    for round in 0..3 {
        let before = served(&server).expect("an SOA");
        replace_by_rename(
            &server.path("records.zone"),
            &format!("{RECORDS}round TXT \"{round}\"\n"),
        );
        // Each round's fsyncs (serials, journal, snapshot) hold the next edit back.
        let after = wait_for(Duration::from_secs(30), || {
            served(&server).filter(|s| *s != before)
        })
        .expect("the edit is served");
        // Serials are Unix times: a one-shot stamping a serial of its own in the same second
        // would stamp the same one. Past that second it would not (within 1.1 s, fsync's
        // delay, so still before a book written after the swap could be read).
        wait_for(Duration::from_secs(3), || {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            (now.unwrap().as_secs() > u64::from(after)).then_some(())
        })
        .expect("the clock passes the serial");
        let (code, text, err) = run_cli(&["zone"], &config);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            printed_serial(&text, "backhaul."),
            Some(after),
            "round {round}: served {after}, printed:\n{text}"
        );
    }
}
