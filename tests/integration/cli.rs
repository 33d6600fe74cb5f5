//! `check` and `zone` as an operator runs them.

use std::path::{Path, PathBuf};

use crate::common::*;

fn write_config(dir: &Path, body: &str) -> PathBuf {
    std::fs::write(dir.join("central.token"), TOKEN).unwrap();
    let path = dir.join("backhaul-dns.toml");
    std::fs::write(&path, body).unwrap();
    path
}

const LISTEN: &str = "[listen]\naddresses = [\"127.0.0.1\"]\nport = 5353\n";

fn central(api: &str) -> String {
    format!(
        "[[network]]\nid = \"{NETWORK}\"\napi_url = \"{api}\"\ntoken_file = \"central.token\"\n"
    )
}

/// Exit 2 and exactly one line on stderr that contains every `needle`.
fn check_fails(body: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), body);
    let (code, out, err) = run_cli(&["check"], &path);
    assert_eq!(code, 2, "stdout {out} stderr {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err}");
    }
}

#[test]
fn check_accepts_a_good_config_and_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!("{LISTEN}{}", central("http://127.0.0.1:1/api/v1")),
    );
    let (code, out, err) = run_cli(&["check"], &path);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("config OK: 1 network(s), domain backhaul., listening on 127.0.0.1 port 5353"),
        "{out}"
    );
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
    let (code, _, err) = run_cli(&["check"], &demo);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn check_names_the_fault() {
    let net = central("http://127.0.0.1:1/api/v1");
    check_fails(
        &format!("colour = \"blue\"\n{LISTEN}{net}"),
        &["line 1", "unknown field `colour`"],
    );
    check_fails(
        &format!("ttl = \"a while\"\n{LISTEN}{net}"),
        &["ttl", "\"30s\""],
    );
    check_fails(
        &format!("{LISTEN}{net}poll_interval = \"3 fortnights and a bit\"\n"),
        &["network[0].poll_interval"],
    );
    check_fails(LISTEN, &["no [[network]]"]);
    check_fails(
        &format!("{LISTEN}[[network]]\nid = \"{NETWORK}\"\ntoken_file = \"missing.token\"\n"),
        &["network[0].token_file", "missing.token"],
    );
    check_fails(
        &format!("{LISTEN}[[network]]\nid = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"nope.json\"\n"),
        &["network[0].members_file", "nope.json"],
    );
    check_fails(
        &format!("[listen]\naddresses = [\"0.0.0.0\"]\n{net}"),
        &["listen.addresses[0]", "open resolver"],
    );
    check_fails(
        &format!("{LISTEN}{net}source = \"carrier-pigeon\"\n"),
        &["unknown variant `carrier-pigeon`"],
    );
    check_fails("[listen\n", &["line 1"]);
    // The open-resolver guard covers any wide public range, not only /0.
    check_fails(
        &format!("[listen]\naddresses = [\"127.0.0.1\"]\nallow = [\"0.0.0.0/1\", \"128.0.0.0/1\"]\n{net}"),
        &["listen.allow[0]", "open resolver"],
    );
    check_fails(
        &format!("[soa]\nrefresh = \"1h\"\nretry = \"2h\"\n{LISTEN}{net}"),
        &["soa.retry", "shorter than soa.refresh"],
    );
    check_fails(
        &format!("[listen]\naddresses = [\"127.0.0.1\"]\ntcp_per_client = 0\n{net}"),
        &["listen.tcp_per_client", "at least 1"],
    );
    // A missing config file is also exit 2, naming the file.
    let (code, _, err) = run_cli(&["check"], Path::new("/nonexistent/backhaul-dns.toml"));
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/backhaul-dns.toml"), "{err}");
}

