//! `[http]`: /healthz, /readyz (flipping once every network has a zone) and /metrics whose
//! values move with queries, syncs and reloads; the query log; the `health` subcommand.

use std::time::Duration;

use crate::common::*;
use hickory_proto::rr::RecordType;
use serde_json::Value;

#[test]
fn health_readiness_and_metrics_follow_what_happens() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![
            member("a45dc9d260", "db", true, 1, &["10.147.17.2"]),
            member("e610b78bf1", "web", true, 2, &["10.147.17.3"]),
        ],
    );
    // The API refuses the token at first: not ready, and the token never shows.
    fake.set_fault(Some(Fault::Status(401)));
    let tables = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\n[log]\nqueries = true\n\n{}",
        central_network(&fake, "1s")
    );
    let server = Server::start("", &tables);
    let http = http_addr(&server);
    assert_eq!(get(http, "/healthz"), (200, "ok\n".into()));
    wait_for(Duration::from_secs(10), || {
        let (_, body) = get(http, "/metrics");
        metric(
            &body,
            &format!(
                "backhaul_dns_sync_failures_total{{network=\"{NETWORK}\",reason=\"unauthorized\"}}"
            ),
        )
        .filter(|n| *n >= 1.0)
    })
    .unwrap_or_else(|| panic!("{}", get(http, "/metrics").1));
    let (status, body) = get(http, "/readyz");
    assert_eq!(status, 503, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["networks"][0]["data"], "none");
    assert!(ready["networks"][0]["last_error"]
        .as_str()
        .unwrap()
        .contains("401"));
    for path in ["/readyz", "/metrics"] {
        assert!(!get(http, path).1.contains(TOKEN), "{path} shows the token");
    }
    assert!(!server.log_text().contains(TOKEN));
    assert_eq!(
        metric(&get(http, "/metrics").1, "backhaul_dns_ready"),
        Some(0.0)
    );

    // The API recovers: ready, with the sync time and member count.
    fake.set_fault(None);
    let body = wait_for(Duration::from_secs(15), || {
        let (status, body) = get(http, "/readyz");
        (status == 200).then_some(body)
    })
    .unwrap_or_else(|| panic!("never ready: {}", get(http, "/readyz").1));
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["listening"][0], "127.0.0.1");
    let net = &ready["networks"][0];
    assert_eq!(net["id"], NETWORK);
    assert_eq!(net["data"], "sync");
    assert_eq!(net["members"], 2);
    assert!(net["last_sync"].as_u64().unwrap() > 1_700_000_000);

    // Queries move the counters (by view, type and rcode) and the latency histogram.
    let series_a = "backhaul_dns_queries_total{view=\"backhaul\",type=\"A\",rcode=\"NOERROR\"}";
    let series_nx =
        "backhaul_dns_queries_total{view=\"backhaul\",type=\"AAAA\",rcode=\"NXDOMAIN\"}";
    let before = get(http, "/metrics").1;
    let a0 = metric(&before, series_a).unwrap_or(0.0);
    let count0 = metric(&before, "backhaul_dns_answer_latency_seconds_count").unwrap_or(0.0);
    for _ in 0..5 {
        assert!(is_a(
            &query(server.dns, "db.backhaul.", RecordType::A),
            "10.147.17.2"
        ));
    }
    exchange_tcp(server.dns, &request("nope.backhaul.", RecordType::AAAA));
    let after = get(http, "/metrics").1;
    assert_eq!(metric(&after, series_a), Some(a0 + 5.0), "{after}");
    assert_eq!(metric(&after, series_nx), Some(1.0), "{after}");
    assert_eq!(
        metric(&after, "backhaul_dns_answer_latency_seconds_count"),
        Some(count0 + 6.0)
    );
    let members = format!("backhaul_dns_members{{network=\"{NETWORK}\"}}");
    assert_eq!(metric(&after, &members), Some(2.0));
    assert_eq!(
        metric(
            &after,
            &format!("backhaul_dns_records{{network=\"{NETWORK}\"}}")
        ),
        Some(6.0), // 2 members x (zt- name, name, PTR)
    );
    assert!(
        metric(
            &after,
            &format!("backhaul_dns_syncs_total{{network=\"{NETWORK}\"}}")
        )
        .unwrap()
            >= 1.0
    );
    let serial = metric(
        &after,
        "backhaul_dns_zone_serial{view=\"backhaul\",zone=\"backhaul.\"}",
    )
    .unwrap();
    assert!(serial > 1_700_000_000.0);
    assert_eq!(metric(&after, "backhaul_dns_ready"), Some(1.0));

    // A member change moves the gauge and the serial.
    fake.set_members(vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])]);
    wait_for(Duration::from_secs(10), || {
        (metric(&get(http, "/metrics").1, &members) == Some(1.0)).then_some(())
    })
    .expect("members gauge follows the sync");

    // A rejected reload is counted.
    let path = server.path("backhaul-dns.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        good.replace("ttl", "tll")
            .replace("[log]", "[log]\nbogus = 1"),
    )
    .unwrap();
    wait_for(Duration::from_secs(10), || {
        metric(
            &get(http, "/metrics").1,
            "backhaul_dns_rejected_reloads_total",
        )
        .filter(|n| *n >= 1.0)
    })
    .unwrap_or_else(|| panic!("rejected reload not counted: {}", get(http, "/metrics").1));

    // The query log: client, name, type, rcode, latency.
    let line = server.expect_log(Duration::from_secs(5), "the query log line", |l| {
        l["message"] == "query" && l["name"] == "nope.backhaul." && l["qtype"] == "AAAA"
    });
    assert_eq!(line["rcode"], "NXDOMAIN");
    assert!(line["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(line["latency_us"].is_u64());

    // `health` asks /healthz of the running server.
    let other = tempfile::tempdir().unwrap();
    let cfg = other.path().join("health.toml");
    std::fs::write(other.path().join("m.json"), "[]").unwrap();
    std::fs::write(
        &cfg,
        format!(
            "[listen]\naddresses = [\"127.0.0.1\"]\n[http]\nlisten = \"{http}\"\n\
             [[network]]\nid = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"m.json\"\n"
        ),
    )
    .unwrap();
    let (code, out, err) = run_cli(&["health"], &cfg);
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{err}");
    drop(server);
    let (code, _, err) = run_cli(&["health"], &cfg);
    assert_eq!(code, 1, "{err}");
}

/// `[http] ready_max_age`: /readyz fails (503, the network marked stale) while the API has not
/// answered for longer, though the last good data is still served; ready again once it does.
#[test]
fn readiness_fails_while_the_data_is_older_than_ready_max_age() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
    );
    let tables = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\nready_max_age = \"3s\"\n\n{}",
        central_network(&fake, "1s")
    );
    let server = Server::start("", &tables);
    let http = http_addr(&server);
    let status = || get(http, "/readyz");
    wait_for(Duration::from_secs(15), || {
        (status().0 == 200).then_some(())
    })
    .unwrap_or_else(|| panic!("never ready: {}", status().1));
    fake.set_fault(Some(Fault::Status(503)));
    let body = wait_for(Duration::from_secs(15), || {
        let (code, body) = status();
        (code == 503).then_some(body)
    })
    .unwrap_or_else(|| panic!("still ready with old data: {}", status().1));
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["networks"][0]["stale"], true, "{body}");
    assert_eq!(
        metric(&get(http, "/metrics").1, "backhaul_dns_ready"),
        Some(0.0)
    );
    // The last good data is still answered meanwhile.
    assert!(is_a(
        &query(server.dns, "db.backhaul.", RecordType::A),
        "10.147.17.2"
    ));
    fake.set_fault(None);
    wait_for(Duration::from_secs(15), || {
        (status().0 == 200).then_some(())
    })
    .unwrap_or_else(|| panic!("not ready again: {}", status().1));
}
