//! RFC 2136 UPDATE through the real binary, written by `nsupdate` and `knsupdate` as scripts
//! and tools do: adds, changes and deletes of TXT and A records with every prerequisite kind,
//! right and wrong keys, names outside the key's rights and a member's name refused; each
//! change served at once with a new serial and taken by a real NSD secondary as IXFR; a
//! restart keeps them; 50 updates from several clients at once, each applied exactly once.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use crate::secondaries::{nsd, transferred};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const SECRET: &str = "c2VjcmV0LXNoYXJlZC1ieS1wcmltYXJ5LWFuZC1zZWNvbmRhcmllcw==";
const OTHER: &str = "bm90LXRoZS1zZWNyZXQtdGhlLXByaW1hcnktaGFzLCBzb3JyeQ==";

fn config(fake: &FakeCentral, port: u16, extra: &str) -> String {
    format!(
        "state_dir = \"state\"\n[listen]\naddresses = [\"127.0.0.1\"]\nport = {port}\n\
         [forward]\nupstreams = []\n{extra}\
         [[transfer.key]]\nname = \"acme\"\nalgorithm = \"hmac-sha256\"\nsecret_file = \"acme.key\"\n\
         [[transfer.key]]\nname = \"other\"\nalgorithm = \"hmac-sha256\"\nsecret_file = \"other.key\"\n\
         [[update]]\nkey = \"acme\"\nnames = [\"_acme-challenge.*\", \"dyn-*\"]\ntypes = [\"TXT\", \"A\"]\nmax_records = 120\n{}",
        central_network(fake, "1s")
    )
}

fn start(port: u16, fake: &FakeCentral, extra: &str, dir: tempfile::TempDir) -> Server {
    std::fs::write(dir.path().join("acme.key"), format!("{SECRET}\n")).unwrap();
    std::fs::write(dir.path().join("other.key"), format!("{OTHER}\n")).unwrap();
    let server = Server::launch(dir, &config(fake, port, extra), &[]).wait_listening();
    server.wait_answer("db.backhaul.", RecordType::A);
    server
}

/// Runs `nsupdate -y` with `script` (its `server` line added); returns its exit code and
/// output.
fn nsupdate(server: SocketAddr, key: &str, secret: &str, script: &str) -> (i32, String) {
    let mut child = Command::new("nsupdate")
        .args(["-y", &format!("hmac-sha256:{key}:{secret}"), "-t", "5"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nsupdate runs (apt-get install bind9-dnsutils; .ci/run installs it)");
    let text = format!("server {} {}\n{script}\nsend\n", server.ip(), server.port());
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let all =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), all)
}

fn txt(server: SocketAddr, name: &str) -> Vec<String> {
    let mut v = rdatas(&query(server, name, RecordType::TXT));
    v.sort();
    v
}

fn serial(server: SocketAddr) -> u32 {
    soa_serial(server, "backhaul.").expect("the server answers its SOA")
}

