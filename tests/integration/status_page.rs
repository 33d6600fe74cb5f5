//! The status page in a real browser (Debian's headless Chromium), `/api/v1/names`, `/hosts`
//! and `backhaul-dns hosts`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::browser::Browser;
use crate::common::*;
use hickory_proto::rr::RecordType;
use serde_json::Value;

/// A member whose ZeroTier name is a script.
const HOSTILE: &str = "<script>document.title='pwned'</script>";

fn members() -> Vec<Value> {
    vec![
        member("a45dc9d260", "db", true, 1, &["10.147.17.2"]),
        member("e610b78bf1", "web", true, 2, &["10.147.17.3"]),
        // Two members want "dup": the older keeps it.
        member("00000000a1", "dup", true, 3, &["10.147.17.4"]),
        member("00000000a2", "dup", true, 4, &["10.147.17.5"]),
        member("00000000b1", "newcomer", false, 5, &["10.147.17.6"]),
        member("00000000c1", HOSTILE, true, 6, &["10.147.17.7"]),
    ]
}

/// A server with the HTTP endpoint on a free loopback port, syncing `members` from a fake
/// Central; returns once a member answers.
fn serve(members: Vec<Value>) -> (FakeCentral, Server, SocketAddr) {
    let fake = FakeCentral::start(network_json(&["10.147.17.0/24"], false, false), members);
    let tables = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\n{}",
        central_network(&fake, "1s")
    );
    let server = Server::start("", &tables);
    server.wait_answer("db.backhaul.", RecordType::A);
    let http = http_addr(&server);
    (fake, server, http)
}

/// Where tests leave files for people to look at.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_status_page_in_a_browser_shows_members_and_problems_as_text() {
    let (fake, server, http) = serve(members());
    // The network then fails: the page says so, and keeps the last good names.
    fake.set_fault(Some(Fault::Status(500)));
    wait_for(Duration::from_secs(10), || {
        let (_, body) = get(http, "/readyz");
        body.contains("HTTP 500").then_some(())
    })
    .unwrap_or_else(|| panic!("{}", server.log_text()));
    let mut browser = Browser::start();
    let url = format!("http://{http}/");
    browser.open(&url);
    // The script in a member's name did not run, and shows as text.
    assert_eq!(browser.eval("document.title"), "backhaul-dns");
    assert_eq!(
        browser.eval("document.querySelectorAll('script').length"),
        1,
        "only the page's own script"
    );
    let text = browser.eval("document.body.innerText");
    let text = text.as_str().unwrap();
    assert!(text.contains(HOSTILE), "{text}");
    for shown in [
        "db.backhaul",
        "web.backhaul",
        "zt-a45dc9d260.backhaul",
        // The conflict: who lost to whom.
        "wants dup.backhaul but 00000000a1 has it",
        // The unauthorized member, waiting.
        "not authorized: waiting for approval",
        "newcomer.backhaul",
        // The failing network, where its members come from, its snapshot.
        "last error: the ZeroTier API answered HTTP 500",
        "(central)",
        "snapshot saved:",
        "1 failing network",
    ] {
        assert!(text.contains(shown), "{shown} not on the page:\n{text}");
    }
    // Problems are highlighted: the conflict's and the unauthorized member's rows.
    let highlighted = browser.eval(
        "Array.from(document.querySelectorAll('#table tr.problem td:first-child')).map(td => td.textContent.split(' ')[0].split('ZeroTier')[0])",
    );
    let highlighted: Vec<&str> = (highlighted.as_array().unwrap().iter())
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        highlighted.contains(&"newcomer.backhaul"),
        "{highlighted:?}"
    );
    assert!(
        highlighted.contains(&"zt-00000000a2.backhaul"),
        "{highlighted:?}"
    );
    // Clicking a column header sorts by it: by address, ascending, then descending.
    let top_address = |b: &mut Browser| {
        b.eval("document.querySelector('#table tbody tr td:nth-child(3)').textContent")
    };
    browser.eval("document.querySelector('th[data-col=\"2\"]').click()");
    assert_eq!(top_address(&mut browser), "10.147.17.2");
    browser.eval("document.querySelector('th[data-col=\"2\"]').click()");
    assert_eq!(top_address(&mut browser), "10.147.17.7");
    // A screenshot for people (and the README).
    browser.open(&url);
    let png = browser.screenshot();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        png.len()
    );
    std::fs::write(artifacts().join("status-page.png"), &png).unwrap();
    // Filtering on the server: only the rows asked for.
    let (_, filtered) = get(http, "/?q=newcomer");
    assert!(filtered.contains("newcomer.backhaul") && !filtered.contains("web.backhaul</td>"));
    let (code, _) = get(http, "/?page=abc");
    assert_eq!(code, 400, "a malformed page number is refused, not a panic");
}

