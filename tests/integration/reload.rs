//! Live reload: the config file, records files (replaced by rename) and members files are
//! watched; SIGHUP reloads too; an invalid edit is rejected and the running setup stays. No
//! query is dropped meanwhile.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{json, Value};

fn members(extra: Option<Value>) -> String {
    let mut list = vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])];
    list.extend(extra);
    json!({"network": network_json(&["10.147.17.0/24"], false, false), "members": list}).to_string()
}

/// The config: listen on 127.0.0.1 with a fixed port (so the rewritten file says the same).
fn config(port: u16, top: &str, tables: &str) -> String {
    format!(
        "state_dir = \"state\"\n{top}\n[listen]\naddresses = [\"127.0.0.1\"]\nport = {port}\n\n\
         [forward]\nupstreams = []\n\n{tables}\
         [[network]]\nid = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"members.json\"\npoll_interval = \"1h\"\n"
    )
}

/// Starts the server after `prepare` has set up its directory.
fn start(top: &str, tables: &str, prepare: impl FnOnce(&Path)) -> (Server, u16) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("members.json"), members(None)).unwrap();
    prepare(dir.path());
    let port = free_port();
    let server = Server::launch(dir, &config(port, top, tables), &[]).wait_listening();
    server.wait_answer("db.backhaul.", RecordType::A);
    (server, port)
}

fn reloaded(server: &Server, n: usize) {
    wait_for(Duration::from_secs(10), || {
        (server.count_logs(|l| l["message"] == "configuration reloaded") >= n).then_some(())
    })
    .unwrap_or_else(|| panic!("no reload #{n}; logs:\n{}", server.log_text()));
}

