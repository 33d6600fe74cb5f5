//! Zone transfers and NOTIFY, including a real NSD secondary pulling the zone over loopback.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

fn members(ip: &str) -> Vec<serde_json::Value> {
    vec![
        member("a45dc9d260", "db", true, 1, &[ip]),
        member("e610b78bf1", "web.prod", true, 2, &["10.147.17.3"]),
    ]
}

/// AXFR over TCP: every record until the closing SOA, or the rcode of a refusal.
fn axfr(addr: SocketAddr, zone: &str) -> Result<Vec<String>, ResponseCode> {
    let mut q = Message::new(4242, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(
        Name::from_ascii(zone).unwrap(),
        RecordType::AXFR,
    ));
    transfer_tcp(addr, &q)
}

/// An IXFR request for `zone` from a secondary at `serial` (the SOA in the authority section,
/// RFC 1995 3).
fn ixfr_request(zone: &str, serial: u32) -> Message {
    use hickory_proto::rr::rdata::SOA;
    let apex = Name::from_ascii(zone).unwrap();
    let mut q = Message::new(4343, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(apex.clone(), RecordType::IXFR));
    let soa = SOA::new(apex.clone(), apex.clone(), serial, 3600, 600, 86400, 30);
    q.add_authority(hickory_proto::rr::Record::from_rdata(
        apex,
        0,
        hickory_proto::rr::RData::SOA(soa),
    ));
    q
}

/// The serial of the SOA in a response's answer section.
fn answer_serial(m: &Message) -> u32 {
    match &m.answers[0].data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        other => panic!("not an SOA: {other:?}"),
    }
}

/// Sends a transfer request over TCP; reads messages until the second SOA, or returns the
/// records of a single-SOA reply (an up-to-date IXFR), or the rcode of a refusal.
fn transfer_tcp(addr: SocketAddr, q: &Message) -> Result<Vec<String>, ResponseCode> {
    let mut s = send_tcp(addr, q);
    let mut records = Vec::new();
    let mut soas = 0;
    while soas < 2 {
        let m = next_message(&mut s);
        if m.metadata.response_code != ResponseCode::NoError {
            return Err(m.metadata.response_code);
        }
        assert!(m.metadata.authoritative);
        let single_soa = records.is_empty() && m.answers.len() == 1;
        for r in m.answers {
            soas += usize::from(r.record_type() == RecordType::SOA);
            records.push(r.to_string());
        }
        if single_soa && records[0].contains(" SOA ") {
            // An IXFR answered "up to date": one message with the SOA alone (RFC 1995 2).
            let mut one = [0u8; 1];
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            if !matches!(s.read(&mut one), Ok(1)) {
                return Ok(records);
            }
            panic!("more after a single-SOA reply");
        }
    }
    Ok(records)
}

/// A TCP connection that has sent `q`.
fn send_tcp(addr: SocketAddr, q: &Message) -> TcpStream {
    let bytes = q.to_vec().unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&[&(bytes.len() as u16).to_be_bytes()[..], &bytes].concat())
        .unwrap();
    s
}

/// The next length-prefixed message on `s`.
fn next_message(s: &mut TcpStream) -> Message {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).unwrap();
    Message::from_vec(&buf).unwrap()
}

fn transfer_config(fake: &FakeCentral, allow: &str, notify: &str) -> String {
    format!(
        "[transfer]\nallow = [{allow}]\nnotify = [{notify}]\n\n{}",
        central_network(fake, "1s")
    )
}