#[test]
fn nsupdate_and_knsupdate_change_names_within_the_keys_rights() {
    // `dyn-host` is a member whose name the key's globs (`dyn-*`) would allow: still refused.
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![
            member("a45dc9d260", "db", true, 1, &["10.147.17.2"]),
            member("e610b78bf2", "dyn-host", true, 3, &["10.147.17.4"]),
        ],
    );
    let (port, http) = (free_port(), free_port());
    let extra = format!("[http]\nlisten = \"127.0.0.1:{http}\"\n");
    let server = start(port, &fake, &extra, tempfile::tempdir().unwrap());
    let addr = server.dns;
    let name = "_acme-challenge.db.backhaul.";
    let s0 = serial(addr);

    // Add a TXT: answered at once, with a new serial.
    let (code, out) = nsupdate(
        addr,
        "acme",
        SECRET,
        &format!("update add {name} 60 TXT \"token-1\""),
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(txt(addr, name), ["token-1"]);
    let s1 = serial(addr);
    assert!(s1 > s0, "{s0} -> {s1}");
    // Prerequisites, each kind: the RRset exists / with this value / does not exist; the
    // name is in use / not in use.
    let cases = [
        (format!("prereq yxrrset {name} TXT\nupdate add {name} 60 TXT \"token-2\""), true),
        (format!("prereq yxrrset {name} TXT \"nope\"\nupdate add {name} 60 TXT \"x\""), false),
        (format!("prereq yxrrset {name} TXT \"token-1\" \nprereq yxrrset {name} TXT \"token-2\"\nupdate delete {name} TXT \"token-1\""), true),
        (format!("prereq nxrrset {name} TXT\nupdate add {name} 60 TXT \"y\""), false),
        ("prereq nxrrset dyn-x.backhaul. A\nupdate add dyn-x.backhaul. 60 A 10.147.17.99".to_owned(), true),
        ("prereq yxrrset dyn-x.backhaul. A 10.147.17.99\nprereq yxdomain dyn-x.backhaul.\nupdate delete dyn-x.backhaul. A".to_owned(), true),
        (format!("prereq yxdomain {name}\nupdate add {name} 60 TXT \"token-2\""), true),
        (format!("prereq nxdomain {name}\nupdate add {name} 60 TXT \"z\""), false),
        ("prereq nxdomain dyn-new.backhaul.\nupdate add dyn-new.backhaul. 60 A 10.147.17.50".to_owned(), true),
        ("prereq yxdomain dyn-absent.backhaul.\nupdate add dyn-absent.backhaul. 60 A 10.147.17.51".to_owned(), false),
    ];
    for (script, applies) in &cases {
        let (code, out) = nsupdate(addr, "acme", SECRET, script);
        assert_eq!(code == 0, *applies, "{script}\n{out}");
    }
    assert_eq!(txt(addr, name), ["token-2"]);
    let m = query(addr, "dyn-x.backhaul.", RecordType::A);
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "the A was deleted: {m:?}"
    );
    assert!(is_a(
        &query(addr, "dyn-new.backhaul.", RecordType::A),
        "10.147.17.50"
    ));
    let m = query(addr, "dyn-absent.backhaul.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    // Refused: a member's name, the apex, a name or type outside the key's rights, another
    // (valid) key, a wrong secret, no signature at all. Nothing changes.
    let before = serial(addr);
    for (key, secret, script) in [
        (
            "acme",
            SECRET,
            "update add dyn-host.backhaul. 60 TXT \"mine\"".to_owned(),
        ),
        (
            "acme",
            SECRET,
            "update add db.backhaul. 60 TXT \"mine\"".to_owned(),
        ),
        (
            "acme",
            SECRET,
            "update add backhaul. 60 TXT \"mine\"".to_owned(),
        ),
        (
            "acme",
            SECRET,
            "update add www.backhaul. 60 TXT \"x\"".to_owned(),
        ),
        (
            "acme",
            SECRET,
            format!("update add {name} 60 MX 10 mail.example."),
        ),
        ("other", OTHER, format!("update add {name} 60 TXT \"x\"")),
        ("acme", OTHER, format!("update add {name} 60 TXT \"x\"")),
        (
            "acme",
            SECRET,
            "update add _acme-challenge.db.elsewhere. 60 TXT \"x\"".to_owned(),
        ),
    ] {
        let (code, out) = nsupdate(addr, key, secret, &script);
        assert_ne!(code, 0, "{key} {script}: {out}");
    }
    let unsigned = Command::new("nsupdate")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = unsigned.stdin.as_ref().unwrap();
        let text = format!(
            "server {} {}\nupdate add {name} 60 TXT \"x\"\nsend\n",
            addr.ip(),
            addr.port()
        );
        stdin.write_all(text.as_bytes()).unwrap();
    }
    let out = unsigned.wait_with_output().unwrap();
    assert!(!out.status.success(), "an unsigned update is refused");
    assert_eq!(serial(addr), before, "nothing changed");
    assert!(is_a(
        &query(addr, "dyn-host.backhaul.", RecordType::A),
        "10.147.17.4"
    ));
    assert_eq!(txt(addr, "dyn-host.backhaul."), Vec::<String>::new());
    server.expect_log(
        Duration::from_secs(5),
        "the member's name refused, logged",
        |l| {
            l["message"] == "update not applied"
                && l["why"]
                    .as_str()
                    .is_some_and(|w| w.contains("belongs to a member"))
        },
    );

    // knsupdate, over TCP: a change of an A record (delete and add in one message).
    let script = format!(
        "server {} {}\nkey hmac-sha256:acme {SECRET}\nzone backhaul.\nupdate delete dyn-new.backhaul. A\nupdate add dyn-new.backhaul. 60 A 10.147.17.60\nsend\nquit\n",
        addr.ip(),
        addr.port()
    );
    let mut k = Command::new("knsupdate")
        .arg("-v")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("knsupdate runs (knot-dnsutils)");
    {
        use std::io::Write;
        k.stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
    }
    let out = k.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = query(addr, "dyn-new.backhaul.", RecordType::A);
    assert_eq!(rdatas(&m), ["10.147.17.60"]);

    // `zone` and the names API show them, marked as updated.
    let (code, text, err) = run_cli(&["zone"], &server.path("backhaul-dns.toml"));
    assert_eq!(code, 0, "{err}");
    let line = text
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("\"token-2\"") && line.ends_with("; updated (RFC 2136)"),
        "{line}"
    );
    assert!(!text
        .lines()
        .any(|l| l.starts_with("db.backhaul.") && l.contains("updated")));
    let (status, body) = get(
        format!("127.0.0.1:{http}").parse().unwrap(),
        "/api/v1/names",
    );
    assert_eq!(status, 200);
    let names: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rows = names
        .as_array()
        .or_else(|| names["names"].as_array())
        .unwrap();
    assert!(
        rows.iter().any(|r| r["name"] == "dyn-new.backhaul"
            && r["type"] == "updated"
            && r["addresses"][0] == "10.147.17.60"),
        "{body}"
    );
    let (status, page) = get(format!("127.0.0.1:{http}").parse().unwrap(), "/");
    assert_eq!(status, 200);
    assert!(
        page.contains("dyn-new.backhaul") && page.contains("updated (RFC 2136)"),
        "{page}"
    );
    // A restart keeps them, with the same serial; a member sync keeps them.
    let kept = serial(addr);
    let dir = server.stop();
    let server = Server::launch(dir, &config(&fake, port, &extra), &[]).wait_listening();
    server.wait_answer("dyn-host.backhaul.", RecordType::A);
    assert_eq!(txt(addr, name), ["token-2"], "{}", server.log_text());
    assert_eq!(
        rdatas(&query(addr, "dyn-new.backhaul.", RecordType::A)),
        ["10.147.17.60"]
    );
    assert_eq!(serial(addr), kept, "{}", server.log_text());
    fake.set_members(vec![
        member("a45dc9d260", "db", true, 1, &["10.147.17.2"]),
        member("e610b78bf2", "dyn-host", true, 3, &["10.147.17.4"]),
        member("e610b78bf1", "web", true, 2, &["10.147.17.3"]),
    ]);
    server.wait_answer("web.backhaul.", RecordType::A);
    assert_eq!(txt(addr, name), ["token-2"]);
    assert_eq!(
        rdatas(&query(addr, "dyn-new.backhaul.", RecordType::A)),
        ["10.147.17.60"]
    );
    // certbot's cleanup: the TXT deleted, the name gone.
    let (code, out) = nsupdate(addr, "acme", SECRET, &format!("update delete {name} TXT"));
    assert_eq!(code, 0, "{out}");
    let m = query(addr, name, RecordType::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{m:?}");
}

