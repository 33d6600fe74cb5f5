//! End to end with real components: Debian's `pebble` (a test ACME server) validates DNS-01
//! by asking backhaul-dns's public view, and `certbot` with the `dns-rfc2136` plugin obtains a
//! certificate for a name in it, writing and then removing `_acme-challenge` by signed
//! UPDATE.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
use crate::encrypted::certificates_for;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const SECRET: &str = "c2VjcmV0LXNoYXJlZC1ieS1wcmltYXJ5LWFuZC1zZWNvbmRhcmllcw==";

/// pebble, killed when dropped.
struct Pebble(Child);

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pebble(dir: &Path, acme: u16, management: u16, dns: SocketAddr) -> Pebble {
    certificates_for(dir, "IP:127.0.0.1,DNS:localhost");
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{acme}"),
        "managementListenAddress": format!("127.0.0.1:{management}"),
        "certificate": dir.join("srv.pem"),
        "privateKey": dir.join("srv.key"),
        "httpPort": free_port(),
        "tlsPort": free_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false
    }});
    std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
    let log = std::fs::File::create(dir.join("pebble.log")).unwrap();
    let child = Command::new("pebble")
        .arg("-config")
        .arg(dir.join("pebble.json"))
        .args(["-dnsserver", &dns.to_string()])
        // Validate at once, and take every nonce (certbot retries a rejected one anyway).
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("pebble runs (Debian package pebble; .ci/run installs it)");
    let up = wait_for(Duration::from_secs(15), || {
        std::net::TcpStream::connect(("127.0.0.1", acme)).ok()
    });
    assert!(
        up.is_some(),
        "pebble listens: {}",
        std::fs::read_to_string(dir.join("pebble.log")).unwrap_or_default()
    );
    Pebble(child)
}

#[test]
fn certbot_gets_a_certificate_through_rfc2136_updates_and_cleans_up() {
    let fake = FakeCentral::start(
        network_json(&["10.147.17.0/24"], false, false),
        vec![member("a45dc9d260", "db", true, 1, &["10.147.17.2"])],
    );
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acme.key"), format!("{SECRET}\n")).unwrap();
    std::fs::write(
        dir.path().join("public.zone"),
        "www 300 IN A 203.0.113.10\n",
    )
    .unwrap();
    let config = format!(
        "state_dir = \"state\"\ndomain = \"example.com\"\n[listen]\naddresses = [\"127.0.0.1\"]\nport = {port}\n\
         [forward]\nupstreams = []\n\
         [public]\naddresses = [\"127.0.0.5\"]\nzone_file = \"public.zone\"\n\
         [[transfer.key]]\nname = \"acme\"\nalgorithm = \"hmac-sha256\"\nsecret_file = \"acme.key\"\n\
         [[update]]\nkey = \"acme\"\nnames = [\"_acme-challenge.*\"]\nview = \"public\"\n{}",
        central_network(&fake, "1h")
    );
    let server = Server::launch(dir, &config, &[]).wait_listening();
    let public: SocketAddr = format!("127.0.0.5:{port}").parse().unwrap();
    wait_for(Duration::from_secs(10), || {
        let m = udp_raw(
            public,
            &request("www.example.com.", RecordType::A).to_vec().unwrap(),
        )?;
        let m = hickory_proto::op::Message::from_vec(&m).ok()?;
        (!m.answers.is_empty()).then_some(())
    })
    .expect("the public view answers");

    let work = tempfile::tempdir().unwrap();
    let (acme, management) = (free_port(), free_port());
    let _pebble = pebble(work.path(), acme, management, public);
    let credentials = work.path().join("rfc2136.ini");
    std::fs::write(
        &credentials,
        format!(
            "dns_rfc2136_server = 127.0.0.5\ndns_rfc2136_port = {port}\ndns_rfc2136_name = acme\n\
             dns_rfc2136_secret = {SECRET}\ndns_rfc2136_algorithm = HMAC-SHA256\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).unwrap();
    let w = work.path().display();
    let out = Command::new("certbot")
        .args([
            "certonly",
            "--non-interactive",
            "--agree-tos",
            "--register-unsafely-without-email",
            "--server",
            &format!("https://127.0.0.1:{acme}/dir"),
            "--dns-rfc2136",
            "--dns-rfc2136-propagation-seconds",
            "1",
            "-d",
            "www.example.com",
            "--config-dir",
            &format!("{w}/config"),
            "--work-dir",
            &format!("{w}/work"),
            "--logs-dir",
            &format!("{w}/logs"),
        ])
        .arg("--dns-rfc2136-credentials")
        .arg(&credentials)
        .env("REQUESTS_CA_BUNDLE", work.path().join("ca.pem"))
        .stdin(Stdio::null())
        .output()
        .expect("certbot runs (Debian packages certbot and python3-certbot-dns-rfc2136)");
    let logs = || {
        format!(
            "certbot: {}{}\ncertbot log: {}\npebble: {}\nserver: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(work.path().join("logs/letsencrypt.log")).unwrap_or_default(),
            std::fs::read_to_string(work.path().join("pebble.log")).unwrap_or_default(),
            server.log_text()
        )
    };
    assert!(out.status.success(), "{}", logs());
    let chain = work
        .path()
        .join("config/live/www.example.com/fullchain.pem");
    assert!(chain.exists(), "{}", logs());
    // The challenge was written and removed by updates in the public view.
    let applied = server.count_logs(|l| {
        l["message"] == "update applied" && l["view"] == "public" && l["changed"] == true
    });
    assert!(applied >= 2, "an add and a delete: {}", logs());
    let q = request("_acme-challenge.www.example.com.", RecordType::TXT)
        .to_vec()
        .unwrap();
    let m = hickory_proto::op::Message::from_vec(&udp_raw(public, &q).unwrap()).unwrap();
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "cleaned up: {m:?}"
    );
    // The backhaul view never saw it.
    let m = query(
        server.dns,
        "_acme-challenge.www.example.com.",
        RecordType::TXT,
    );
    assert!(m.answers.is_empty());
}