#[test]
fn axfr_equals_the_served_zone_and_is_refused_to_others() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        members("10.147.17.2"),
    );
    let server = Server::start("", &transfer_config(&fake, "\"127.0.0.1\"", ""));
    server.wait_answer("db.backhaul.", RecordType::A);
    // The server saves its serials just after its first swap; `zone` reads them.
    let serials = server.path("state/serials.json");
    wait_for(Duration::from_secs(10), || serials.exists().then_some(()))
        .expect("the serials are saved");
    let saved = std::fs::read(&serials).unwrap();
    let records = axfr(server.dns, "backhaul.").expect("transfer allowed");
    assert!(
        records.first().unwrap().contains(" SOA ") && records.last().unwrap().contains(" SOA ")
    );
    // Same records as `backhaul-dns zone` prints for that zone (same data, same serial).
    let (code, text, err) = run_cli(&["zone"], &server.path("backhaul-dns.toml"));
    assert_eq!(code, 0, "{err}");
    let printed: BTreeSet<String> = text
        .split("\n\n")
        .find(|block| block.contains("$ORIGIN backhaul.\n"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(';') && !l.starts_with('$'))
        .map(str::to_owned)
        .collect();
    let transferred: BTreeSet<String> = records.into_iter().collect();
    assert_eq!(transferred, printed);
    // `zone` wrote nothing into the running server's state_dir.
    assert_eq!(
        std::fs::read(&serials).unwrap(),
        saved,
        "zone rewrote serials.json"
    );
    assert!(transferred.contains("db.backhaul. 60 IN A 10.147.17.2"));
    // A reverse zone transfers too.
    assert!(axfr(server.dns, "17.147.10.in-addr.arpa.")
        .unwrap()
        .iter()
        .any(|r| r.contains("PTR db.backhaul.")));
    // Not an apex of ours: NOTAUTH (RFC 5936 2.2.1), inside our zones or outside them.
    assert_eq!(axfr(server.dns, "db.backhaul."), Err(ResponseCode::NotAuth));
    assert_eq!(axfr(server.dns, "example.com."), Err(ResponseCode::NotAuth));
    // IXFR: a secondary that is current gets the SOA alone; an older one the whole zone.
    let soa = query(server.dns, "backhaul.", RecordType::SOA);
    let current = answer_serial(&soa);
    let up_to_date = transfer_tcp(server.dns, &ixfr_request("backhaul.", current)).unwrap();
    assert_eq!(up_to_date.len(), 1, "{up_to_date:?}");
    let behind = transfer_tcp(server.dns, &ixfr_request("backhaul.", current - 1)).unwrap();
    assert_eq!(behind.into_iter().collect::<BTreeSet<_>>(), transferred);
    // IXFR over UDP: the SOA alone (ask over TCP for the rest).
    let m = exchange_udp(server.dns, &ixfr_request("backhaul.", current - 1));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!((m.answers.len(), answer_serial(&m)), (1, current));
    // Over UDP: refused.
    let mut q = Message::new(7, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(
        Name::from_ascii("backhaul.").unwrap(),
        RecordType::AXFR,
    ));
    assert_eq!(
        exchange_udp(server.dns, &q).metadata.response_code,
        ResponseCode::Refused
    );

    // A server that allows only another address refuses us.
    let other = Server::start("", &transfer_config(&fake, "\"127.0.0.2\"", ""));
    other.wait_answer("db.backhaul.", RecordType::A);
    assert_eq!(axfr(other.dns, "backhaul."), Err(ResponseCode::Refused));
}

#[test]
fn notify_is_sent_when_the_serial_changes() {
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        members("10.147.17.2"),
    );
    let server = Server::start(
        "",
        &transfer_config(&fake, "", &format!("\"127.0.0.1:{port}\"")),
    );
    server.wait_answer("db.backhaul.", RecordType::A);
    // Receives NOTIFYs, acknowledges them, returns the zone names.
    let receive = |expect: usize| -> Vec<String> {
        let mut zones = Vec::new();
        while zones.len() < expect {
            let mut buf = [0u8; 512];
            let (n, from) = listener.recv_from(&mut buf).expect("NOTIFY arrives");
            let m = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!(m.metadata.op_code, OpCode::Notify);
            assert!(m.metadata.authoritative);
            assert_eq!(m.queries[0].query_type(), RecordType::SOA);
            let mut ack = m.clone();
            ack.metadata.message_type = MessageType::Response;
            listener.send_to(&ack.to_vec().unwrap(), from).unwrap();
            let zone = m.queries[0].name().to_string();
            if !zones.contains(&zone) {
                zones.push(zone);
            }
        }
        zones
    };
    let first = receive(2);
    assert!(
        first.contains(&"backhaul.".to_owned())
            && first.contains(&"17.147.10.in-addr.arpa.".to_owned())
    );
    // db moves to another address: both the forward and the reverse zone change.
    fake.set_members(members("10.147.17.9"));
    let again = receive(2);
    assert!(again.contains(&"backhaul.".to_owned()), "{again:?}");
}

struct Nsd(Child);

