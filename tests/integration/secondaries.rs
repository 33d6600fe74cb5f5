//! Real secondaries, started the way an operator starts them: Debian's NSD and Knot follow
//! the zone with TSIG-signed transfers, take one-member changes as IXFR (NOTIFY, then IXFR,
//! seen by the primary on the wire and in Knot's log), catch up across a restart of the
//! primary, and get nothing with a wrong key. Plus TSIG errors by hand: BADKEY, BADSIG,
//! BADTIME, an unsigned transfer where the key is required.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::Value;

const SECRET: &str = "c2VjcmV0LXNoYXJlZC1ieS1wcmltYXJ5LWFuZC1zZWNvbmRhcmllcw==";
const WRONG: &str = "bm90LXRoZS1zZWNyZXQtdGhlLXByaW1hcnktaGFzLCBzb3JyeQ==";
const KEY: &str = "hmac-sha256:xfr:c2VjcmV0LXNoYXJlZC1ieS1wcmltYXJ5LWFuZC1zZWNvbmRhcmllcw==";

fn members(extra: &[(&str, &str, &str)]) -> Vec<Value> {
    let mut m = vec![
        member("a45dc9d260", "db", true, 1, &["10.147.17.2"]),
        member("e610b78bf1", "web", true, 2, &["10.147.17.3"]),
    ];
    for (node, name, ip) in extra {
        m.push(member(node, name, true, 3, &[ip]));
    }
    m
}

/// A secondary process, killed when dropped.
pub(crate) struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn daemon(cmd: &mut Command) -> Daemon {
    Daemon(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the secondary"),
    )
}

/// NSD as a secondary of `primary` on `port`, transferring from `source`, with `secret` for
/// the key `xfr` (request-xfr without AXFR: IXFR first, as NSD does by default).
pub(crate) fn nsd(
    dir: &Path,
    port: u16,
    source: &str,
    primary: SocketAddr,
    secret: &str,
) -> Daemon {
    assert!(
        Path::new("/usr/sbin/nsd").exists(),
        "this test needs NSD: apt-get install nsd (.ci/run installs it)"
    );
    let d = dir.display();
    let conf = format!(
        "server:\n\tip-address: 127.0.0.1@{port}\n\tserver-count: 1\n\tusername: \"\"\n\tchroot: \"\"\n\
         \tzonesdir: \"{d}\"\n\tdatabase: \"\"\n\tzonelistfile: \"{d}/zone.list\"\n\txfrdfile: \"{d}/xfrd.state\"\n\
         \txfrdir: \"{d}\"\n\tpidfile: \"{d}/nsd.pid\"\n\tlogfile: \"{d}/nsd.log\"\n\tverbosity: 2\n\
         \trrl-ratelimit: 0\n\
         remote-control:\n\tcontrol-enable: no\n\
         key:\n\tname: \"xfr\"\n\talgorithm: hmac-sha256\n\tsecret: \"{secret}\"\n\
         zone:\n\tname: \"backhaul\"\n\tzonefile: \"backhaul.zone\"\n\
         \trequest-xfr: {} xfr\n\tallow-notify: 127.0.0.1 xfr\n\toutgoing-interface: {source}\n",
        at(primary)
    );
    std::fs::write(dir.join("nsd.conf"), conf).unwrap();
    daemon(
        Command::new("/usr/sbin/nsd")
            .args(["-d", "-c"])
            .arg(dir.join("nsd.conf")),
    )
}

/// Knot as a secondary of `primary` on `port`, transferring from `source`, carrying the zone
/// `backhaul`.
fn knot(dir: &Path, port: u16, source: &str, primary: SocketAddr, secret: &str) -> Daemon {
    let zones = "zone:\n  - domain: backhaul\n    master: primary\n    acl: notify_from_primary\n";
    knot_with(dir, port, source, primary, secret, zones)
}

