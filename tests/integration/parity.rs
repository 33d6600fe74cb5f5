//! Answers as NSD gives them: the zone `backhaul-dns zone` prints, served by a real NSD, and
//! the same queries to both servers side by side.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};

struct Nsd(Child);

impl Drop for Nsd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// NSD serving the zones of `zone_text` (the output of `backhaul-dns zone`) on `port`, with
/// its defaults but for what the comparison needs (no rate limiting).
fn nsd(dir: &Path, port: u16, zone_text: &str) -> Nsd {
    assert!(
        Path::new("/usr/sbin/nsd").exists(),
        "this test needs NSD: apt-get install nsd (.ci/run installs it)"
    );
    let d = dir.display();
    let mut conf = format!(
        "server:\n\tip-address: 127.0.0.1@{port}\n\tserver-count: 1\n\tusername: \"\"\n\tchroot: \"\"\n\
         \tzonesdir: \"{d}\"\n\tdatabase: \"\"\n\tzonelistfile: \"{d}/zone.list\"\n\txfrdfile: \"{d}/xfrd.state\"\n\
         \tpidfile: \"{d}/nsd.pid\"\n\tlogfile: \"{d}/nsd.log\"\n\trrl-ratelimit: 0\n\
         remote-control:\n\tcontrol-enable: no\n"
    );
    let mut zones: Vec<(String, String)> = Vec::new();
    for line in zone_text.lines() {
        if let Some(origin) = line.strip_prefix("$ORIGIN ") {
            zones.push((origin.trim().to_owned(), String::new()));
        }
        if let Some((_, text)) = zones.last_mut() {
            if !line.starts_with(';') {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    for (i, (origin, text)) in zones.iter().enumerate() {
        std::fs::write(dir.join(format!("z{i}.zone")), text).unwrap();
        conf.push_str(&format!(
            "zone:\n\tname: \"{origin}\"\n\tzonefile: \"z{i}.zone\"\n"
        ));
    }
    std::fs::write(dir.join("nsd.conf"), conf).unwrap();
    Nsd(Command::new("/usr/sbin/nsd")
        .args(["-d", "-c"])
        .arg(dir.join("nsd.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nsd"))
}

/// Every zone of `zone_text` (the output of `backhaul-dns zone`) loads in NSD's, Knot's and
/// BIND's zone checkers, each run as an operator would before serving the file.
fn loads_in_every_zone_checker(zone_text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut zones: Vec<(String, String)> = Vec::new();
    for line in zone_text.lines() {
        if let Some(origin) = line.strip_prefix("$ORIGIN ") {
            zones.push((origin.trim().to_owned(), String::new()));
        }
        if let Some((_, text)) = zones.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    assert!(zones.len() >= 2, "{zone_text}");
    for (i, (origin, text)) in zones.iter().enumerate() {
        let file = dir.path().join(format!("z{i}.zone"));
        std::fs::write(&file, text).unwrap();
        let file = file.to_str().unwrap();
        for (tool, args) in [
            ("nsd-checkzone", vec![origin.as_str(), file]),
            ("kzonecheck", vec!["-o", origin.as_str(), file]),
            // check-names off: a name with a space in it is valid DNS, not a host name.
            (
                "named-checkzone",
                vec!["-k", "ignore", origin.as_str(), file],
            ),
        ] {
            let out = Command::new(tool).args(&args).output().unwrap_or_else(|e| {
                panic!("{tool}: {e} (apt-get install nsd knot-dnssecutils bind9-utils)")
            });
            assert!(
                out.status.success(),
                "{tool} refuses the zone {origin}: {}{}\n{text}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The records of a section as text, sorted (the order of RRsets is not part of an answer).
fn section(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .map(|r| r.to_string().to_lowercase())
        .collect();
    v.sort();
    v
}

/// A name as a zone file writes it, `\DDD` decimal (hickory's `from_ascii` reads octal, and
/// refuses a label with a space).
fn zone_name(text: &str) -> Name {
    let labels = text.trim_end_matches('.').split('.').map(|label| {
        let mut out = Vec::new();
        let mut rest = label.as_bytes();
        while let Some((&b, tail)) = rest.split_first() {
            match (
                b,
                tail.get(..3)
                    .and_then(|d| std::str::from_utf8(d).ok()?.parse().ok()),
            ) {
                (b'\\', Some(v)) => {
                    out.push(v);
                    rest = &tail[3..];
                }
                _ => {
                    out.push(b);
                    rest = tail;
                }
            }
        }
        out
    });
    let mut name = Name::from_labels(labels).unwrap();
    name.set_fqdn(true);
    name
}

/// One query over UDP with EDNS (1232) and RD as given.
fn ask(server: SocketAddr, name: &str, rtype: RecordType, rd: bool) -> Message {
    let mut q = request(".", rtype);
    q.queries[0].name = zone_name(name);
    q.metadata.recursion_desired = rd;
    exchange_udp(server, &q)
}

/// One record of every type NSD reads from a zone file (ZONEMD aside: NSD checks its digest),
/// each at a name of its own.
const TYPES: &str = r#"rp RP admin.backhaul. txt.backhaul.
afsdb AFSDB 1 db.backhaul.
x25 X25 "311061700956"
isdn ISDN "150862028003217" "004"
rt RT 10 db.backhaul.
nsap NSAP 0x47.0005.80.005a00.0000.0001.e133.ffffff000161.00
px PX 10 net2.it. prmd-net2.admd-p400.c-it.
gpos GPOS "-32.6882" "116.8652" "10.0"
loc LOC 52 22 23.000 N 4 53 32.000 E -2.00m 1.00m 10000.00m 10.00m
kx KX 10 db.backhaul.
a6 A6 0 2001:db8::1
apl APL 1:192.168.1.0/24 !2:2001:db8::/32
dhcid DHCID AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=
smimea SMIMEA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
hip HIP 2 200100107B1A74DF365639CC39F1D578 AwEAAbdxyhNuSutc5EMzxTs9LBPCIkOFH8cIvM4p9+LrV4e19WzK00+CI6zBCQTdtWsuxKbWIy87UOoJTwkUs7lBu+Upr1gsNrut79ryra+bSRGQb1slImA8YVJyuIDsj7kwzG7jnERNqnWxZ48AWkskmdHaVDP4BcelrTI3rMXdXF5D rvs.example.com.
csync CSYNC 66 3 A NS AAAA
spf SPF "v=spf1 -all"
nid NID 10 0014:4fff:ff20:ee64
l32 L32 10 10.1.2.0
l64 L64 10 2001:0db8:1140:1000
lp LP 10 l64.backhaul.
eui48 EUI48 00-00-5e-00-53-2a
eui64 EUI64 00-00-5e-ef-10-00-00-2a
uri URI 10 1 "ftp://ftp1.example.com/public"
caa CAA 0 issue "letsencrypt.org"
sshfp SSHFP 2 1 123456789ABCDEF67890123456789ABCDEF67890
tlsa TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
naptr NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.backhaul.
hinfo HINFO "PC" "Linux"
svcb SVCB 1 . alpn=h2,h3 port=8443 ipv4hint=10.147.17.2
https HTTPS 1 . alpn=h2
openpgpkey OPENPGPKEY mQINBFit2jsBEADrbl5vjVxYeAE0g0IDYCBpHirv1Sjlqxx5gjtPhb2YhvyDMXjq
weird\032name A 10.147.17.80
rare TYPE65534 \# 3 abcdef
"#;

#[test]
fn answers_match_nsd_on_the_same_zone() {
    let dir = tempfile::tempdir().unwrap();
    let members = |routes: &str, list: Vec<serde_json::Value>| {
        serde_json::json!({"network": network_json(&[routes], false, false), "members": list})
            .to_string()
    };
    std::fs::write(
        dir.path().join("m1.json"),
        members(
            "10.147.17.0/24",
            vec![
                member("a45dc9d260", "db", true, 1, &["10.147.17.2"]),
                member("e610b78bf1", "web", true, 2, &["10.147.17.3"]),
            ],
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("m2.json"),
        members(
            "10.147.18.0/24",
            vec![member("efcc1b0947", "web", true, 3, &["10.147.18.3"])],
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("records.zone"),
        format!(
            "@ MX 10 mail\n@ TXT \"v=spf1 -all\"\nmail A 10.147.17.25\n\
             sub NS ns.sub\nns.sub A 10.147.17.50\ncdel CNAME host.sub\n\
             sub DS 12345 8 2 {digest}\n\
             srv SRV 0 0 80 web.other.\nsrv2 SRV 0 0 80 db\nalias CNAME db\n\
             old DNAME new\na.new A 10.147.17.70\next DNAME example.com.\n\
             long DNAME {long}.\n{TYPES}",
            digest = "2BB183AF5F22588179A53B0A98631FAD1A292118A6F3F4A3A0DF1A8E0C5E0E2B",
            long = [
                "x".repeat(60),
                "y".repeat(60),
                "z".repeat(60),
                "w".repeat(50)
            ]
            .join("."),
        ),
    )
    .unwrap();
    let tables = "[records]\nzone_file = \"records.zone\"\n\n\
                  [[network]]\nid = \"8056c2e21c000001\"\nsource = \"file\"\nmembers_file = \"m1.json\"\n\n\
                  [[network]]\nid = \"8056c2e21c000002\"\nsource = \"file\"\nmembers_file = \"m2.json\"\n\
                  domain = \"other\"\n";
    let server = Server::start_in(dir, "", tables);
    server.wait_answer("db.backhaul.", RecordType::A);
    server.wait_answer("web.other.", RecordType::A);
    let (code, zone_text, err) = run_cli(&["zone"], &server.path("backhaul-dns.toml"));
    assert_eq!(code, 0, "{err}");
    loads_in_every_zone_checker(&zone_text);
    let nsd_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _nsd = nsd(nsd_dir.path(), port, &zone_text);
    let nsd_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for(Duration::from_secs(10), || {
        let q = request("backhaul.", RecordType::SOA).to_vec().unwrap();
        udp_raw(nsd_addr, &q).map(|_| ())
    })
    .expect("nsd answers");

    let apexes: Vec<String> = (zone_text.lines())
        .filter_map(|l| l.strip_prefix("$ORIGIN "))
        .map(|o| o.trim().to_lowercase())
        .collect();
    let cases: &[(&str, RecordType, bool)] = &[
        ("backhaul.", RecordType::ANY, false),
        ("backhaul.", RecordType::SOA, false),
        ("backhaul.", RecordType::NS, false),
        ("backhaul.", RecordType::MX, false),
        ("backhaul.", RecordType::TXT, false),
        ("db.backhaul.", RecordType::A, false),
        ("DB.Backhaul.", RecordType::A, false),
        ("db.backhaul.", RecordType::MX, false),
        ("db.backhaul.", RecordType::AAAA, false),
        ("nope.backhaul.", RecordType::A, false),
        ("x.db.backhaul.", RecordType::A, false),
        ("mail.backhaul.", RecordType::A, false),
        ("alias.backhaul.", RecordType::A, false),
        ("www.sub.backhaul.", RecordType::A, false),
        ("www.sub.backhaul.", RecordType::A, true),
        ("sub.backhaul.", RecordType::NS, false),
        ("cdel.backhaul.", RecordType::A, false),
        ("srv.backhaul.", RecordType::SRV, false),
        ("srv2.backhaul.", RecordType::SRV, false),
        ("2.17.147.10.in-addr.arpa.", RecordType::PTR, false),
        ("web.other.", RecordType::A, false),
        ("other.", RecordType::ANY, false),
        ("sub.backhaul.", RecordType::DS, false),
        ("a.old.backhaul.", RecordType::A, false),
        ("A.Old.backhaul.", RecordType::A, false),
        ("b.old.backhaul.", RecordType::A, false),
        ("a.old.backhaul.", RecordType::CNAME, false),
        ("a.old.backhaul.", RecordType::DNAME, false),
        ("old.backhaul.", RecordType::DNAME, false),
        ("old.backhaul.", RecordType::A, false),
        ("x.y.ext.backhaul.", RecordType::A, false),
        ("weird\\032name.backhaul.", RecordType::A, false),
    ];
    let long_name = format!("{}.long.backhaul.", "q".repeat(60));
    let typed: Vec<(String, RecordType)> = (TYPES.lines())
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let owner = words.next()?;
            let rtype = RecordType::from(backhaul_dns::presentation::type_code(words.next()?)?);
            Some((format!("{owner}.backhaul."), rtype))
        })
        .collect();
    assert_eq!(
        typed.len(),
        TYPES.lines().count(),
        "every type is asked for: {typed:?}"
    );
    let cases: Vec<(&str, RecordType, bool)> = (cases.iter().copied())
        .chain(std::iter::once((long_name.as_str(), RecordType::A, false)))
        .chain(typed.iter().map(|(n, t)| (n.as_str(), *t, false)))
        .collect();
    let mut differences = Vec::new();
    for &(name, rtype, rd) in &cases {
        let ours = ask(server.dns, name, rtype, rd);
        let theirs = ask(nsd_addr, name, rtype, rd);
        let what = format!("{name} {rtype} rd={rd}");
        let mut differ = |part: &str, a: String, b: String| {
            differences.push(format!("{what}: {part}\n  ours: {a}\n  nsd:  {b}"));
        };
        let flags = |m: &Message| (m.metadata.response_code, m.metadata.authoritative);
        if flags(&ours) != flags(&theirs) {
            differ(
                "rcode, AA",
                format!("{:?}", flags(&ours)),
                format!("{:?}", flags(&theirs)),
            );
        }
        if section(&ours.answers) != section(&theirs.answers) {
            differ(
                "answer",
                format!("{:?}", section(&ours.answers)),
                format!("{:?}", section(&theirs.answers)),
            );
        }
        // NSD adds the zone's own NS set to positive answers (minimal-responses: no); we answer
        // minimally. Any other authority (negative answers, referrals) must be NSD's.
        let authority = section(&ours.authorities);
        let apex_ns_only = theirs.authorities.iter().all(|r| {
            r.record_type() == RecordType::NS && apexes.contains(&r.name.to_string().to_lowercase())
        });
        let minimal = authority.is_empty() && !theirs.answers.is_empty() && apex_ns_only;
        if !minimal && authority != section(&theirs.authorities) {
            differ(
                "authority",
                format!("{authority:?}"),
                format!("{:?}", section(&theirs.authorities)),
            );
        }
        // Additional data: nothing NSD would not give (never another zone's data).
        let extra: Vec<String> = section(&ours.additionals)
            .into_iter()
            .filter(|r| !section(&theirs.additionals).contains(r))
            .collect();
        if !extra.is_empty() {
            differ(
                "additional",
                format!("{extra:?}"),
                format!("{:?}", section(&theirs.additionals)),
            );
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences from NSD:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// A network domain served inside another's zone (`child.p.example` in `p.example`) and
/// delegated away by the records file would never be answered: `check` refuses it with the
/// record's file and line, rather than serve a referral for the members' names.
#[test]
fn a_network_domain_below_a_delegation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (file, id, routes) in [
        ("m1.json", "8056c2e21c000001", "10.147.17.0/24"),
        ("m2.json", "8056c2e21c000002", "10.147.18.0/24"),
    ] {
        let json = serde_json::json!({"network": {"id": id, "config": {"routes": [{"target": routes, "via": null}]}},
            "members": []});
        std::fs::write(dir.path().join(file), json.to_string()).unwrap();
    }
    std::fs::write(
        dir.path().join("records.zone"),
        "www A 10.147.17.9\nchild NS ns.child\nns.child A 10.147.17.50\n",
    )
    .unwrap();
    let config = dir.path().join("c.toml");
    let write = |child_domain: &str| {
        std::fs::write(
            &config,
            format!(
                "domain = \"p.example\"\nstate_dir = \"state\"\n[listen]\naddresses = [\"127.0.0.1\"]\n\
                 [forward]\nupstreams = []\n[records]\nzone_file = \"records.zone\"\n\
                 [[network]]\nid = \"8056c2e21c000001\"\nsource = \"file\"\nmembers_file = \"m1.json\"\n\
                 [[network]]\nid = \"8056c2e21c000002\"\nsource = \"file\"\nmembers_file = \"m2.json\"\n\
                 domain = \"{child_domain}\"\n"
            ),
        )
        .unwrap();
    };
    for below in ["child.p.example", "x.child.p.example"] {
        write(below);
        let (code, _, err) = run_cli(&["check"], &config);
        assert_eq!(code, 2, "{below}: {err}");
        assert!(
            err.contains("records.zone, line 2") && err.contains("delegates away"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // A network beside the delegation is fine.
    write("other.p.example");
    let (code, _, err) = run_cli(&["check"], &config);
    assert_eq!(code, 0, "{err}");
    // A name outside every domain: the message names the domains served, not just one.
    std::fs::write(
        dir.path().join("records.zone"),
        "www.elsewhere.org. A 10.147.17.9\n",
    )
    .unwrap();
    let (code, _, err) = run_cli(&["check"], &config);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("(other.p.example., p.example.)"), "{err}");
}
