//! One request path: the same request gets the same bytes over UDP and over TCP, whatever the
//! answer is (the transports only move bytes).

use crate::common::*;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

const SECRET: &[u8] = b"secret-shared-by-primary-and-secondaries";

/// A query for `name`/`rtype` with id `id`; `rd`: recursion desired; `edns`: an OPT with DO.
fn raw_query(id: u16, name: &str, rtype: RecordType, rd: bool, edns: bool) -> Vec<u8> {
    let mut m = request(name, rtype);
    m.metadata.id = id;
    m.metadata.recursion_desired = rd;
    if edns {
        let mut e = hickory_proto::op::Edns::new();
        e.set_max_payload(1232);
        e.set_dnssec_ok(true);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// The message without its last additional record (a TSIG whose time is the moment it was
/// signed, which two transports cannot share), with ARCOUNT one less.
fn without_tsig(bytes: &[u8]) -> Vec<u8> {
    let mut m = Message::from_vec(bytes).unwrap();
    let last = m.additionals.pop().map(|r| r.data);
    assert!(
        matches!(last, Some(hickory_proto::rr::RData::TSIG(_))),
        "signed: {m:?}"
    );
    m.to_vec().unwrap()
}

#[test]
fn every_kind_of_answer_is_the_same_over_udp_and_tcp() {
    use base64::Engine as _;
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![
            member("a45dc9d260", "db", true, 1, &["10.147.17.2"]),
            member("e610b78bf1", "web", true, 2, &["10.147.17.3"]),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("records.zone"),
        "alias CNAME db\nalias2 CNAME alias\nout CNAME www.example.com.\n\
         sub NS ns.sub\nns.sub A 10.147.17.50\n_pg._tcp SRV 0 0 5432 db\n@ MX 10 db\n",
    )
    .unwrap();
    let key = base64::engine::general_purpose::STANDARD.encode(SECRET);
    std::fs::write(dir.path().join("xfr.key"), format!("{key}\n")).unwrap();
    let tables = format!(
        "[records]\nzone_file = \"records.zone\"\n\n\
         [transfer]\nallow = [{{ address = \"127.0.0.1\", key = \"xfr\" }}]\n\n\
         [[transfer.key]]\nname = \"xfr\"\nsecret_file = \"xfr.key\"\n\n{}",
        central_network(&fake, "1s")
    );
    let server = Server::start_in(dir, "", &tables);
    server.wait_answer("db.backhaul.", RecordType::A);
    let both = |what: &str, bytes: &[u8]| -> (Vec<u8>, Vec<u8>) {
        let udp = udp_raw(server.dns, bytes).unwrap_or_else(|| panic!("{what}: no UDP answer"));
        let tcp = tcp_raw(server.dns, bytes);
        (udp, tcp)
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "answer",
            raw_query(1, "db.backhaul.", RecordType::A, true, false),
        ),
        (
            "answer with EDNS and DO",
            raw_query(2, "DB.Backhaul.", RecordType::A, true, true),
        ),
        (
            "nxdomain",
            raw_query(3, "nope.backhaul.", RecordType::A, true, true),
        ),
        (
            "nodata",
            raw_query(4, "db.backhaul.", RecordType::TXT, false, false),
        ),
        (
            "cname chain",
            raw_query(5, "alias2.backhaul.", RecordType::A, true, false),
        ),
        (
            "chain out of our zones",
            raw_query(6, "out.backhaul.", RecordType::A, true, false),
        ),
        (
            "referral",
            raw_query(7, "www.sub.backhaul.", RecordType::A, false, false),
        ),
        (
            "srv with additional",
            raw_query(8, "_pg._tcp.backhaul.", RecordType::SRV, false, true),
        ),
        (
            "any",
            raw_query(9, "backhaul.", RecordType::ANY, false, false),
        ),
        (
            "reverse",
            raw_query(
                10,
                "2.17.147.10.in-addr.arpa.",
                RecordType::PTR,
                false,
                false,
            ),
        ),
        (
            "refused (not ours)",
            raw_query(11, "example.com.", RecordType::A, true, false),
        ),
        // AXFR from an address whose allow entry names a key, unsigned: REFUSED on both.
        (
            "unsigned transfer",
            raw_query(12, "backhaul.", RecordType::AXFR, false, false),
        ),
    ];
    let mut special: Vec<(&str, Vec<u8>)> = Vec::new();
    // Opcode STATUS (2): NOTIMP.
    let mut status = raw_query(13, "db.backhaul.", RecordType::A, false, false);
    status[2] = 2 << 3;
    special.push(("notimp", status));
    // Two questions: FORMERR.
    let mut two = raw_query(14, "db.backhaul.", RecordType::A, false, false);
    two[5] = 2;
    special.push(("formerr", two));
    // EDNS version 1: BADVERS.
    let mut v1 = raw_query(15, "db.backhaul.", RecordType::A, false, true);
    let at = v1.len() - 6; // OPT: ... EXTENDED-RCODE VERSION FLAGS(2) RDLEN(2)
    v1[at] = 1;
    special.push(("badvers", v1));
    // A signed query with the wrong secret: BADSIG, unsigned NOTAUTH.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    special.push((
        "badsig",
        crate::secondaries::signed_soa_query(16, "xfr", b"not the secret", now),
    ));
    for (what, bytes) in cases.iter().chain(&special) {
        let (udp, tcp) = both(what, bytes);
        assert_eq!(udp, tcp, "{what}: UDP and TCP answers differ");
        let m = Message::from_vec(&udp).unwrap();
        assert_eq!(
            m.metadata.id,
            u16::from_be_bytes([bytes[0], bytes[1]]),
            "{what}"
        );
    }
    // The kinds really are different answers (the cases above test what they claim).
    let rcode = |what: &str| {
        let (_, bytes) = cases
            .iter()
            .chain(&special)
            .find(|(w, _)| *w == what)
            .unwrap();
        udp_raw(server.dns, bytes).unwrap()[3] & 0x0f
    };
    for (what, want) in [
        ("nxdomain", 3),
        ("refused (not ours)", 5),
        ("unsigned transfer", 5),
        ("notimp", 4),
        ("formerr", 1),
        ("badsig", 9),
    ] {
        assert_eq!(rcode(what), want, "{what}");
    }
    // Signed with the right key: the same answer on both, each signed.
    let signed = crate::secondaries::signed_soa_query(17, "xfr", SECRET, now);
    let (udp, tcp) = both("signed", &signed);
    assert_eq!(
        without_tsig(&udp),
        without_tsig(&tcp),
        "signed answers differ"
    );
}
