//! What resolvers and the RFCs expect of an authoritative answer, over UDP and TCP.

use std::net::SocketAddr;

use crate::common::*;
use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

/// 60 IPv6 addresses: an AAAA answer of about 1.7 kB, more than fits in 1232 bytes.
fn many_v6(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("fd00:1234::{i:x}")).collect()
}

fn start() -> (FakeCentral, Server) {
    let big = many_v6(60);
    let mid = many_v6(30);
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![
            member("a45dc9d260", "db", true, 1, &["10.147.17.2"]),
            member("e610b78bf1", "web.prod", true, 2, &["10.147.17.3"]),
            member(
                "efcc1b0947",
                "big",
                true,
                3,
                &big.iter().map(String::as_str).collect::<Vec<_>>(),
            ),
            member(
                "a02505e545",
                "mid",
                true,
                4,
                &mid.iter().map(String::as_str).collect::<Vec<_>>(),
            ),
        ],
    );
    // Member TTL longer than MINIMUM: negative answers must use MINIMUM.
    let server = Server::start(
        "ttl = \"300s\"\nnegative_ttl = \"30s\"",
        &central_network(&fake, "1s"),
    );
    server.wait_answer("db.backhaul.", RecordType::A);
    (fake, server)
}

type Exchange = fn(SocketAddr, &Message) -> Message;
const BOTH: [(&str, Exchange); 2] = [("udp", exchange_udp), ("tcp", exchange_tcp)];

#[test]
fn positive_negative_nodata_and_case() {
    let (_fake, server) = start();
    for (proto, ex) in BOTH {
        // Positive: AA, no RA (not a recursive answer), RD echoed.
        let m = ex(server.dns, &request("db.backhaul.", RecordType::A));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{proto}");
        assert!(
            m.metadata.authoritative
                && !m.metadata.recursion_available
                && m.metadata.recursion_desired
        );
        assert_eq!(rdatas(&m), ["10.147.17.2"]);
        assert_eq!(m.answers[0].ttl, 300);

        // NXDOMAIN: SOA in authority with TTL = min(SOA TTL 300, MINIMUM 30).
        let m = ex(server.dns, &request("nope.backhaul.", RecordType::A));
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{proto}");
        assert!(m.metadata.authoritative && m.answers.is_empty());
        assert_eq!(m.authorities.len(), 1);
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(m.authorities[0].name.to_string(), "backhaul.");
        assert_eq!(m.authorities[0].ttl, 30, "{proto}: negative TTL");

        // A name below an existing one is NXDOMAIN too.
        let m = ex(server.dns, &request("x.db.backhaul.", RecordType::A));
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

        // NODATA: the name exists, the type does not.
        let m = ex(server.dns, &request("db.backhaul.", RecordType::MX));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{proto}");
        assert!(m.metadata.authoritative && m.answers.is_empty());
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(m.authorities[0].ttl, 30);

        // Empty non-terminal: NODATA, not NXDOMAIN (RFC 8020).
        let m = ex(server.dns, &request("prod.backhaul.", RecordType::A));
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{proto}: ENT"
        );
        assert!(m.answers.is_empty() && m.authorities.len() == 1);

        // Case-insensitive, the question's case echoed in question and answer.
        let m = ex(server.dns, &request("Db.BackHAUL.", RecordType::A));
        assert_eq!(rdatas(&m), ["10.147.17.2"]);
        assert_eq!(m.queries[0].name().to_string(), "Db.BackHAUL.");
        assert_eq!(m.answers[0].name.to_string(), "Db.BackHAUL.");
        // ...also in the SOA owner of a negative answer.
        let m = ex(server.dns, &request("NoPe.BackHaul.", RecordType::A));
        assert_eq!(m.authorities[0].name.to_string(), "BackHaul.");

        // ANY is answered with one RRset (RFC 8482, as NSD does): the SOA at the apex, the
        // address at a member's name.
        let m = ex(server.dns, &request("backhaul.", RecordType::ANY));
        let types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
        assert_eq!(types, [RecordType::SOA], "{proto}");
        let m = ex(server.dns, &request("db.backhaul.", RecordType::ANY));
        assert_eq!(rdatas(&m), ["10.147.17.2"], "{proto}");

        // Outside our zones: REFUSED, never an answer, no AA.
        let m = ex(server.dns, &request("example.com.", RecordType::A));
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{proto}");
        assert!(!m.metadata.authoritative && m.answers.is_empty());
    }
}

