//! push_dns: off by default; when on, Central's DNS settings point at this server.

use std::time::Duration;

use crate::common::*;
use hickory_proto::rr::RecordType;

fn posts(fake: &FakeCentral) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {} {}", r.method, r.path, r.body))
        .collect()
}

fn wait_polls(fake: &FakeCentral, n: usize) {
    let start = fake.requests().len();
    wait_for(Duration::from_secs(10), || {
        (fake.requests().len() >= start + n).then_some(())
    })
    .expect("server keeps polling");
}

#[test]
fn never_touches_dns_settings_by_default() {
    // Even when the server's address is inside the network's routes.
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24", "127.0.0.0/8"], false, false),
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
    );
    let server = Server::start("", &central_network(&fake, "1s"));
    server.wait_answer("db.backhaul.", RecordType::A);
    wait_polls(&fake, 4);
    assert!(posts(&fake).is_empty(), "{:?}", posts(&fake));
}

#[test]
fn pushes_domain_and_servers_once_when_enabled() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24", "127.0.0.0/8"], false, false),
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
    );
    let tables = central_network(&fake, "1s") + "push_dns = true\n";
    let server = Server::start("", &tables);
    server.wait_answer("db.backhaul.", RecordType::A);
    wait_for(Duration::from_secs(5), || {
        (!posts(&fake).is_empty()).then_some(())
    })
    .unwrap_or_else(|| panic!("no push; logs:\n{}", server.log_text()));
    let p = posts(&fake);
    assert_eq!(
        p[0],
        format!(
            "POST /api/v1/network/{NETWORK} {}",
            r#"{"config":{"dns":{"domain":"backhaul","servers":["127.0.0.1"]}}}"#
        )
    );
    assert_eq!(
        fake.state.lock().unwrap().network["config"]["dns"]["domain"],
        "backhaul"
    );
    // Settled: later syncs see the same settings and write nothing.
    wait_polls(&fake, 4);
    assert_eq!(posts(&fake).len(), 1, "{:?}", posts(&fake));
    server.expect_log(Duration::from_secs(1), "push is logged", |l| {
        l["message"] == "pushed DNS settings to the network"
    });
}

#[test]
fn does_not_push_addresses_outside_the_network() {
    // 127.0.0.1 is not inside 10.147.17.0/24: pushing it would point clients at themselves.
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
    );
    let server = Server::start("", &(central_network(&fake, "1s") + "push_dns = true\n"));
    server.wait_answer("db.backhaul.", RecordType::A);
    wait_polls(&fake, 4);
    assert!(posts(&fake).is_empty());
    assert_eq!(
        server.count_logs(|l| l["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("push_dns: none of")),
        1,
        "warned once"
    );
}