/// Knot as a secondary of `primary` (the remote `primary`, key `xfr`, an ACL
/// `notify_from_primary`), with `zones`: the config's templates and zones.
pub(crate) fn knot_with(
    dir: &Path,
    port: u16,
    source: &str,
    primary: SocketAddr,
    secret: &str,
    zones: &str,
) -> Daemon {
    assert!(
        Path::new("/usr/sbin/knotd").exists(),
        "this test needs Knot: apt-get install knot (.ci/run installs it)"
    );
    let d = dir.display();
    // Knot does not create its storage directories itself.
    std::fs::create_dir_all(dir.join("db")).unwrap();
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    let conf = format!(
        "server:\n  listen: 127.0.0.1@{port}\n  rundir: {d}\n  pidfile: {d}/knot.pid\n\
         log:\n  - target: {d}/knot.log\n    any: info\n\
         database:\n  storage: {d}/db\n\
         key:\n  - id: xfr\n    algorithm: hmac-sha256\n    secret: {secret}\n\
         remote:\n  - id: primary\n    address: {}\n    via: {source}\n    key: xfr\n\
         acl:\n  - id: notify_from_primary\n    address: 127.0.0.1\n    key: xfr\n    action: notify\n\
         template:\n  - id: default\n    storage: {d}/zones\n{zones}",
        at(primary)
    );
    std::fs::write(dir.join("knot.conf"), conf).unwrap();
    daemon(
        Command::new("/usr/sbin/knotd")
            .arg("-c")
            .arg(dir.join("knot.conf")),
    )
}

/// `127.0.0.1@53`, as NSD and Knot write an address and port.
fn at(addr: SocketAddr) -> String {
    format!("{}@{}", addr.ip(), addr.port())
}

fn log_of(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default()
}

/// The A records a secondary answers for `name` with AA set (empty when it has no zone).
pub(crate) fn secondary_a(port: u16, name: &str) -> Vec<String> {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let q = request(name, RecordType::A).to_vec().unwrap();
    udp_raw(addr, &q)
        .and_then(|b| Message::from_vec(&b).ok())
        .filter(|m| m.metadata.authoritative && m.metadata.response_code == ResponseCode::NoError)
        .map(|m| rdatas(&m))
        .unwrap_or_default()
}

fn primary_config(port: u16, fake: &FakeCentral, allow: &str, notify: &str) -> String {
    format!(
        "state_dir = \"state\"\n[listen]\naddresses = [\"127.0.0.1\"]\nport = {port}\n\n\
         [forward]\nupstreams = []\n\n\
         [transfer]\nallow = [{allow}]\nnotify = [{notify}]\n\n\
         [[transfer.key]]\nname = \"xfr\"\nalgorithm = \"hmac-sha256\"\nsecret_file = \"xfr.key\"\n\n{}",
        central_network(fake, "1s")
    )
}

/// Starts the primary in `dir` (with its key file) and waits until it answers `db`.
fn start_primary(dir: tempfile::TempDir, config: &str) -> Server {
    std::fs::write(dir.path().join("xfr.key"), format!("{SECRET}\n")).unwrap();
    let server = Server::launch(dir, config, &[]).wait_listening();
    server.wait_answer("db.backhaul.", RecordType::A);
    server
}

fn serial(server: &Server) -> u64 {
    let m = query(server.dns, "backhaul.", RecordType::SOA);
    match &m.answers[0].data {
        hickory_proto::rr::RData::SOA(soa) => u64::from(soa.serial),
        other => panic!("not an SOA: {other:?}"),
    }
}

/// Whether the primary logged a transfer of `kind` to `client` ending at `serial`.
pub(crate) fn transferred(server: &Server, client: &str, kind: &str, serial: u64) -> bool {
    server.count_logs(|l| {
        l["message"] == "zone transfer"
            && l["client"] == client
            && l["kind"] == kind
            && l["serial"].as_u64() == Some(serial)
            && l["key"] == "xfr."
    }) > 0
}