#[test]
fn edns_echo_do_and_badvers() {
    let (_fake, server) = start();
    for (proto, ex) in BOTH {
        // OPT echoed; DO echoed when set.
        let mut q = request("db.backhaul.", RecordType::A);
        q.edns.as_mut().unwrap().set_dnssec_ok(true);
        let m = ex(server.dns, &q);
        let edns = m.edns.as_ref().expect("OPT in answer");
        assert!(edns.flags().dnssec_ok, "{proto}: DO echoed");
        assert_eq!(edns.version(), 0);
        assert_eq!(edns.max_payload(), 1232);
        let m = ex(server.dns, &request("db.backhaul.", RecordType::A));
        assert!(
            !m.edns.as_ref().unwrap().flags().dnssec_ok,
            "{proto}: DO not invented"
        );

        // No OPT in the query: none in the answer.
        let mut q = request("db.backhaul.", RecordType::A);
        q.edns = None;
        let m = ex(server.dns, &q);
        assert!(m.edns.is_none(), "{proto}");
        assert_eq!(rdatas(&m), ["10.147.17.2"]);

        // EDNS version 1: BADVERS (extended RCODE 16), OPT version 0, no answer.
        let mut q = request("db.backhaul.", RecordType::A);
        q.edns.as_mut().unwrap().set_version(1);
        let m = ex(server.dns, &q);
        // BADVERS and BADSIG share the value 16 (RFC 6891, RFC 8945); hickory names it BADSIG.
        assert_eq!(u16::from(m.metadata.response_code), 16, "{proto}: BADVERS");
        assert!(m.answers.is_empty());
        assert_eq!(m.edns.as_ref().unwrap().version(), 0);
    }
}

#[test]
fn udp_size_truncation_and_full_answers_over_tcp() {
    let (_fake, server) = start();
    server.wait_answer("big.backhaul.", RecordType::AAAA);

    // ~900 B answer: fits the client's 1232, not its 600.
    let with_size = |size: u16| {
        let mut q = request("mid.backhaul.", RecordType::AAAA);
        let mut e = Edns::new();
        e.set_max_payload(size);
        q.set_edns(e);
        q
    };
    let m = exchange_udp(server.dns, &with_size(1232));
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 30);
    let m = exchange_udp(server.dns, &with_size(600));
    assert!(m.metadata.truncation, "client's 600 B honoured");
    assert!(m.answers.is_empty(), "no partial RRset");
    assert!(m.edns.is_some());
    assert_eq!(m.queries.len(), 1);
    // Sizes under 512 mean 512 (RFC 6891 6.2.5), and the answer is TC, not an error.
    let m = exchange_udp(server.dns, &with_size(100));
    assert!(m.metadata.truncation);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);

    // Without EDNS: 512 bytes.
    let mut q = request("mid.backhaul.", RecordType::AAAA);
    q.edns = None;
    let m = exchange_udp(server.dns, &q);
    assert!(m.metadata.truncation);
    let raw = udp_raw(server.dns, &q.to_vec().unwrap()).unwrap();
    assert!(raw.len() <= 512);

    // ~1.7 kB: TC over UDP even when the client offers 4096 (we send at most 1232)...
    let mut q = request("big.backhaul.", RecordType::AAAA);
    q.edns.as_mut().unwrap().set_max_payload(4096);
    let m = exchange_udp(server.dns, &q);
    assert!(m.metadata.truncation);
    let raw = udp_raw(server.dns, &q.to_vec().unwrap()).unwrap();
    assert!(raw.len() <= 1232);
    // ...and complete over TCP.
    let m = exchange_tcp(server.dns, &q);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 60);
}

