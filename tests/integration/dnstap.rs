//! `[log] dnstap`: Debian's dnstap reader (`dnstap -u SOCKET -y`) receives one query and one
//! response message per query, with the server's identity, the client's address and the
//! exact wire bytes; killing the reader loses no answers, and a new reader gets messages again.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// The dnstap reader, its YAML output collected as it comes.
struct Reader {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Reader {
    fn start(socket: &Path) -> Reader {
        let _ = std::fs::remove_file(socket);
        let mut child = Command::new("dnstap")
            .arg("-u")
            .arg(socket)
            .arg("-y")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnstap (Debian package golang-github-dnstap-golang-dnstap-cli)");
        let out = Arc::new(Mutex::new(String::new()));
        let sink = out.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        wait_for(Duration::from_secs(10), || socket.exists().then_some(()))
            .expect("the reader makes its socket");
        Reader { child, out }
    }

    fn text(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// The YAML documents seen so far (dnstap -y separates them with `---`).
    fn messages(&self) -> Vec<String> {
        (self.text().split("---"))
            .filter(|d| d.contains("type: MESSAGE"))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `key: value` inside the document's `message`.
fn message_field<'a>(doc: &'a str, key: &str) -> Option<&'a str> {
    doc.lines()
        .find_map(|l| l.strip_prefix(&format!("  {key}: ")))
        .map(str::trim)
}

/// The value of `key: value` in a YAML document.
fn field<'a>(doc: &'a str, key: &str) -> Option<&'a str> {
    doc.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .map(str::trim)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn every_query_and_response_reaches_a_dnstap_reader_that_may_come_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("dnstap.sock");
    let reader = Reader::start(&socket);
    let upstream = FakeUpstream::start();
    let dir2 = tempfile::tempdir().unwrap();
    std::fs::write(
        dir2.path().join("m.json"),
        r#"[{"nodeId": "a45dc9d260", "name": "db", "config": {"authorized": true, "creationTime": 1, "ipAssignments": ["10.147.17.2"]}}]"#,
    )
    .unwrap();
    std::fs::write(dir2.path().join("r.zone"), "").unwrap();
    let server = Server::start_in(
        dir2,
        "",
        &format!(
            "[log]\ndnstap = \"{}\"\n[records]\nzone_file = \"r.zone\"\n[forward]\nupstreams = [\"{}\"]\n\
             [[network]]\nid = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"m.json\"\n",
            socket.display(),
            upstream.addr
        ),
    );
    server.wait_answer("db.backhaul.", RecordType::A);
    let q_udp = request("db.backhaul.", RecordType::A).to_vec().unwrap();
    let r_udp = udp_raw(server.dns, &q_udp).expect("an answer");
    let q_tcp = request("nope.backhaul.", RecordType::A).to_vec().unwrap();
    let r_tcp = tcp_raw(server.dns, &q_tcp);
    // Each exchange's two messages, told apart from others by the query id.
    let id = |q: &[u8]| format!("id: {}", u16::from_be_bytes([q[0], q[1]]));
    let of = |q: &[u8]| -> Vec<String> {
        (reader.messages().into_iter())
            .filter(|d| d.contains(&format!("{}\n", id(q))))
            .collect()
    };
    let docs = wait_for(Duration::from_secs(10), || {
        let (a, b) = (of(&q_udp), of(&q_tcp));
        (a.len() == 2 && b.len() == 2).then(|| [a, b].concat())
    })
    .unwrap_or_else(|| {
        panic!(
            "two messages per query:\n{}\n{}",
            reader.text(),
            server.log_text()
        )
    });
    let host = host_name();
    let expect = [
        ("AUTH_QUERY", "UDP", "status: NOERROR", "flags: rd;"),
        (
            "AUTH_RESPONSE",
            "UDP",
            "status: NOERROR",
            "db.backhaul.\t60\tIN\tA\t10.147.17.2",
        ),
        ("AUTH_QUERY", "TCP", "status: NOERROR", "flags: rd;"),
        (
            "AUTH_RESPONSE",
            "TCP",
            "status: NXDOMAIN",
            "flags: qr aa rd",
        ),
    ];
    for (doc, (kind, protocol, status, detail)) in docs.iter().zip(expect) {
        assert_eq!(message_field(doc, "type"), Some(kind), "{doc}");
        assert_eq!(
            field(doc, "identity"),
            Some(format!("\"{host}\"").as_str()),
            "{doc}"
        );
        assert_eq!(
            message_field(doc, "query_address"),
            Some("127.0.0.1"),
            "{doc}"
        );
        assert_eq!(
            message_field(doc, "socket_protocol"),
            Some(protocol),
            "{doc}"
        );
        assert!(
            doc.contains(status) && doc.contains(detail),
            "{kind} {protocol}: {doc}"
        );
    }
    // A forwarded name: the exchange with the client, as a resolver reports it.
    let q_fwd = request("example.com.", RecordType::A).to_vec().unwrap();
    udp_raw(server.dns, &q_fwd).expect("a forwarded answer");
    let fwd = wait_for(Duration::from_secs(10), || {
        let docs = of(&q_fwd);
        (docs.len() == 2).then_some(docs)
    })
    .unwrap_or_else(|| panic!("the forwarded exchange:\n{}", reader.text()));
    assert_eq!(
        message_field(&fwd[0], "type"),
        Some("CLIENT_QUERY"),
        "{}",
        fwd[0]
    );
    assert_eq!(
        message_field(&fwd[1], "type"),
        Some("CLIENT_RESPONSE"),
        "{}",
        fwd[1]
    );
    assert!(fwd[1].contains("192.0.2.10"), "{}", fwd[1]);
    // The responses as sent: the same counts as the bytes the client got.
    for (doc, r) in [(&docs[1], &r_udp), (&docs[3], &r_tcp)] {
        let count = |at: usize| u16::from_be_bytes([r[at], r[at + 1]]);
        let counts = format!(
            "QUERY: {}, ANSWER: {}, AUTHORITY: {}, ADDITIONAL: {}",
            count(4),
            count(6),
            count(8),
            count(10)
        );
        assert!(doc.contains(&counts), "{counts} in {doc}");
    }

    // The reader goes away: every query is still answered.
    drop(reader);
    for _ in 0..50 {
        let m = query(server.dns, "db.backhaul.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    }
    // A new reader gets messages again (the writer reconnects).
    let reader = Reader::start(&socket);
    wait_for(Duration::from_secs(15), || {
        query(server.dns, "db.backhaul.", RecordType::A);
        (!reader.messages().is_empty()).then_some(())
    })
    .unwrap_or_else(|| panic!("no message after reconnecting:\n{}", server.log_text()));
}