#[test]
fn nsd_and_knot_follow_with_tsig_and_take_changes_as_ixfr_across_a_restart() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        members(&[]),
    );
    let (port, nsd_port, knot_port) = (free_port(), free_port(), free_port());
    let primary_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // NSD transfers from 127.0.0.2 and Knot from 127.0.0.3, so the primary's log tells them
    // apart; NOTIFYs go to both, signed with the key named in the entry.
    let config = primary_config(
        port,
        &fake,
        "{ address = \"127.0.0.2\", key = \"xfr\" }, { address = \"127.0.0.3\", key = \"xfr\" }",
        &format!(
            "{{ address = \"127.0.0.1:{nsd_port}\", key = \"xfr\" }}, \
             {{ address = \"127.0.0.1:{knot_port}\", key = \"xfr\" }}"
        ),
    );
    let server = start_primary(tempfile::tempdir().unwrap(), &config);
    let first_serial = serial(&server);

    let nsd_dir = tempfile::tempdir().unwrap();
    let knot_dir = tempfile::tempdir().unwrap();
    let _nsd = nsd(nsd_dir.path(), nsd_port, "127.0.0.2", primary_addr, SECRET);
    let _knot = knot(
        knot_dir.path(),
        knot_port,
        "127.0.0.3",
        primary_addr,
        SECRET,
    );
    let logs = || {
        format!(
            "nsd.log:\n{}\nknot.log:\n{}",
            log_of(nsd_dir.path(), "nsd.log"),
            log_of(knot_dir.path(), "knot.log")
        )
    };
    for (who, p) in [("NSD", nsd_port), ("Knot", knot_port)] {
        wait_for(Duration::from_secs(30), || {
            (secondary_a(p, "db.backhaul.") == ["10.147.17.2"]).then_some(())
        })
        .unwrap_or_else(|| panic!("{who} did not load the zone; {}", logs()));
    }
    assert!(log_of(nsd_dir.path(), "nsd.log").contains("TSIG verified with key xfr"));

    // One member joins: the secondaries answer its name within 5 s, through NOTIFY and IXFR.
    // Both secondaries answer `name` with `ip` within 5 s of `changed` (the primary polls
    // every second, then NOTIFY, then the transfer).
    let follow = |server: &Server, name: &str, ip: &str, changed: Instant| {
        for (who, p) in [("NSD", nsd_port), ("Knot", knot_port)] {
            wait_for(
                Duration::from_secs(5).saturating_sub(changed.elapsed()),
                || (secondary_a(p, name) == [ip]).then_some(()),
            )
            .unwrap_or_else(|| {
                panic!(
                    "{who} did not answer {name} within 5 s of the change; {}\nprimary:\n{}",
                    logs(),
                    server.log_text()
                )
            });
            eprintln!(
                "{who} answered {name} {:?} after the change",
                changed.elapsed()
            );
        }
    };
    fake.set_members(members(&[("c0ffee0001", "cache", "10.147.17.4")]));
    follow(&server, "cache.backhaul.", "10.147.17.4", Instant::now());
    let second = serial(&server);
    for client in ["127.0.0.2", "127.0.0.3"] {
        let seen = wait_for(Duration::from_secs(5), || {
            transferred(&server, client, "ixfr", second).then_some(())
        });
        assert!(
            seen.is_some(),
            "no IXFR to {client}; primary:\n{}",
            server.log_text()
        );
    }
    let knot_log = log_of(knot_dir.path(), "knot.log");
    assert!(
        knot_log.contains("IXFR, incoming, remote 127.0.0.1") && knot_log.contains("finished"),
        "{knot_log}"
    );

    // The primary restarts (SIGTERM, as systemd stops it), and a member joins while it is
    // down: the secondaries catch up by IXFR again, the chain of serials unbroken.
    let mut server = server;
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
    assert_eq!(server.exit_code(Duration::from_secs(15)), Some(0));
    let dir = server.stop();
    fake.set_members(members(&[
        ("c0ffee0001", "cache", "10.147.17.4"),
        ("c0ffee0002", "logs", "10.147.17.5"),
    ]));
    // The change is older than the primary: 5 s from when it is back.
    let server = Server::launch(dir, &config, &[]).wait_listening();
    follow(&server, "logs.backhaul.", "10.147.17.5", Instant::now());
    let third = serial(&server);
    for client in ["127.0.0.2", "127.0.0.3"] {
        let seen = wait_for(Duration::from_secs(5), || {
            transferred(&server, client, "ixfr", third).then_some(())
        });
        assert!(
            seen.is_some(),
            "no IXFR to {client} after the restart; primary:\n{}",
            server.log_text()
        );
    }
    // The journal from before the restart was kept: a secondary still at the first serial
    // gets the two changes condensed, not the whole zone.
    let out = kdig(&[
        "-b",
        "127.0.0.2",
        "-y",
        KEY,
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "+tcp",
        "backhaul.",
        &format!("IXFR={first_serial}"),
    ]);
    assert!(!out.contains("WARNING"), "{out}");
    let records: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with(';') && !l.is_empty())
        .collect();
    let soas = records.iter().filter(|l| l.contains("\tSOA\t")).count();
    assert_eq!(soas, 4, "condensed IXFR: new, old, new, new SOA\n{out}");
    assert!(
        records.iter().any(|l| l.starts_with("cache.backhaul.")),
        "{out}"
    );
    assert!(
        records.iter().any(|l| l.starts_with("logs.backhaul.")),
        "{out}"
    );
    assert!(
        !records.iter().any(|l| l.starts_with("db.backhaul.")),
        "the whole zone: {out}"
    );
}