impl Drop for Nsd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_real_nsd_secondary_follows_the_zone() {
    assert!(
        std::path::Path::new("/usr/sbin/nsd").exists(),
        "this test needs NSD: apt-get install nsd (.ci/run installs it)"
    );
    let nsd_port = free_port();
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        members("10.147.17.2"),
    );
    let server = Server::start(
        "",
        &transfer_config(&fake, "\"127.0.0.1\"", &format!("\"127.0.0.1:{nsd_port}\"")),
    );
    server.wait_answer("db.backhaul.", RecordType::A);

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let conf = format!(
        "server:\n\tip-address: 127.0.0.1@{nsd_port}\n\tserver-count: 1\n\tusername: \"\"\n\tchroot: \"\"\n\
         \tzonesdir: \"{d}\"\n\tdatabase: \"\"\n\tzonelistfile: \"{d}/zone.list\"\n\txfrdfile: \"{d}/xfrd.state\"\n\
         \txfrdir: \"{d}\"\n\tpidfile: \"{d}/nsd.pid\"\n\tlogfile: \"{d}/nsd.log\"\n\tverbosity: 2\n\trrl-ratelimit: 0\n\
         remote-control:\n\tcontrol-enable: no\n\
         zone:\n\tname: \"backhaul\"\n\tzonefile: \"backhaul.zone\"\n\trequest-xfr: AXFR 127.0.0.1@{} NOKEY\n\
         \tallow-notify: 127.0.0.1 NOKEY\n",
        server.dns.port()
    );
    std::fs::write(dir.path().join("nsd.conf"), conf).unwrap();
    let _nsd = Nsd(Command::new("/usr/sbin/nsd")
        .args(["-d", "-c"])
        .arg(dir.path().join("nsd.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let nsd: SocketAddr = format!("127.0.0.1:{nsd_port}").parse().unwrap();
    let nsd_log = || std::fs::read_to_string(dir.path().join("nsd.log")).unwrap_or_default();
    let served_by_nsd = |ip: &str| {
        wait_for(Duration::from_secs(20), || {
            let q = request("db.backhaul.", RecordType::A).to_vec().unwrap();
            udp_raw(nsd, &q)
                .map(|b| Message::from_vec(&b).unwrap())
                .filter(|m| is_a(m, ip) && m.metadata.authoritative)
        })
    };
    served_by_nsd("10.147.17.2")
        .unwrap_or_else(|| panic!("NSD did not load the zone; nsd.log:\n{}", nsd_log()));
    // A change reaches the secondary through NOTIFY and a new transfer, well before SOA refresh.
    fake.set_members(members("10.147.17.9"));
    served_by_nsd("10.147.17.9")
        .unwrap_or_else(|| panic!("NSD did not follow; nsd.log:\n{}", nsd_log()));
}

/// An IXFR over TCP: every record of every message until the `soas_expected`th SOA: 4 for
/// the changes (new SOA, old SOA, deleted records, new SOA, added records, new SOA), 2 for
/// the whole zone.
fn ixfr_tcp(addr: SocketAddr, q: &Message, soas_expected: usize) -> Vec<String> {
    let mut s = send_tcp(addr, q);
    let mut records = Vec::new();
    let mut soas = 0;
    while soas < soas_expected {
        let m = next_message(&mut s);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        for r in m.answers {
            soas += usize::from(r.record_type() == RecordType::SOA);
            records.push(r.to_string());
        }
    }
    records
}

#[test]
fn ixfr_answers_with_what_changed_over_tcp_and_over_udp_when_it_fits() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        members("10.147.17.2"),
    );
    let server = Server::start("", &transfer_config(&fake, "\"127.0.0.1\"", ""));
    server.wait_answer("db.backhaul.", RecordType::A);
    let s1 = answer_serial(&query(server.dns, "backhaul.", RecordType::SOA));
    // db moves: one member's A record in the forward zone.
    fake.set_members(members("10.147.17.9"));
    wait_for(Duration::from_secs(15), || {
        is_a(
            &query(server.dns, "db.backhaul.", RecordType::A),
            "10.147.17.9",
        )
        .then_some(())
    })
    .expect("db moves");
    let s2 = answer_serial(&query(server.dns, "backhaul.", RecordType::SOA));
    let soa = |serial: u32| format!("backhaul. 60 IN SOA backhaul. hostmaster.backhaul. {serial} ");
    let records = ixfr_tcp(server.dns, &ixfr_request("backhaul.", s1), 4);
    let expect_soas = [s2, s1, s2, s2];
    let soa_at: Vec<usize> = (records.iter().enumerate())
        .filter(|(_, r)| r.contains(" SOA "))
        .map(|(i, _)| i)
        .collect();
    for (at, serial) in soa_at.iter().zip(expect_soas) {
        assert!(records[*at].starts_with(&soa(serial)), "{records:#?}");
    }
    let deleted = &records[soa_at[1] + 1..soa_at[2]];
    let added = &records[soa_at[2] + 1..soa_at[3]];
    let moved = |ip: &str| {
        vec![
            format!("db.backhaul. 60 IN A {ip}"),
            format!("zt-a45dc9d260.backhaul. 60 IN A {ip}"),
        ]
    };
    assert_eq!(deleted, moved("10.147.17.2"), "{records:#?}");
    assert_eq!(added, moved("10.147.17.9"), "{records:#?}");
    // The same over UDP: it fits in one message.
    let m = exchange_udp(server.dns, &ixfr_request("backhaul.", s1));
    let over_udp: Vec<String> = m.answers.iter().map(|r| r.to_string()).collect();
    assert_eq!(over_udp, records);

    // Two hundred members join: over UDP the SOA alone (ask over TCP), over TCP the changes.
    let mut many = members("10.147.17.9");
    for i in 0..200u32 {
        many.push(member(
            &format!("{:010x}", 0xa000000000u64 + u64::from(i)),
            &format!("new{i}"),
            true,
            10,
            &[&format!("10.147.18.{}", i + 1)],
        ));
    }
    fake.set_members(many);
    server.wait_answer("new199.backhaul.", RecordType::A);
    let s3 = answer_serial(&query(server.dns, "backhaul.", RecordType::SOA));
    let m = exchange_udp(server.dns, &ixfr_request("backhaul.", s2));
    assert_eq!((m.answers.len(), answer_serial(&m)), (1, s3));
    let records = ixfr_tcp(server.dns, &ixfr_request("backhaul.", s2), 4);
    let added_a = records.iter().filter(|r| r.starts_with("new")).count();
    assert_eq!(added_a, 200, "{records:#?}");
    // From the first serial: both changes condensed into one.
    let records = ixfr_tcp(server.dns, &ixfr_request("backhaul.", s1), 4);
    assert_eq!(records.iter().filter(|r| r.contains(" SOA ")).count(), 4);
    assert!(records.contains(&"db.backhaul. 60 IN A 10.147.17.2".to_owned()));
    // A serial the journal never had: the whole zone.
    let whole = ixfr_tcp(
        server.dns,
        &ixfr_request("backhaul.", s1.wrapping_sub(1000)),
        2,
    );
    let axfr_records = axfr(server.dns, "backhaul.").unwrap();
    assert_eq!(whole, axfr_records);
}