#[test]
fn several_queries_on_one_tcp_connection() {
    use std::io::{Read, Write};
    let (_fake, server) = start();
    let mut s = std::net::TcpStream::connect(server.dns).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut frames = Vec::new();
    for name in ["db.backhaul.", "web.prod.backhaul.", "nope.backhaul."] {
        let q = request(name, RecordType::A).to_vec().unwrap();
        frames.extend_from_slice(&(q.len() as u16).to_be_bytes());
        frames.extend_from_slice(&q);
    }
    s.write_all(&frames).unwrap(); // pipelined
    let mut codes = Vec::new();
    for _ in 0..3 {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).unwrap();
        codes.push(Message::from_vec(&buf).unwrap().metadata.response_code);
    }
    assert_eq!(
        codes,
        [
            ResponseCode::NoError,
            ResponseCode::NoError,
            ResponseCode::NXDomain
        ]
    );
}

/// Raw header + question for cases hickory's encoder will not build.
fn raw_query(id: u16, flags: u16, qdcount: u16, name: &[u8], qtype: u16, qclass: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&flags.to_be_bytes());
    q.extend_from_slice(&qdcount.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(name);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&qclass.to_be_bytes());
    q
}

fn rcode(resp: &[u8]) -> u16 {
    u16::from_be_bytes([resp[2], resp[3]]) & 0xf
}

#[test]
fn notimp_formerr_refused_and_ignored() {
    let (_fake, server) = start();
    let name = b"\x02db\x08backhaul\x00";
    let send = |q: &[u8], tcp: bool| -> Option<Vec<u8>> {
        if tcp {
            Some(tcp_raw(server.dns, q))
        } else {
            udp_raw(server.dns, q)
        }
    };
    for tcp in [false, true] {
        // Unknown opcodes (2 = STATUS, 3 = unassigned): NOTIMP, id and opcode kept. An
        // unsigned UPDATE (5): REFUSED (only signed ones are taken, RFC 2136 3.3).
        for (opcode, want) in [(2u16, 4), (3, 4), (5, 5)] {
            let q = raw_query(0x4242, opcode << 11, 1, name, 1, 1);
            let r = send(&q, tcp).unwrap();
            assert_eq!(&r[..2], &[0x42, 0x42]);
            assert_eq!(rcode(&r), want, "opcode {opcode} tcp={tcp}");
            assert_eq!((u16::from_be_bytes([r[2], r[3]]) >> 11) & 0xf, opcode);
            assert_eq!(r[2] & 0x80, 0x80, "QR set");
        }
        // Two questions: FORMERR.
        let mut q = raw_query(7, 0x0100, 2, name, 1, 1);
        q.extend_from_slice(name);
        q.extend_from_slice(&[0, 1, 0, 1]);
        assert_eq!(rcode(&send(&q, tcp).unwrap()), 1);
        // A question cut short: FORMERR with the id.
        let q = raw_query(8, 0x0100, 1, b"\x02db\x08back", 1, 1);
        let r = send(&q[..q.len() - 4], tcp).unwrap();
        assert_eq!(rcode(&r), 1);
        assert_eq!(&r[..2], &[0, 8]);
        // Class CH (version.bind and friends): REFUSED.
        let q = raw_query(9, 0, 1, b"\x07version\x04bind\x00", 16, 3);
        assert_eq!(rcode(&send(&q, tcp).unwrap()), 5);
        // Zone transfers are not offered: REFUSED.
        let q = raw_query(10, 0, 1, b"\x08backhaul\x00", 252, 1);
        assert_eq!(rcode(&send(&q, tcp).unwrap()), 5);
    }
    // A response (QR=1) is never answered: that is how reflection loops start.
    let q = raw_query(11, 0x8000, 1, name, 1, 1);
    assert!(udp_raw(server.dns, &q).is_none());
    // Random bytes do not kill the server.
    for i in 0..200u32 {
        let junk: Vec<u8> = (0..(i % 40)).map(|j| (i * 31 + j * 7) as u8).collect();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.send_to(&junk, server.dns).unwrap();
    }
    let m = query(server.dns, "db.backhaul.", RecordType::A);
    assert_eq!(rdatas(&m), ["10.147.17.2"]);
}

