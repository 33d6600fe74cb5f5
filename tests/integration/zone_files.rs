//! Zone files read as NSD reads them: the same records given to NSD 4.6 (from Debian) and to
//! backhaul-dns answer the same, record data compared byte by byte, for every owner and type.

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

/// Every type NSD loads that backhaul-dns serves, in the forms an operator writes: relative
/// names, `@`, escapes in names and strings, RFC 3597 generic records.
const RECORDS: &str = r#"$TTL 300
@        MX 10 @
@        TXT "v=spf1 -all"
www      CNAME @
a        A 10.147.17.10
a        AAAA fd00::10
x\065y   A 10.147.17.11
esc      TXT "\065\066\195\133" "a \"quoted\" word" "back\\slash" semi\;colon
long     TXT ( "first part of a long value "
               "second part" )
srv      SRV 0 5 5432 a
caa      CAA 0 issue "letsencrypt.org"
sshfp    SSHFP 1 1 123456789abcdef67890123456789abcdef67890
tlsa     TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
naptr    NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp
hinfo    HINFO "PC Intel" "Debian 12"
rp       RP mbox.backhaul. txt.backhaul.
spf      SPF "v=spf1 ip4:10.147.17.0/24 -all"
uri      URI 10 1 "https://example.com/path"
afsdb    AFSDB 1 a
kx       KX 10 a
dhcid    DHCID AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=
eui48    EUI48 00-00-5e-00-53-2a
eui64    EUI64 00-00-5e-ef-10-00-00-2a
loc      LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m
loc2     LOC 37 46 S 122 25 W 100m
apl      APL 1:192.168.32.0/21 !1:192.168.38.0/28 2:2001:db8::/32
generic  TYPE65534 \# 3 abcdef
empty    TYPE65534 \# 0
gen-a    TYPE1 \# 4 0a93110c
*.wild   A 10.147.17.13
"#;

struct Nsd(Child);

impl Drop for Nsd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Asks over TCP (nothing truncated) and returns the rcode and each answer's owner, type and
/// RDATA in wire form, sorted.
fn answers(server: SocketAddr, name: &Name, rtype: RecordType) -> (ResponseCode, Vec<String>) {
    let m: Message = exchange_tcp(server, &request(&name.to_ascii(), rtype));
    let mut out: Vec<String> = (m.answers.iter())
        .map(|r| {
            let rdata = r.data.to_bytes().unwrap();
            format!(
                "{} {} {}",
                r.name.to_lowercase(),
                u16::from(r.record_type()),
                hex::encode(rdata)
            )
        })
        .collect();
    out.sort();
    (m.metadata.response_code, out)
}