#[test]
fn fifty_updates_at_once_each_applied_exactly_once() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
    );
    let server = start(free_port(), &fake, "", tempfile::tempdir().unwrap());
    let addr = server.dns;
    let s0 = serial(addr);
    // Ten clients, five updates each: every update adds one TXT to a shared name and sets
    // one A of its own, in one message.
    let clients: Vec<_> = (0..10)
        .map(|c| {
            std::thread::spawn(move || {
                for u in 0..5 {
                    let n = c * 5 + u;
                    let script = format!(
                        "update add _acme-challenge.all.backhaul. 60 TXT \"t{n}\"\nupdate add dyn-{n}.backhaul. 60 A 10.147.18.{n}"
                    );
                    let (code, out) = nsupdate(addr, "acme", SECRET, &script);
                    assert_eq!(code, 0, "{out}");
                }
            })
        })
        .collect();
    // Meanwhile: no answer ever shows half of an update (a TXT without its A).
    let mut looks = 0;
    while clients.iter().any(|c| !c.is_finished()) {
        let shown = txt(addr, "_acme-challenge.all.backhaul.");
        for t in &shown {
            let n: u32 = t.trim_start_matches('t').parse().unwrap();
            let m = query(addr, &format!("dyn-{n}.backhaul."), RecordType::A);
            assert_eq!(
                rdatas(&m),
                [format!("10.147.18.{n}")],
                "t{n} shown without its A"
            );
        }
        looks += 1;
        // Paced, not a busy loop: the zone builder runs only when a core is idle.
        std::thread::sleep(Duration::from_millis(2));
    }
    for c in clients {
        c.join().unwrap();
    }
    let shown = txt(addr, "_acme-challenge.all.backhaul.");
    assert_eq!(shown.len(), 50, "{shown:?}");
    let updated = server.count_logs(|l| l["message"] == "update applied" && l["changed"] == true);
    assert_eq!(updated, 50, "each applied once");
    assert!(serial(addr) > s0);
    println!("{looks} looks during the updates");
    // The key's limit (120 records; it holds 100) holds: 21 more in one message are refused.
    let script: String = (0..21)
        .map(|i| format!("update add _acme-challenge.many.backhaul. 60 TXT \"m{i}\"\n"))
        .collect();
    let (code, out) = nsupdate(addr, "acme", SECRET, &script);
    assert_ne!(code, 0, "{out}");
    assert!(txt(addr, "_acme-challenge.many.backhaul.").is_empty());
}