pub(crate) fn kdig(args: &[&str]) -> String {
    let out = Command::new("kdig")
        .args(args)
        .output()
        .expect("kdig runs (apt-get install knot-dnsutils; .ci/run installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn secondaries_with_a_wrong_key_get_nothing() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        members(&[]),
    );
    let (port, nsd_port, knot_port) = (free_port(), free_port(), free_port());
    let primary_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let config = primary_config(
        port,
        &fake,
        "{ address = \"127.0.0.4\", key = \"xfr\" }, { address = \"127.0.0.5\", key = \"xfr\" }",
        "",
    );
    let server = start_primary(tempfile::tempdir().unwrap(), &config);
    let nsd_dir = tempfile::tempdir().unwrap();
    let knot_dir = tempfile::tempdir().unwrap();
    let _nsd = nsd(nsd_dir.path(), nsd_port, "127.0.0.4", primary_addr, WRONG);
    let _knot = knot(knot_dir.path(), knot_port, "127.0.0.5", primary_addr, WRONG);
    // Both are refused with BADSIG, logged once per source by the primary...
    for client in ["127.0.0.4", "127.0.0.5"] {
        server.expect_log(Duration::from_secs(30), "BADSIG for a wrong key", |l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("refused a signed request"))
                && l["client"] == client
                && l["error"] == "BADSIG"
        });
    }
    // ...and say so in their own logs.
    let nsd_log = wait_for(Duration::from_secs(10), || {
        let log = log_of(nsd_dir.path(), "nsd.log");
        log.contains("Bad Signature").then_some(log)
    });
    let nsd_log = nsd_log.unwrap_or_else(|| log_of(nsd_dir.path(), "nsd.log"));
    assert!(
        nsd_log.contains("NOT AUTHORITATIVE") && nsd_log.contains("Bad Signature"),
        "{nsd_log}"
    );
    let knot_log = log_of(knot_dir.path(), "knot.log");
    assert!(knot_log.contains("failed to verify TSIG"), "{knot_log}");
    // No transfer happened, and neither serves the zone.
    assert_eq!(server.count_logs(|l| l["message"] == "zone transfer"), 0);
    assert!(secondary_a(nsd_port, "db.backhaul.").is_empty());
    assert!(secondary_a(knot_port, "db.backhaul.").is_empty());
    let failures = server.count_logs(|l| l["error"] == "BADSIG");
    assert_eq!(failures, 2, "one line per source, not one per retry");
}