#[test]
fn servfail_until_first_sync_then_answers() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
    );
    fake.set_fault(Some(Fault::Status(503)));
    let server = Server::start("", &central_network(&fake, "1s"));
    // Not known yet: SERVFAIL, so no resolver caches a false NXDOMAIN.
    let m = query(server.dns, "db.backhaul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    // The apex itself is answered.
    let m = query(server.dns, "backhaul.", RecordType::SOA);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(matches!(m.answers[0].data, RData::SOA(_)));
    fake.set_fault(None);
    server.wait_answer("db.backhaul.", RecordType::A);
    let m = query(server.dns, "nope.backhaul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

/// Response rate limiting: a flood of NXDOMAIN queries from one source (UDP sources can be
/// spoofed) is cut to the configured rate, every 2nd limited response slips out empty with
/// TC=1, and a client from another prefix is answered in full meanwhile. TCP is never limited.
#[test]
fn a_udp_flood_from_one_source_is_cut_to_the_rate() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
    );
    let server = Server::start(
        "",
        &format!(
            "[rate_limit]\nresponses_per_second = 5\nslip = 2\nipv4_prefix = 32\ninside = true\n\n{}",
            central_network(&fake, "1h")
        ),
    );
    server.wait_answer("db.backhaul.", RecordType::A);
    let flood = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    flood
        .set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    let sent = 200;
    for i in 0..sent {
        let mut q = request(&format!("nope{i}.backhaul."), RecordType::A);
        q.metadata.id = i as u16;
        flood.send_to(&q.to_vec().unwrap(), server.dns).unwrap();
    }
    let (mut full, mut slipped) = (0, 0);
    let mut buf = [0u8; 2048];
    while let Ok((n, _)) = flood.recv_from(&mut buf) {
        let m = Message::from_vec(&buf[..n]).unwrap();
        if m.metadata.truncation {
            assert!(m.answers.is_empty() && m.authorities.is_empty());
            slipped += 1;
        } else {
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
            full += 1;
        }
    }
    // The burst of 5, plus what refills while the flood is sent and read.
    assert!((5..=20).contains(&full), "{full} full answers of {sent}");
    assert!(
        slipped >= (sent - 20) / 2 - 5,
        "{slipped} slipped of {sent}"
    );
    assert!(full + slipped < sent, "some were dropped");
    // Another client (another /32 here) is not touched.
    let other = udp_raw_from("127.0.0.3:0".parse().unwrap(), server.dns, &{
        request("nope.backhaul.", RecordType::A).to_vec().unwrap()
    })
    .expect("an answer for another client");
    assert_eq!(other[2] & 0x02, 0, "not truncated");
    // The flooder itself, over TCP (which cannot be spoofed), is answered in full.
    let tcp = {
        use std::io::{Read, Write};
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        sock.connect(&server.dns.into()).unwrap();
        let mut s: std::net::TcpStream = sock.into();
        let bytes = request("nope.backhaul.", RecordType::A).to_vec().unwrap();
        s.write_all(&[&(bytes.len() as u16).to_be_bytes()[..], &bytes].concat())
            .unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut buf = vec![0; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).unwrap();
        Message::from_vec(&buf).unwrap()
    };
    assert_eq!(tcp.metadata.response_code, ResponseCode::NXDomain);
    assert!(!tcp.metadata.truncation && !tcp.authorities.is_empty());
}