#[test]
fn nsd_takes_each_update_as_ixfr() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
    );
    let (port, nsd_port) = (free_port(), free_port());
    let extra = format!(
        "[transfer]\nallow = [{{ address = \"127.0.0.2\", key = \"xfr\" }}]\n\
         notify = [{{ address = \"127.0.0.1:{nsd_port}\", key = \"xfr\" }}]\n\
         [[transfer.key]]\nname = \"xfr\"\nalgorithm = \"hmac-sha256\"\nsecret_file = \"acme.key\"\n"
    );
    let server = start(port, &fake, &extra, tempfile::tempdir().unwrap());
    let addr = server.dns;
    let nsd_dir = tempfile::tempdir().unwrap();
    let _nsd = nsd(nsd_dir.path(), nsd_port, "127.0.0.2", addr, SECRET);
    let nsd_addr: SocketAddr = format!("127.0.0.1:{nsd_port}").parse().unwrap();
    let name = "_acme-challenge.db.backhaul.";
    let nsd_txt = || {
        let q = request(name, RecordType::TXT).to_vec().unwrap();
        let m = hickory_proto::op::Message::from_vec(&udp_raw(nsd_addr, &q)?).ok()?;
        (m.metadata.authoritative).then(|| rdatas(&m))
    };
    wait_for(Duration::from_secs(20), || {
        (soa_serial(nsd_addr, "backhaul.") == Some(serial(addr))).then_some(())
    })
    .expect("NSD takes the zone");
    for (script, want) in [
        (
            format!("update add {name} 60 TXT \"token\""),
            vec!["token".to_owned()],
        ),
        (format!("update delete {name} TXT"), vec![]),
    ] {
        let (code, out) = nsupdate(addr, "acme", SECRET, &script);
        assert_eq!(code, 0, "{out}\n{}", server.log_text());
        let now = serial(addr);
        wait_for(Duration::from_secs(10), || {
            (nsd_txt() == Some(want.clone())).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "NSD shows {want:?}:\n{}",
                std::fs::read_to_string(nsd_dir.path().join("nsd.log")).unwrap_or_default()
            )
        });
        assert!(
            transferred(&server, "127.0.0.2", "ixfr", u64::from(now)),
            "{}",
            server.log_text()
        );
    }
}
