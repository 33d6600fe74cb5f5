//! Central webhooks through the real binary: verified events sync at once, others get 401.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::*;
use hickory_proto::rr::RecordType;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET: &str = "778c6dab5feca625c7831644d18c4d0e4b3a337bff8a1e1c8f938f9cc20e6536";

fn sign(secret_hex: &str, t: u64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&hex::decode(secret_hex).unwrap()).unwrap();
    mac.update(format!("{t},{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// POSTs `body` with an optional signature header; returns the HTTP status.
fn post(addr: SocketAddr, signature: Option<&str>, body: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let sig = signature
        .map(|v| format!("X-ZTC-Signature: {v}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST /webhook HTTP/1.1\r\nHost: hooks\r\nContent-Type: application/json\r\n{sig}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap()
}

fn hook(kind: &str) -> String {
    format!(
        r#"{{"hook_id":"ae76d4c0-c94e-4025-a648-2c504eb90e3c","org_id":"1bb4dc96-f311-4c4a-ac93-551cbc0fa3da","hook_type":"{kind}","network_id":"{NETWORK}","member_id":"a45dc9d260","old_config":{{}},"new_config":{{}}}}"#
    )
}

#[test]
fn verified_events_sync_at_once_and_everything_else_is_refused() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("webhook.secret"), format!("{SECRET}\n")).unwrap();
    // Polling every hour: anything faster than that is the webhook's doing.
    let tables = format!(
        "[webhook]\nlisten = \"127.0.0.1:0\"\nsecret_file = \"webhook.secret\"\n\n{}",
        central_network(&fake, "1h")
    );
    let server = Server::start_in(dir, "", &tables);
    server.wait_answer("db.backhaul.", RecordType::A);
    let line = server.expect_log(
        Duration::from_secs(5),
        "the webhook endpoint listening",
        |l| l["message"] == "webhook endpoint listening",
    );
    let hooks: SocketAddr = line["address"].as_str().unwrap().parse().unwrap();

    fake.set_members(vec![member(
        "a45dc9d260",
        "database",
        true,
        1,
        &["10.147.17.2"],
    )]);
    let body = hook("MEMBER_CONFIG_CHANGED");
    let before = fake.requests().len();
    // Unsigned, tampered, stale, wrong secret: 401, and no sync.
    assert_eq!(post(hooks, None, &body), 401);
    let sig = sign(SECRET, now(), &body);
    assert_eq!(
        post(hooks, Some(&sig), &body.replace("a45dc9d260", "a45dc9d261")),
        401
    );
    assert_eq!(
        post(hooks, Some(&sign(SECRET, now() - 600, &body)), &body),
        401
    );
    let other = "00".repeat(32);
    assert_eq!(post(hooks, Some(&sign(&other, now(), &body)), &body), 401);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        fake.requests().len(),
        before,
        "rejected hooks must not trigger a sync"
    );

    // A verified event: synced at once.
    assert_eq!(post(hooks, Some(&sig), &body), 200);
    server.wait_answer("database.backhaul.", RecordType::A);
    // The same delivery again (captured and replayed within the tolerance): refused.
    assert_eq!(post(hooks, Some(&sig), &body), 401);
    server.expect_log(Duration::from_secs(5), "a replay refused", |l| {
        l["reason"] == "Replayed"
    });
    // Thousands of signatures over a large body: refused before any HMAC is computed (each
    // used to cost one over the whole body, seconds of CPU per request).
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(1 << 20));
    let many = format!("t={}{}", now(), ",v1=00".repeat(5000));
    assert_eq!(post(hooks, Some(&many), &big), 401);
    server.expect_log(Duration::from_secs(5), "too many signatures refused", |l| {
        l["reason"] == "Malformed"
    });
    // Verified events that change no names are accepted (so Central does not retry) and ignored.
    assert_eq!(
        post(
            hooks,
            Some(&sign(SECRET, now(), &hook("ORG_INVITE_SENT"))),
            &hook("ORG_INVITE_SENT")
        ),
        200
    );
}