/// A journal edited in state_dir (an address changed, its checksum recomputed) while the
/// server was down: read back, found not to lead to the zone as served, and started over;
/// IXFR hands out the whole zone, never the edited address.
#[test]
fn an_edited_journal_is_never_served() {
    use sha2::Digest;
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        members("10.147.17.2"),
    );
    let tables = transfer_config(&fake, "\"127.0.0.1\"", "");
    let server = Server::start("", &tables);
    server.wait_answer("db.backhaul.", RecordType::A);
    let s1 = answer_serial(&query(server.dns, "backhaul.", RecordType::SOA));
    fake.set_members(members("10.147.17.9"));
    wait_for(Duration::from_secs(15), || {
        is_a(
            &query(server.dns, "db.backhaul.", RecordType::A),
            "10.147.17.9",
        )
        .then_some(())
    })
    .expect("db moves");
    let s2 = answer_serial(&query(server.dns, "backhaul.", RecordType::SOA));
    let journal = server.path("state/journal/backhaul.ixfr");
    let moved = [10u8, 147, 17, 9];
    wait_for(Duration::from_secs(10), || {
        let bytes = std::fs::read(&journal).ok()?;
        bytes.windows(4).any(|w| w == moved).then_some(())
    })
    .unwrap_or_else(|| panic!("no journal saved at {}", journal.display()));
    // Stopped as systemd stops it: the last snapshot and serials are saved on the way out.
    let mut server = server;
    // SAFETY: a signal to the child this test started.
    unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
    assert_eq!(server.exit_code(Duration::from_secs(10)), Some(0));
    let dir = server.stop();
    // Rewrite the change: db went to 6.6.6.6; a fresh SHA-256 over the body.
    let bytes = std::fs::read(&journal).unwrap();
    let (body, _) = bytes.split_at(bytes.len() - 32);
    let mut body = body.to_vec();
    for i in 0..body.len() - 3 {
        if body[i..i + 4] == moved {
            body[i..i + 4].copy_from_slice(&[6, 6, 6, 6]);
        }
    }
    let sum = sha2::Sha256::digest(&body);
    body.extend_from_slice(&sum);
    std::fs::write(&journal, body).unwrap();

    let server = Server::start_in(dir, "", &tables);
    server.wait_answer("db.backhaul.", RecordType::A);
    assert_eq!(
        answer_serial(&query(server.dns, "backhaul.", RecordType::SOA)),
        s2,
        "{}",
        server.log_text()
    );
    server.expect_log(Duration::from_secs(10), "the edited journal refused", |l| {
        l["message"]
            .as_str()
            .unwrap_or("")
            .contains("does not lead to the zone")
    });
    let records = ixfr_tcp(server.dns, &ixfr_request("backhaul.", s1), 2);
    assert!(
        !records.iter().any(|r| r.contains("6.6.6.6")),
        "{records:#?}"
    );
    assert_eq!(
        records,
        axfr(server.dns, "backhaul.").unwrap(),
        "the whole zone"
    );
}