/// Queries a name without pause until stopped; counts answers and misses.
struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    /// Of the failed: answered, but not with NOERROR (the rest got no answer in time).
    wrong: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: std::net::SocketAddr) -> Load {
        Load::of(addr, "db.backhaul.")
    }

    fn of(addr: std::net::SocketAddr, name: &'static str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let wrong = Arc::new(AtomicUsize::new(0));
        let (s, a, f, w) = (
            stop.clone(),
            answered.clone(),
            failed.clone(),
            wrong.clone(),
        );
        let thread = std::thread::spawn(move || {
            // Bounded: at most 200,000 queries or until stopped.
            for _ in 0..200_000 {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let bytes = request(name, RecordType::A).to_vec().unwrap();
                match udp_raw(addr, &bytes) {
                    Some(r) if r.len() > 12 && r[3] & 0x0f == 0 => {
                        a.fetch_add(1, Ordering::Relaxed)
                    }
                    Some(r) => {
                        // Which rcode, in the low bits of the count's top (for the message).
                        let rcode = r.get(3).map_or(15, |b| b & 0x0f) as usize;
                        w.fetch_add(1 + (rcode << 40), Ordering::Relaxed);
                        f.fetch_add(1, Ordering::Relaxed)
                    }
                    None => f.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
        Load {
            stop,
            answered,
            failed,
            wrong,
            thread: Some(thread),
        }
    }

    /// Stops; (answered with NOERROR, answered otherwise). Queries that got no answer at
    /// all (lost on a loaded machine) are in neither.
    fn finish_answers(self) -> (usize, usize) {
        let wrong = self.wrong.clone();
        let (answered, _) = self.finish();
        (answered, wrong.load(Ordering::Relaxed) & ((1 << 40) - 1))
    }

    fn finish(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        (
            self.answered.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn config_edits_apply_live_without_dropping_a_query() {
    let (server, port) = start("ttl = \"60s\"", "", |dir| {
        std::fs::write(dir.join("records.zone"), "extra A 10.147.17.77\n").unwrap()
    });
    let load = Load::start(server.dns);
    // In-place edit of the config: new TTL, and a records file.
    std::fs::write(
        server.path("backhaul-dns.toml"),
        config(
            port,
            "ttl = \"120s\"",
            "[records]\nzone_file = \"records.zone\"\n\n",
        ),
    )
    .unwrap();
    reloaded(&server, 1);
    let m = server.wait_answer("extra.backhaul.", RecordType::A);
    assert_eq!(m.answers[0].ttl, 120);
    assert_eq!(
        query(server.dns, "db.backhaul.", RecordType::A).answers[0].ttl,
        120
    );
    // Records file replaced by rename, as editors do.
    replace_by_rename(&server.path("records.zone"), "later A 10.147.17.78\n");
    server.wait_answer("later.backhaul.", RecordType::A);
    // A setting that needs a restart: said so; the rest of the edit still applies.
    std::fs::write(
        server.path("backhaul-dns.toml"),
        config(
            port + 1,
            "ttl = \"90s\"",
            "[records]\nzone_file = \"records.zone\"\n\n",
        ),
    )
    .unwrap();
    server.expect_log(
        Duration::from_secs(10),
        "a restart warning naming the port",
        |l| {
            l["message"]
                .as_str()
                .unwrap_or("")
                .contains("takes effect after a restart")
                && l["settings"].as_str().unwrap_or("").contains("port")
        },
    );
    wait_for(Duration::from_secs(10), || {
        (query(server.dns, "db.backhaul.", RecordType::A).answers[0].ttl == 90).then_some(())
    })
    .expect("ttl 90 applied");
    let (answered, failed) = load.finish();
    assert!(answered > 100, "{answered} answered");
    assert_eq!(failed, 0, "queries lost or failed during reloads");
}

#[test]
fn members_file_edit_syncs_at_once() {
    // poll_interval is 1h: only the watch can make this quick.
    let (server, _) = start("", "", |_| {});
    replace_by_rename(
        &server.path("members.json"),
        &members(Some(member(
            "e610b78bf1",
            "cache",
            true,
            2,
            &["10.147.17.4"],
        ))),
    );
    server.wait_answer("cache.backhaul.", RecordType::A);
}

#[test]
fn sighup_reloads() {
    // The records file is a symlink into another directory: edits to its target make no event
    // where the watch looks, so only SIGHUP can pick them up.
    let (server, _) = start("", "[records]\nzone_file = \"records.zone\"\n\n", |dir| {
        std::fs::create_dir(dir.join("real")).unwrap();
        std::fs::write(dir.join("real/records.zone"), "one A 10.147.17.81\n").unwrap();
        std::os::unix::fs::symlink(dir.join("real/records.zone"), dir.join("records.zone"))
            .unwrap();
    });
    server.wait_answer("one.backhaul.", RecordType::A);
    std::fs::write(server.path("real/records.zone"), "two A 10.147.17.82\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        query(server.dns, "two.backhaul.", RecordType::A)
            .metadata
            .response_code,
        ResponseCode::NXDomain,
        "not seen without SIGHUP"
    );
    // SAFETY: kill(2) with a pid and a signal number; no memory is involved.
    unsafe {
        libc::kill(server.pid() as i32, libc::SIGHUP);
    }
    server.wait_answer("two.backhaul.", RecordType::A);
    assert!(server
        .wait_log(Duration::from_secs(5), |l| l["message"]
            == "configuration reloaded"
            && l["cause"] == "SIGHUP")
        .is_some());
}

#[test]
fn an_invalid_edit_is_rejected_and_the_running_config_stays() {
    let (server, port) = start("ttl = \"60s\"", "", |_| {});
    std::fs::write(
        server.path("backhaul-dns.toml"),
        config(port, "ttl = \"forever\"", ""),
    )
    .unwrap();
    let line = server.expect_log(Duration::from_secs(10), "reload rejected", |l| {
        l["message"]
            .as_str()
            .unwrap_or("")
            .contains("reload rejected")
    });
    assert!(line["message"].as_str().unwrap().contains("ttl"), "{line}");
    let m = query(server.dns, "db.backhaul.", RecordType::A);
    assert_eq!(m.answers[0].ttl, 60);
    // Fixed: applied.
    std::fs::write(
        server.path("backhaul-dns.toml"),
        config(port, "ttl = \"30s\"", ""),
    )
    .unwrap();
    reloaded(&server, 1);
    wait_for(Duration::from_secs(5), || {
        (query(server.dns, "db.backhaul.", RecordType::A).answers[0].ttl == 30).then_some(())
    })
    .expect("ttl 30 applied");
}

/// Editors that truncate before writing (nano, `cat > file`) leave the file empty for a
/// moment. That moment is never served: a loop of such saves of good content, each holding
/// the file empty longer than the debounce, gives no wrong answer and no serial change.
#[test]
fn a_file_truncated_then_written_never_serves_the_empty_moment() {
    let records = "extra A 10.147.17.77\n";
    let (server, _) = start("", "[records]\nzone_file = \"records.zone\"\n\n", |dir| {
        std::fs::write(dir.join("records.zone"), records).unwrap()
    });
    server.wait_answer("extra.backhaul.", RecordType::A);
    let serial = |s: &Server| {
        query(s.dns, "backhaul.", RecordType::SOA).answers[0]
            .data
            .clone()
    };
    let before = serial(&server);
    let load = Load::of(server.dns, "extra.backhaul.");
    let path = server.path("records.zone");
    for _ in 0..6 {
        // Truncate, pause as a slow writer would (past the debounce), write the same content.
        std::fs::File::create(&path).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        std::fs::write(&path, records).unwrap();
        std::thread::sleep(Duration::from_millis(600));
    }
    // The last write is applied (or found unchanged) before the load stops.
    reloaded(&server, 1);
    let (answered, failed) = load.finish();
    assert!(answered > 0);
    assert_eq!(failed, 0, "{failed} wrong answers of {}", answered + failed);
    assert_eq!(
        serial(&server),
        before,
        "the serial moved: the empty file was served"
    );

    // An intentionally emptied file is applied once it has stayed empty.
    std::fs::File::create(&path).unwrap();
    wait_for(Duration::from_secs(10), || {
        let m = query(server.dns, "extra.backhaul.", RecordType::A);
        (m.metadata.response_code == ResponseCode::NXDomain).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the empty file was never applied; logs:\n{}",
            server.log_text()
        )
    });
}

/// The rhythm of a script rewriting in place on a slow disk: empty for 300 ms, then written,
/// twenty times 0.3 s apart. Looks at the file may find it empty each time, but it never
/// stayed empty and unchanged for the grace period: no query gets NXDOMAIN.
#[test]
fn a_file_emptied_and_written_again_and_again_is_never_served_empty() {
    let records = "extra A 10.147.17.77\n";
    let (server, _) = start("", "[records]\nzone_file = \"records.zone\"\n\n", |dir| {
        std::fs::write(dir.join("records.zone"), records).unwrap()
    });
    let path = server.path("records.zone");
    // The claim holds for a file never empty for as long as the grace period (2 s). On a
    // machine so loaded that this test's own sleeps of 300 ms stretch past 1.5 s, the file
    // really was empty that long and may apply: such a run proves nothing, and is run again.
    for _ in 0..5 {
        server.wait_answer("extra.backhaul.", RecordType::A);
        let load = Load::of(server.dns, "extra.backhaul.");
        let mut longest = Duration::ZERO;
        for _ in 0..20 {
            let emptied = std::time::Instant::now();
            std::fs::File::create(&path).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            std::fs::write(&path, records).unwrap();
            longest = longest.max(emptied.elapsed());
            std::thread::sleep(Duration::from_millis(300));
        }
        // Past the grace period after the last write: whatever was going to apply has.
        std::thread::sleep(Duration::from_millis(2500));
        let (answered, wrong) = load.finish_answers();
        if longest > Duration::from_millis(1500) {
            eprintln!("the file stayed empty for {longest:?} once (a loaded machine): again");
            continue;
        }
        assert!(answered > 0);
        let log: Vec<String> = (server.log_text().lines())
            .filter(|l| l.contains("reload") || l.contains("zone updated"))
            .map(str::to_owned)
            .collect();
        assert_eq!(
            wrong,
            0,
            "{wrong} wrong answers of {} (longest empty: {longest:?}); log:\n{}",
            answered + wrong,
            log.join("\n")
        );
        return;
    }
    panic!("in five runs this machine never rewrote the file within 1.5 s");
}

/// A file the records file `$INCLUDE`s is watched like the records file itself.
#[test]
fn an_included_file_is_watched_too() {
    let (server, _) = start("", "[records]\nzone_file = \"records.zone\"\n\n", |dir| {
        std::fs::create_dir(dir.join("more")).unwrap();
        std::fs::write(dir.join("records.zone"), "$INCLUDE more/hosts.zone\n").unwrap();
        std::fs::write(dir.join("more/hosts.zone"), "one A 10.147.17.61\n").unwrap();
    });
    server.wait_answer("one.backhaul.", RecordType::A);
    replace_by_rename(
        &server.path("more/hosts.zone"),
        "one A 10.147.17.61\ntwo A 10.147.17.62\n",
    );
    server.wait_answer("two.backhaul.", RecordType::A);
}