#[test]
fn the_same_file_answers_the_same_in_nsd_and_backhaul_dns() {
    assert!(
        std::path::Path::new("/usr/sbin/nsd").exists(),
        "this test needs NSD: apt-get install nsd (.ci/run installs it)"
    );
    // backhaul-dns: the records file as is, no members.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("records.zone"), RECORDS).unwrap();
    std::fs::write(dir.path().join("members.json"), "[]").unwrap();
    let ours = Server::start_in(
        dir,
        "",
        "[records]\nzone_file = \"records.zone\"\n[[network]]\nid = \"8056c2e21c000001\"\n\
         source = \"file\"\nmembers_file = \"members.json\"\npoll_interval = \"1h\"\n",
    );
    ours.wait_answer("a.backhaul.", RecordType::A);

    // NSD: the same records in a zone of the same name.
    let nsd_zone = format!(
        "$ORIGIN backhaul.\n@ 300 SOA ns.backhaul. hostmaster.backhaul. 1 3600 600 86400 30\n\
         @ 300 NS ns.backhaul.\nns 300 A 10.147.17.1\n{RECORDS}"
    );
    let (nsd_proc, nsd, _nsd_dir) = start_nsd(&nsd_zone);

    // Every owner and type of the file, and a name the wildcard covers.
    let apex = Name::from_ascii("backhaul.").unwrap();
    let parsed = backhaul_dns::records::parse(RECORDS, &apex, &[], 60).unwrap();
    let mut asked: Vec<(Name, RecordType)> = (parsed.iter())
        .map(|r| (r.record.name.clone(), r.record.record_type()))
        .collect();
    asked.push((
        Name::from_ascii("any.wild.backhaul.").unwrap(),
        RecordType::A,
    ));
    asked.push((Name::from_ascii("www.backhaul.").unwrap(), RecordType::MX));
    asked.dedup();
    // hickory's message parser (this test's client) refuses a record with empty RDATA: that
    // one is compared as raw bytes below.
    let empty = Name::from_ascii("empty.backhaul.").unwrap();
    asked.retain(|(name, _)| *name != empty);
    let mut differ = Vec::new();
    for (name, rtype) in &asked {
        let ns = answers(nsd, name, *rtype);
        let us = answers(ours.dns, name, *rtype);
        if ns != us {
            differ.push(format!(
                "{name} {rtype}:\n  nsd:          {ns:?}\n  backhaul-dns: {us:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "answers differ:\n{}", differ.join("\n"));
    // The empty generic record: the same answer section, byte for byte (both point the owner
    // at the question, TYPE65534, IN, TTL 300, RDLENGTH 0).
    let q = request("empty.backhaul.", RecordType::Unknown(65534))
        .to_vec()
        .unwrap();
    let (n, u) = (tcp_raw(nsd, &q), tcp_raw(ours.dns, &q));
    let question_end = 12 + "empty.backhaul.".len() + 1 + 4;
    assert_eq!((n[7], u[7]), (1, 1), "one answer each");
    assert_eq!(
        n[question_end..question_end + 12],
        u[question_end..question_end + 12]
    );
    assert!(asked.len() >= 27, "{} names asked", asked.len());
    drop(nsd_proc);

    // What `backhaul-dns zone` prints, loaded into NSD, answers the same again: the printed
    // master file reads back to exactly the served records.
    let (code, printed, err) = run_cli(&["zone"], &ours.path("backhaul-dns.toml"));
    assert_eq!(code, 0, "{err}");
    let block = printed
        .split("\n\n")
        .find(|b| b.contains("$ORIGIN backhaul.\n"))
        .unwrap();
    let (_nsd_proc, nsd, _dir) = start_nsd(block);
    for (name, rtype) in &asked {
        let ns = answers(nsd, name, *rtype);
        let us = answers(ours.dns, name, *rtype);
        assert_eq!(
            ns, us,
            "{name} {rtype}: NSD from `zone` output vs backhaul-dns"
        );
    }
}

/// Starts NSD on a free port serving `zone` as `backhaul.`; waits until it answers.
fn start_nsd(zone: &str) -> (Nsd, SocketAddr, tempfile::TempDir) {
    let nsd_dir = tempfile::tempdir().unwrap();
    let d = nsd_dir.path().display();
    let port = free_port();
    std::fs::write(nsd_dir.path().join("backhaul.zone"), zone).unwrap();
    let conf = format!(
        "server:\n\tip-address: 127.0.0.1@{port}\n\tserver-count: 1\n\tusername: \"\"\n\tchroot: \"\"\n\
         \tzonesdir: \"{d}\"\n\tdatabase: \"\"\n\tzonelistfile: \"{d}/zone.list\"\n\txfrdfile: \"{d}/xfrd.state\"\n\
         \txfrdir: \"{d}\"\n\tpidfile: \"{d}/nsd.pid\"\n\tlogfile: \"{d}/nsd.log\"\n\trrl-ratelimit: 0\n\
         remote-control:\n\tcontrol-enable: no\nzone:\n\tname: \"backhaul\"\n\tzonefile: \"backhaul.zone\"\n"
    );
    std::fs::write(nsd_dir.path().join("nsd.conf"), conf).unwrap();
    let proc = Nsd(Command::new("/usr/sbin/nsd")
        .args(["-d", "-c"])
        .arg(nsd_dir.path().join("nsd.conf"))
        .spawn()
        .expect("nsd starts"));
    let nsd: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for(Duration::from_secs(10), || {
        let q = request("a.backhaul.", RecordType::A).to_vec().unwrap();
        udp_raw(nsd, &q).filter(|r| r.len() > 12 && r[7] > 0)
    })
    .unwrap_or_else(|| {
        panic!(
            "NSD did not come up: {}",
            std::fs::read_to_string(nsd_dir.path().join("nsd.log")).unwrap_or_default()
        )
    });
    (proc, nsd, nsd_dir)
}