#[test]
fn zone_prints_a_master_file() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], true, false),
        vec![
            member("a45dc9d260", "db", true, 1, &["10.147.17.2"]),
            member("e610b78bf1", "", true, 2, &["10.147.17.3"]),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("records.zone"),
        "@ TXT \"v=spf1 -all\"\ntxt TXT \"two words\" \"a \\\"quote\\\" and \\\\\"\n\
         box HINFO \"PC Intel\" \"Debian 12\"\n",
    )
    .unwrap();
    let body = format!(
        "state_dir = \"state\"\n{LISTEN}[records]\nzone_file = \"records.zone\"\n{}",
        central(&fake.api_url())
    );
    let path = write_config(dir.path(), &body);
    let (code, out, err) = run_cli(&["zone"], &path);
    assert_eq!(code, 0, "{err}");
    // A one-shot command writes nothing into state_dir (a running server owns it).
    assert!(
        !dir.path().join("state").exists(),
        "zone wrote to state_dir"
    );
    for line in [
        "backhaul. 60 IN TXT \"v=spf1 -all\"",
        "txt.backhaul. 60 IN TXT \"two words\" \"a \\\"quote\\\" and \\\\\"",
        "box.backhaul. 60 IN HINFO \"PC Intel\" \"Debian 12\"",
        "$ORIGIN backhaul.",
        "db.backhaul. 60 IN A 10.147.17.2",
        "zt-e610b78bf1.backhaul. 60 IN A 10.147.17.3",
        "db.backhaul. 60 IN AAAA fd80:56c2:e21c:0:199:93a4:5dc9:d260",
        "2.17.147.10.in-addr.arpa. 60 IN PTR db.backhaul.",
        "backhaul. 60 IN NS backhaul.",
        "$ORIGIN 3.9.9.9.1.0.0.0.0.0.c.1.2.e.2.c.6.5.0.8.d.f.ip6.arpa.",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    assert!(out
        .lines()
        .any(|l| l.starts_with("backhaul. 60 IN SOA backhaul. hostmaster.backhaul. ")));
    // stdout is only the zone; logs went to stderr.
    assert!(out
        .lines()
        .all(|l| l.is_empty() || l.starts_with(';') || l.starts_with('$') || l.contains(" IN ")));
    // Every zone printed loads in NSD's own checker.
    for block in out.split("\n\n").filter(|b| b.contains("$ORIGIN")) {
        let origin = block
            .lines()
            .find_map(|l| l.strip_prefix("$ORIGIN "))
            .unwrap();
        let file = dir.path().join("check.zone");
        std::fs::write(&file, block).unwrap();
        let checked = std::process::Command::new("nsd-checkzone")
            .arg(origin)
            .arg(&file)
            .output()
            .expect("this test needs nsd-checkzone: apt-get install nsd (.ci/run installs it)");
        assert!(
            checked.status.success(),
            "{origin}: {}{}\n{block}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
    }
}

#[test]
fn zone_fails_clearly_when_the_api_does() {
    let fake = FakeCentral::start(network_json(&[], false, false), vec![]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("central.token"), "wrong-token").unwrap();
    let path = dir.path().join("backhaul-dns.toml");
    std::fs::write(
        &path,
        format!(
            "state_dir = \"state\"\n{LISTEN}{}",
            central(&fake.api_url())
        ),
    )
    .unwrap();
    let (code, out, err) = run_cli(&["zone"], &path);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("the API token was rejected"), "{err}");
    assert!(!err.contains("wrong-token"));
}

#[test]
fn example_config_parses() {
    // The example documents every key; it must stay valid. Its token file does not exist
    // here, so point that one key at a real file and keep everything else as written.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/backhaul-dns.example.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = text.replace("/etc/backhaul-dns/central.token", "central.token");
    let text = text.replace("/etc/backhaul-dns/webhook.secret", "webhook.secret");
    std::fs::write(dir.path().join("webhook.secret"), "778c6dab5feca625\n").unwrap();
    // The zone files it names are shipped next to it and must be valid too.
    for zone in ["records.zone", "public.zone"] {
        std::fs::copy(example.with_file_name(zone), dir.path().join(zone)).unwrap();
    }
    assert!(text.contains("token_file = \"central.token\""));
    let path = write_config(dir.path(), &text);
    let (code, out, err) = run_cli(&["check"], &path);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("listening on the addresses of interface(s) zt* port 53"),
        "{out}"
    );
}

#[test]
fn version_names_the_commit() {
    let out = std::process::Command::new(binary())
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.starts_with(&format!(
            "backhaul-dns {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
}