/// A signed SOA query written from RFC 8945 4.3 by hand (not by the server's code): the
/// request, then its TSIG record with the MAC over the request and the TSIG variables.
pub(crate) fn signed_soa_query(id: u16, key: &str, secret: &[u8], time: u64) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(b"\x08backhaul\x00\x00\x06\x00\x01");
    let key_wire = [&[key.len() as u8][..], key.as_bytes(), &[0]].concat();
    let alg = b"\x0bhmac-sha256\x00";
    let time6 = &time.to_be_bytes()[2..];
    let mut vars = key_wire.clone();
    vars.extend_from_slice(&[0, 255, 0, 0, 0, 0]); // class ANY, TTL 0
    vars.extend_from_slice(alg);
    vars.extend_from_slice(time6);
    vars.extend_from_slice(&300u16.to_be_bytes()); // fudge
    vars.extend_from_slice(&[0, 0, 0, 0]); // error, other length
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).unwrap();
    mac.update(&m);
    mac.update(&vars);
    let mac = mac.finalize().into_bytes();
    let mut rdata = alg.to_vec();
    rdata.extend_from_slice(time6);
    rdata.extend_from_slice(&300u16.to_be_bytes());
    rdata.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    rdata.extend_from_slice(&mac);
    rdata.extend_from_slice(&id.to_be_bytes());
    rdata.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&key_wire);
    m.extend_from_slice(&[0, 250, 0, 255, 0, 0, 0, 0]);
    m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    m.extend_from_slice(&rdata);
    m[11] = 1; // ARCOUNT
    m
}

/// The TSIG record of a reply (the last additional record).
fn tsig_of(m: &Message) -> Option<hickory_proto::rr::rdata::TSIG> {
    let last = m.additionals.last().map(|r| &r.data);
    let signature = m.signature().map(|s| s.data.clone());
    match last {
        Some(hickory_proto::rr::RData::TSIG(t)) => Some(t.clone()),
        _ => signature,
    }
}