/// `address name...` lines -> name -> addresses.
fn parse_hosts(text: &str) -> BTreeMap<String, BTreeSet<IpAddr>> {
    let mut names: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut fields = line.split_whitespace();
        let ip: IpAddr = fields.next().unwrap().parse().unwrap();
        let rest: Vec<&str> = fields.collect();
        assert!(!rest.is_empty(), "{line}");
        for name in rest {
            names.entry(name.to_owned()).or_default().insert(ip);
        }
    }
    names
}

#[test]
fn names_api_hosts_endpoint_and_hosts_command_agree() {
    let mut list = members();
    // An IPv6 address too.
    list.push(member(
        "00000000d1",
        "v6",
        true,
        7,
        &["10.147.17.8", "fd00:5a::8"],
    ));
    let (_fake, server, http) = serve(list);
    let (code, body) = get(http, "/api/v1/names");
    assert_eq!(code, 200);
    let api: Value = serde_json::from_str(&body).unwrap();
    let rows = api["names"].as_array().unwrap();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {body}"))
    };
    assert_eq!(row("db.backhaul")["type"], "member");
    assert_eq!(row("db.backhaul")["node"], "a45dc9d260");
    assert_eq!(
        row("db.backhaul")["addresses"],
        serde_json::json!(["10.147.17.2"])
    );
    assert_eq!(row("db.backhaul")["served"], true);
    assert_eq!(row("newcomer.backhaul")["served"], false);
    assert_eq!(row("newcomer.backhaul")["authorized"], false);
    assert!(row("zt-00000000a2.backhaul")["problem"]
        .as_str()
        .unwrap()
        .contains("dup.backhaul"));
    // /hosts parses, and every served member name is in it with its addresses.
    let (code, hosts) = get(http, "/hosts");
    assert_eq!(code, 200);
    let parsed = parse_hosts(&hosts);
    for r in rows
        .iter()
        .filter(|r| r["served"] == true && r["node"].is_string())
    {
        let name = r["name"].as_str().unwrap();
        let want: BTreeSet<IpAddr> = (r["addresses"].as_array().unwrap().iter())
            .map(|a| a.as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(parsed.get(name), Some(&want), "{name} in\n{hosts}");
    }
    assert!(
        !parsed.contains_key("newcomer.backhaul"),
        "not served, not in hosts"
    );
    assert!(
        hosts.contains("fd00:5a::8\tv6.backhaul zt-00000000d1.backhaul"),
        "{hosts}"
    );
    // The same from the command line, from one sync.
    let (code, out, err) = run_cli(&["hosts"], &server.path("backhaul-dns.toml"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, hosts);
}

#[test]
fn the_http_endpoint_refuses_public_addresses_and_foreign_clients() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.json"), "[]").unwrap();
    let path = dir.path().join("c.toml");
    let base = "[listen]\naddresses = [\"127.0.0.1\"]\n[[network]]\nid = \"8056c2e21c000001\"\nsource = \"file\"\nmembers_file = \"m.json\"\n";
    for (http, ok) in [
        ("listen = \"203.0.113.5:9153\"", false),
        ("listen = \"0.0.0.0:9153\"", false),
        ("listen = \"[::]:9153\"", false),
        ("listen = \"0.0.0.0:9153\"\nallow_public = true", true),
        ("listen = \"10.147.17.1:9153\"", true),
        ("listen = \"[fd00::1]:9153\"", true),
        (
            "listen = \"127.0.0.1:9153\"\nallow = [\"0.0.0.0/0\"]",
            false,
        ),
    ] {
        std::fs::write(&path, format!("{base}[http]\n{http}\n")).unwrap();
        let (code, _, err) = run_cli(&["check"], &path);
        assert_eq!(code == 0, ok, "{http}: {err}");
    }
}