#[test]
fn tsig_errors_follow_rfc_8945() {
    use base64::Engine as _;
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        members(&[]),
    );
    let port = free_port();
    let config = primary_config(
        port,
        &fake,
        "{ address = \"127.0.0.1\", key = \"xfr\" }",
        "",
    ) + "\n[http]\nlisten = \"127.0.0.1:0\"\n";
    let server = start_primary(tempfile::tempdir().unwrap(), &config);
    let secret = base64::engine::general_purpose::STANDARD
        .decode(SECRET)
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ask = |bytes: &[u8]| Message::from_vec(&udp_raw(server.dns, bytes).unwrap()).unwrap();

    // Signed now with the right key: answered, and signed back.
    let m = ask(&signed_soa_query(1, "xfr", &secret, now));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    let tsig = tsig_of(&m).unwrap_or_else(|| panic!("the answer is signed: {m:?}"));
    assert_eq!((tsig.mac.len(), tsig.error), (32, None));

    // Signed ten minutes ago: NOTAUTH, BADTIME, signed, with our time in Other Data.
    let m = ask(&signed_soa_query(2, "xfr", &secret, now - 600));
    assert_eq!(m.metadata.response_code, ResponseCode::NotAuth);
    let tsig = tsig_of(&m).expect("BADTIME is signed");
    assert_eq!(u16::from(tsig.error.unwrap()), 18);
    assert_eq!(tsig.mac.len(), 32);
    assert_eq!(tsig.other.len(), 6);
    assert_eq!(tsig.time, now - 600, "the request's time signed");

    // The wrong secret: BADSIG, unsigned. An unknown key: BADKEY, unsigned.
    let m = ask(&signed_soa_query(3, "xfr", b"not the secret", now));
    assert_eq!(m.metadata.response_code, ResponseCode::NotAuth);
    let tsig = tsig_of(&m).unwrap();
    assert_eq!((u16::from(tsig.error.unwrap()), tsig.mac.len()), (16, 0));
    let m = ask(&signed_soa_query(4, "other", &secret, now));
    assert_eq!(m.metadata.response_code, ResponseCode::NotAuth);
    let tsig = tsig_of(&m).unwrap();
    assert_eq!((u16::from(tsig.error.unwrap()), tsig.mac.len()), (17, 0));

    // kdig (Knot's client) checks our signatures on a query and on a whole AXFR.
    let p = port.to_string();
    let out = kdig(&["-y", KEY, "@127.0.0.1", "-p", &p, "backhaul.", "SOA"]);
    assert!(out.contains("NOERROR") && !out.contains("WARNING"), "{out}");
    let out = kdig(&["-y", KEY, "@127.0.0.1", "-p", &p, "backhaul.", "AXFR"]);
    assert!(
        out.contains("db.backhaul.") && !out.contains("WARNING") && !out.contains(";; ERROR"),
        "{out}"
    );
    // The allow entry names the key: an unsigned transfer is refused.
    let out = kdig(&["@127.0.0.1", "-p", &p, "backhaul.", "AXFR"]);
    assert!(out.contains("REFUSED"), "{out}");
    assert!(!out.contains("db.backhaul."), "{out}");
    server.expect_log(Duration::from_secs(5), "unsigned transfer logged", |l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("refused an unsigned zone transfer"))
            && l["client"] == "127.0.0.1"
    });
    // Secrets are never logged, nor in the metrics, which count the failures and transfers.
    assert!(!server.log_text().contains(SECRET));
    let (_, metrics) = get(http_addr(&server), "/metrics");
    assert!(!metrics.contains(SECRET));
    let count = |series: &str| metric(&metrics, series).unwrap_or(0.0);
    assert_eq!(
        count("backhaul_dns_tsig_failures_total{error=\"BADSIG\"}"),
        1.0
    );
    assert_eq!(
        count("backhaul_dns_tsig_failures_total{error=\"BADKEY\"}"),
        1.0
    );
    assert_eq!(
        count("backhaul_dns_tsig_failures_total{error=\"BADTIME\"}"),
        1.0
    );
    assert_eq!(
        count("backhaul_dns_transfers_total{kind=\"axfr\"}"),
        1.0,
        "{metrics}"
    );
    assert!(count("backhaul_dns_transfer_bytes_total{kind=\"axfr\"}") > 100.0);
    assert!(
        metrics.contains("backhaul_dns_ixfr_journal_changes{zone=\"backhaul.\"} 0"),
        "{metrics}"
    );
}

/// A signed request is checked whatever the allow entry says (RFC 8945 5.2): from an address
/// whose entry names no key, a transfer signed with a wrong secret gets BADSIG and one with
/// an unknown key BADKEY, never the zone; unsigned, it gets the zone as the entry allows.
#[test]
fn a_bad_signature_is_refused_even_where_no_key_is_required() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        members(&[]),
    );
    let port = free_port();
    let config = primary_config(port, &fake, "\"127.0.0.1\"", "");
    let server = start_primary(tempfile::tempdir().unwrap(), &config);
    let p = port.to_string();
    let wrong = format!("hmac-sha256:xfr:{WRONG}");
    let out = kdig(&["-y", &wrong, "@127.0.0.1", "-p", &p, "backhaul.", "AXFR"]);
    assert!(out.contains("BADSIG") || out.contains("NOTAUTH"), "{out}");
    assert!(!out.contains("db.backhaul."), "{out}");
    let unknown = format!("hmac-sha256:other:{SECRET}");
    let out = kdig(&["-y", &unknown, "@127.0.0.1", "-p", &p, "backhaul.", "AXFR"]);
    assert!(out.contains("BADKEY") || out.contains("NOTAUTH"), "{out}");
    assert!(!out.contains("db.backhaul."), "{out}");
    // Signed right, or not at all: the zone.
    let out = kdig(&["-y", KEY, "@127.0.0.1", "-p", &p, "backhaul.", "AXFR"]);
    assert!(
        out.contains("db.backhaul.") && !out.contains("WARNING"),
        "{out}"
    );
    let out = kdig(&["@127.0.0.1", "-p", &p, "backhaul.", "AXFR"]);
    assert!(out.contains("db.backhaul."), "{out}");
    let _ = server;
}
