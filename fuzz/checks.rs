//! What each fuzz target checks, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`, on
//! nightly) and by `cargo test` (`tests/integration/fuzz_corpora.rs`, on stable), which
//! replays every corpus and regression file through the same functions.
//!
//! Each function takes arbitrary bytes and panics only if backhaul-dns misbehaves: a panic
//! inside the library, or a reply that breaks what every reply must satisfy.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use backhaul_dns::config::{self, Config};
use backhaul_dns::dns::answer::{respond, Outcome, Policy, Transport, MAX_UDP_PAYLOAD};
use backhaul_dns::dns::context::Context;
use backhaul_dns::dns::request::{self, Action};
use backhaul_dns::dns::rules::{Rules, Surroundings};
use backhaul_dns::dns::ZoneIndex;
use backhaul_dns::ids::NetworkId;
use backhaul_dns::records::{self, FileRecords};
use backhaul_dns::view::View;
use backhaul_dns::zerotier::{file, NetworkSnapshot};
use backhaul_dns::zone::{self, SerialBook, Settings};
use hickory_proto::rr::Name;

const NETWORK: &str = "8056c2e21c000001";

fn domain() -> Name {
    Name::from_ascii("backhaul.").unwrap()
}

fn network() -> config::Network {
    config::Network {
        id: NETWORK.parse().unwrap(),
        domain: domain(),
        source: config::Source::File {
            members_file: "/dev/null".into(),
        },
        poll_interval: Duration::from_secs(30),
        include_unauthorized: false,
        push_dns: false,
        wildcard: Vec::new(),
    }
}

fn settings() -> Settings {
    Settings {
        ttl: 60,
        negative_ttl: 30,
        nameserver: domain(),
        nameserver_addresses: vec!["10.147.17.1".parse().unwrap(), "fd00::1".parse().unwrap()],
        soa: config::Soa::default(),
        services: services(),
        scopes: scopes(),
        catalog: Name::from_ascii("catalog.invalid.").ok(),
    }
}

/// Scopes of every kind, so that member data from the fuzzer goes through scope selection
/// (tags, node ids, globs, networks) and the hidden-name masks.
fn scopes() -> Vec<config::Scope> {
    let tag = |t: &str, v: &str| {
        config::Selector::Tag(config::TagMatch {
            tag: config::TagKey::Name(t.into()),
            value: config::TagKey::Name(v.into()),
        })
    };
    let glob = |g: &str| config::Selector::Glob(glob::Pattern::new(g).unwrap());
    vec![
        config::Scope {
            name: "dev".into(),
            clients: vec![
                config::ScopeClient::Members(tag("env", "dev")),
                config::ScopeClient::Net("10.147.17.0/28".parse().unwrap()),
            ],
            hide: vec![tag("env", "prod"), glob("*.prod"), glob("pg*")],
        },
        config::Scope {
            name: "ops".into(),
            clients: vec![config::ScopeClient::Members(glob("ops-*"))],
            hide: vec![config::Selector::Node("a45dc9d260".parse().unwrap())],
        },
    ]
}

/// Services of every kind, so that member data from the fuzzer goes through service
/// selection too (tags, globs, descriptions).
fn services() -> Vec<config::Service> {
    let service =
        |name: &str, tag: Option<config::TagMatch>, members: Vec<config::MemberPattern>| {
            config::Service {
                label: name.into(),
                name: Name::from_ascii(format!("{name}.backhaul.")).unwrap(),
                network: None,
                tag,
                members,
                policy: config::Policy::All,
                port: Some(5432),
                protocol: "tcp".into(),
                check: config::Check::None,
                interval: Duration::from_secs(5),
                fall: 2,
                rise: 2,
                max_age: Duration::from_secs(120),
                ttl: 5,
            }
        };
    let named = |t: &str, v: &str| config::TagMatch {
        tag: config::TagKey::Name(t.into()),
        value: config::TagKey::Name(v.into()),
    };
    let numeric = config::TagMatch {
        tag: config::TagKey::Number(1000),
        value: config::TagKey::Number(1),
    };
    let glob = config::MemberPattern::Glob(glob::Pattern::new("web-*").unwrap());
    let node = config::MemberPattern::Node("a45dc9d260".parse().unwrap());
    vec![
        service("pg", Some(named("role", "pg")), Vec::new()),
        config::Service {
            policy: config::Policy::First,
            ..service("www.prod", None, vec![glob, node])
        },
        service("cache", None, Vec::new()),
        service("numeric", Some(numeric), Vec::new()),
    ]
}

/// Builds and compiles the backhaul view as the server does (serials stamped).
fn compile(snapshot: Option<&NetworkSnapshot>, files: &FileRecords) -> ZoneIndex {
    let net = network();
    let inputs = [zone::Input {
        network: &net,
        snapshot,
    }];
    let mut zones = zone::build(&inputs, &settings(), files, &Default::default());
    SerialBook::default().stamp(&mut zones, 1_700_000_000, &settings());
    // Service names answer from their live table, as in the server (every member up).
    let services = backhaul_dns::services::Services::one_shot();
    services.plan(zones.services.clone());
    ZoneIndex::compile(&zones).with_live(services.live())
}

/// The zone the query targets answer from: members with names, IPv6, a records file with
/// CNAME chains, DNAMEs (one into a member, one into itself, one that overflows names), a
/// wildcard, SRV, MX and TXT.
fn fixture() -> &'static ZoneIndex {
    static ZONE: OnceLock<ZoneIndex> = OnceLock::new();
    ZONE.get_or_init(|| {
        let members = serde_json::json!({
            "network": {"id": NETWORK, "config": {
                "routes": [{"target": "10.147.17.0/24", "via": null}],
                "v6AssignMode": {"6plane": true, "rfc4193": true, "zt": false}}},
            "members": [
                {"nodeId": "a45dc9d260", "name": "db", "description": "services: cache\ndns: postgres",
                 "config": {"authorized": true, "creationTime": 1, "ipAssignments": ["10.147.17.2"],
                 "tags": [[1000, 1]]}},
                {"nodeId": "e610b78bf1", "name": "web.prod", "description": "dns: *", "config": {"authorized": true,
                 "creationTime": 2, "ipAssignments": ["10.147.17.3", "10.147.17.4"]}},
            ],
        });
        let id: NetworkId = NETWORK.parse().unwrap();
        let snapshot = file::parse(members.to_string().as_bytes(), id).unwrap();
        let far = ["x".repeat(60), "y".repeat(60), "z".repeat(60), "w".repeat(50)].join(".");
        let text = format!(
            "db2 CNAME db\nloop1 CNAME loop2\nloop2 CNAME loop1\nout CNAME www.example.com.\n\
             *.dev A 10.147.17.60\n_pg._tcp SRV 0 0 5432 db\n@ MX 10 db\n@ TXT \"v=spf1 -all\"\n\
             old DNAME web.prod\nloopd DNAME x.loopd\nfar DNAME {far}.\n"
        );
        let parsed = records::parse(&text, &domain(), &[], 60).unwrap();
        let files = FileRecords {
            private: parsed.into_iter().map(|r| r.record).collect(),
            public: None,
            included: Vec::new(),
            delegations: Vec::new(),
        };
        compile(Some(&snapshot), &files)
    })
}

/// What every reply must satisfy: a DNS message that parses, with the query's ID, QR set,
/// its question echoed, and (over UDP) within the size the client can take.
fn check_reply(query: &[u8], reply: &[u8], transport: Transport) {
    assert!(reply.len() >= 12, "a reply shorter than a header");
    assert_eq!(reply[0..2], query[0..2], "the reply has the query's ID");
    assert_eq!(reply[2] & 0x80, 0x80, "QR is set");
    if transport == Transport::Udp {
        assert!(
            reply.len() <= usize::from(MAX_UDP_PAYLOAD),
            "a UDP reply over 1232 bytes"
        );
        let edns = hickory_proto::op::Message::from_vec(query)
            .ok()
            .and_then(|m| m.edns);
        if edns.is_none() {
            assert!(reply.len() <= 512, "a reply over 512 bytes without EDNS");
        }
    }
    let message = match hickory_proto::op::Message::from_vec(reply) {
        Ok(m) => m,
        // Valid DNS that hickory's client refuses: a record with empty RDATA (RFC 3597
        // generic `\# 0`, or APL with no items). The header checks above still hold.
        Err(e) if e.to_string().contains("length 0") => return,
        Err(e) => panic!("the reply does not parse: {e}"),
    };
    let qd = u16::from_be_bytes([reply[4], reply[5]]);
    if qd == 1 {
        // The question as the client sent it (its case included).
        let asked = hickory_proto::op::Message::from_vec(query).ok();
        if let Some(asked) = asked.and_then(|m| m.queries.first().cloned()) {
            let q = &message.queries[0];
            assert_eq!(
                q.name().to_string(),
                asked.name().to_string(),
                "question echoed"
            );
            assert_eq!(q.query_type(), asked.query_type());
        }
    }
}

/// The request pipeline ([`request::handle`]) exactly as the listeners run it: over UDP and
/// TCP, in both views, for a client inside the listening subnet (names resolved for it), one
/// outside (REFUSED), and a secondary outside that may transfer (signed with `xfr` or not),
/// with rate limiting on. Every reply must be a reply to the request.
pub fn query(data: &[u8]) {
    let zone = fixture();
    let mut out = Vec::new();
    let inside: IpAddr = "10.147.17.9".parse().unwrap();
    let outside: IpAddr = "192.0.2.1".parse().unwrap();
    let secondary: IpAddr = "198.51.100.7".parse().unwrap();
    for ctx in contexts() {
        let rules = ctx.rules();
        for client in [inside, outside, secondary] {
            for transport in [Transport::Udp, Transport::Tcp] {
                let from = request::Client::new(&rules, zone, client);
                match request::handle(ctx, &rules, zone, data, &from, transport, &mut out) {
                    Action::Reply => check_reply(data, &out, transport),
                    Action::Messages(messages) => {
                        for m in &messages {
                            check_reply(data, m, transport);
                        }
                    }
                    Action::Forward { chain } => {
                        assert!(rules.policy(client).forward, "forwarded for {client}");
                        if chain {
                            check_reply(data, &out, transport);
                        }
                    }
                    Action::Update(pending) => {
                        // Only a signed UPDATE with a key an [[update]] table names.
                        assert!(
                            rules.may_update(&pending.key),
                            "an update for {}",
                            pending.key
                        );
                    }
                    Action::Drop => {}
                }
            }
        }
    }
    if let Ok(req) = backhaul_dns::dns::wire::parse(data) {
        if let Some(at) = req.tsig {
            signed(data, at);
        }
    }
}

/// The contexts of both views, with the rules a config gives them (forwarding on, a TSIG key,
/// a secondary allowed to transfer, rate limiting on).
fn contexts() -> &'static [Context; 2] {
    static CONTEXTS: OnceLock<[Context; 2]> = OnceLock::new();
    CONTEXTS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("backhaul-dns-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("xfr.key"), "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n").unwrap();
        std::fs::write(dir.join("m.json"), "[]").unwrap();
        let text = format!(
            "domain = \"backhaul\"\nstate_dir = \"{dir}\"\n\
             [listen]\naddresses = [\"10.147.17.1\"]\nport = 53\n\
             [forward]\nupstreams = [\"127.0.0.1:9\"]\n\
             [rate_limit]\nresponses_per_second = 5\n\
             [transfer]\nallow = [\"198.51.100.0/24\", {{ address = \"198.51.100.7\", key = \"xfr\" }}]\n\
             [[transfer.key]]\nname = \"xfr\"\nsecret_file = \"{dir}/xfr.key\"\n\
             [[network]]\nid = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"m.json\"\n",
            dir = dir.display()
        );
        let config = Config::parse(&dir.join("fuzz.toml"), &text).unwrap();
        let nets = ["10.147.17.1/24".parse().unwrap()];
        let around = Surroundings {
            nets: &nets,
            delegations: &[],
        };
        let rules = |view| Rules::from_config(&config, view, around, None).unwrap();
        [
            Context::standalone(rules(View::Backhaul)),
            Context::standalone(rules(View::Public)),
        ]
    })
}

/// A request carrying TSIG: checked against a key (whatever it holds, never a panic); an
/// error reply is a reply to it, a valid one gives back the request without its TSIG.
fn signed(data: &[u8], at: usize) {
    use backhaul_dns::config::{TsigAlgorithm, TsigKey};
    use backhaul_dns::dns::tsig::{self, Checked};
    let keys = tsig::Keyring::new(&[TsigKey {
        name: hickory_proto::rr::Name::from_ascii("xfr.").unwrap(),
        algorithm: TsigAlgorithm::HmacSha256,
        secret: backhaul_dns::secret::Secret::new("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="),
    }]);
    match tsig::check(&keys, data, at, 1_700_000_000) {
        Checked::Valid { unsigned, .. } => assert_eq!(unsigned.len(), at),
        Checked::Failed { reply, .. } => check_reply(data, &reply, Transport::Tcp),
        Checked::Malformed => {}
    }
}

/// TCP framing: the bytes as a stream of length-prefixed queries, each answered in turn.
pub fn tcp_stream(data: &[u8]) {
    let zone = fixture();
    let mut rest = data;
    let mut out = Vec::new();
    let policy = Policy {
        allowed: true,
        ..Policy::default()
    };
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let Some(message) = rest.get(2..2 + len) else {
            break;
        };
        if let Outcome::Reply { .. } = respond(zone, message, Transport::Tcp, policy, &mut out) {
            check_reply(message, &out, Transport::Tcp);
        }
        rest = &rest[2 + len..];
    }
}

/// A records (or public) zone file as an operator could write it: read, and if it is taken,
/// built, compiled and queried. Nothing the reader accepts may fail later.
pub fn zone_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = records::parse(text, &domain(), &[], 60) else {
        return;
    };
    let records: Vec<_> = parsed.into_iter().map(|r| r.record).collect();
    let files = FileRecords {
        private: records.clone(),
        public: Some(records.clone()),
        included: Vec::new(),
        delegations: Vec::new(),
    };
    let zone = compile(None, &files);
    let zones = zone::build_public(&records, &settings(), &Default::default());
    let _ = zone::master_file(&zones);
    let mut out = Vec::new();
    let policy = Policy {
        allowed: true,
        ..Policy::default()
    };
    for r in records.iter().take(16) {
        let q = query_for(&r.name.to_ascii(), u16::from(r.record_type()));
        if let Outcome::Reply { .. } = respond(&zone, &q, Transport::Udp, policy, &mut out) {
            check_reply(&q, &out, Transport::Udp);
        }
    }
}

/// A members file (Central's member list JSON): parsed, built and compiled.
pub fn members(data: &[u8]) {
    let id: NetworkId = NETWORK.parse().unwrap();
    let Ok(snapshot) = file::parse(data, id) else {
        return;
    };
    let zone = compile(Some(&snapshot), &FileRecords::default());
    let mut out = Vec::new();
    for m in snapshot.members.iter().take(8) {
        let q = query_for(&format!("zt-{}.backhaul.", m.node), 1);
        let policy = Policy {
            allowed: true,
            ..Policy::default()
        };
        if let Outcome::Reply { .. } = respond(&zone, &q, Transport::Udp, policy, &mut out) {
            check_reply(&q, &out, Transport::Udp);
        }
    }
}

/// The config file: any text is a config or a one-line error.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = std::env::temp_dir();
    if let Err(e) = Config::parse(&dir.join("fuzz.toml"), text) {
        assert!(!e.to_string().contains('\n'), "a multi-line error: {e}");
    }
}

/// The webhook verifier: the first line is the signature header, the rest the body.
pub fn webhook(data: &[u8]) {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let header = std::str::from_utf8(&data[..split]).ok();
    let body = data.get(split + 1..).unwrap_or_default();
    let secrets = vec![vec![7u8; 32], Vec::new()];
    let _ = backhaul_dns::webhook::verify(&secrets, header, body, 1_700_000_000);
}

/// A query for `name` and `rtype` with EDNS (1232 bytes) and RD.
fn query_for(name: &str, rtype: u16) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let label = &label.as_bytes()[..label.len().min(63)];
        q.push(label.len() as u8);
        q.extend_from_slice(label);
    }
    q.push(0);
    q.extend_from_slice(&rtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    q
}

/// A saved IXFR journal as `state_dir` may hold it: the bytes are a journal file's body, and
/// are read back with a correct SHA-256 after them (an edit with its checksum recomputed, as
/// a fuzzer could never forge one) and as they are (damage). Read back or refused, never a
/// panic; one that reads back condenses from every serial it holds, checks against a zone,
/// and writes out to the same bytes.
pub fn journal(data: &[u8]) {
    use backhaul_dns::zone::journal::Journal;
    use sha2::Digest;
    let mut summed = data.to_vec();
    summed.extend_from_slice(&sha2::Sha256::digest(data));
    let _ = Journal::from_bytes(data);
    let Some(journal) = Journal::from_bytes(&summed) else {
        return;
    };
    let froms: Vec<u32> = journal.changes().map(|c| c.from).collect();
    for from in froms {
        if let Some(c) = journal.since(from) {
            let _ = (c.old_soa, c.deleted.len(), c.added.len());
        }
    }
    let empty = backhaul_dns::zone::RecordList::default();
    let _ = journal.leads_to(&empty);
    let again = Journal::from_bytes(&journal.to_bytes()).expect("a journal written reads back");
    assert_eq!(again.len(), journal.len());
    assert_eq!(
        again.to_bytes(),
        journal.to_bytes(),
        "written twice, the same bytes"
    );
}

/// A scratch directory of this process for the checks that read files.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("backhaul-dns-fuzz-{}", std::process::id()))
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A last-good snapshot as `state_dir` may hold it: read back or refused, and when read, built
/// into zones, compiled and queried like a fresh sync (a snapshot from disk passes the same
/// address rules as the API's).
pub fn snapshot(data: &[u8]) {
    use backhaul_dns::state::snapshot::Store;
    let dir = scratch("snapshot");
    let id: NetworkId = NETWORK.parse().unwrap();
    std::fs::create_dir_all(dir.join("snapshots")).unwrap();
    std::fs::write(dir.join("snapshots").join(format!("{NETWORK}.json")), data).unwrap();
    let Some(loaded) = Store::new(&dir).load(id) else {
        return;
    };
    let zone = compile(Some(&loaded.snapshot), &FileRecords::default());
    let policy = Policy {
        allowed: true,
        ..Policy::default()
    };
    let mut out = Vec::new();
    for m in loaded.snapshot.members.iter().take(8) {
        let q = query_for(&format!("zt-{}.backhaul.", m.node), 1);
        if let Outcome::Reply { .. } = respond(&zone, &q, Transport::Udp, policy, &mut out) {
            check_reply(&q, &out, Transport::Udp);
        }
    }
}

/// Zone files that `$INCLUDE` each other: the bytes are split at lines `---` into `a.zone`,
/// `b.zone`, `c.zone` and `sub/d.zone` of one directory (a directory `sub` is there too),
/// then `a.zone` is read as the records file. Loops, missing files, special files and
/// directories are refused with an error; what is read builds, compiles and answers.
pub fn include(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = scratch("include");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let mut parts = text.split("\n---\n");
    for file in ["a.zone", "b.zone", "c.zone", "sub/d.zone"] {
        std::fs::write(dir.join(file), parts.next().unwrap_or_default()).unwrap();
    }
    let Ok(read) = records::load(&dir.join("a.zone"), &domain(), &[], 60) else {
        return;
    };
    let records: Vec<_> = read.into_iter().map(|r| r.record).collect();
    let files = FileRecords {
        private: records.clone(),
        public: None,
        included: Vec::new(),
        delegations: Vec::new(),
    };
    let zone = compile(None, &files);
    let policy = Policy {
        allowed: true,
        ..Policy::default()
    };
    let mut out = Vec::new();
    for r in records.iter().take(16) {
        let q = query_for(&r.name.to_ascii(), u16::from(r.record_type()));
        if let Outcome::Reply { .. } = respond(&zone, &q, Transport::Udp, policy, &mut out) {
            check_reply(&q, &out, Transport::Udp);
        }
    }
}

/// The HTTP endpoint as a connection sees it: the bytes are what a client sends (one request
/// or several, well formed or not) to the real routes behind the real connection handling
/// (limits, the `Host` check), over an in-memory stream. Whatever comes back is HTTP
/// responses; nothing panics.
pub fn http(data: &[u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
    }
    let app = http_app();
    RUNTIME.with(|rt| {
        rt.block_on(async {
            let (client, server) = tokio::io::duplex(1 << 16);
            let (mut from_server, mut to_server) = tokio::io::split(client);
            let peer = "127.0.0.1:40000".parse().unwrap();
            let serving = tokio::spawn(backhaul_dns::http::conn::serve_io(
                server,
                peer,
                app,
                backhaul_dns::http::conn::Guard::ENDPOINT,
                tokio_util::sync::CancellationToken::new(),
            ));
            let (written, read) = tokio::join!(
                async {
                    let _ = to_server.write_all(data).await;
                    let _ = to_server.shutdown().await;
                },
                async {
                    let mut back = Vec::new();
                    let _ = tokio::time::timeout(
                        Duration::from_secs(10),
                        from_server.read_to_end(&mut back),
                    )
                    .await;
                    back
                }
            );
            let () = written;
            let _ = serving.await;
            if !read.is_empty() {
                // HTTP/1.1, or 1.0 to a 1.0 request.
                assert!(
                    read.starts_with(b"HTTP/1.1 ") || read.starts_with(b"HTTP/1.0 "),
                    "not an HTTP response: {:?}",
                    &read[..read.len().min(64)]
                );
            }
        })
    });
}

/// The endpoint's router over a built zone (members, a conflict, a records file), so that the
/// names API, hosts and the status page have something to render.
fn http_app() -> axum::Router {
    static APP: OnceLock<axum::Router> = OnceLock::new();
    APP.get_or_init(|| {
        let dir = scratch("http");
        std::fs::write(dir.join("m.json"), "[]").unwrap();
        let text = format!(
            "state_dir = \"state\"\n[listen]\naddresses = [\"10.147.17.1\"]\n[[network]]\n\
             id = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"m.json\"\n"
        );
        let config = Config::parse(&dir.join("c.toml"), &text).unwrap();
        let telemetry = std::sync::Arc::new(backhaul_dns::metrics::Telemetry::new());
        let mut builder = backhaul_dns::sync::builder::Builder::new(
            &config,
            FileRecords::default(),
            telemetry.clone(),
        );
        let members = serde_json::json!([
            {"nodeId": "a45dc9d260", "name": "db", "description": "dns: postgres",
             "config": {"authorized": true, "creationTime": 1, "ipAssignments": ["10.147.17.2"]}},
            {"nodeId": "e610b78bf1", "name": "db", "config": {"authorized": true,
             "creationTime": 2, "ipAssignments": ["10.147.17.3"]}},
            {"nodeId": "efcc1b0947", "name": "<script>x</script>", "config": {"authorized": false}},
        ]);
        let id: NetworkId = NETWORK.parse().unwrap();
        builder.set(file::parse(members.to_string().as_bytes(), id).unwrap());
        let names = std::sync::Arc::new(backhaul_dns::sync::publish::Names::default());
        names.set(builder.names_source(std::sync::Arc::default(), Default::default()));
        let nets = ["10.147.17.1/24".parse().unwrap()];
        let access = std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(
            backhaul_dns::http::Access::new(&nets, &config),
        ));
        backhaul_dns::http::router(telemetry, names, access)
    })
    .clone()
}

/// `update`: an UPDATE message (its TSIG already checked) worked out on a zone of members and
/// update-written records. Never a panic; when it applies, the change fits the zone it was
/// worked out on, the key's records stay within its limits, and no record a member holds is
/// deleted.
pub fn update(data: &[u8]) {
    use backhaul_dns::config::UpdatePolicy;
    use backhaul_dns::dname::{is_at_or_below, name_wire};
    use backhaul_dns::zone::journal::{patch, Change};
    use backhaul_dns::zone::update::{apply, read, Written, Zone};
    use backhaul_dns::zone::RecordList;
    use hickory_proto::rr::{rdata, Name, RData, Record};
    let Ok(req) = read(data) else { return };
    let n = |s: &str| Name::from_ascii(s).unwrap();
    let apex = name_wire(&n("backhaul."));
    let key = n("k.");
    let policy = UpdatePolicy {
        key: key.clone(),
        names: ["_acme-challenge.*", "dyn*", "*.k8s"]
            .iter()
            .map(|g| glob::Pattern::new(g).unwrap())
            .collect(),
        types: vec![1, 16, 5, 28, 33],
        view: backhaul_dns::view::View::Backhaul,
        max_records: 20,
        max_bytes: 2000,
    };
    let mut mine = RecordList::default();
    mine.push_record(&Record::from_rdata(
        n("_acme-challenge.db.backhaul."),
        60,
        RData::TXT(rdata::TXT::new(vec!["token".into()])),
    ));
    let mut written = Written::new();
    written.insert(key.clone(), mine.sorted());
    let mut zone = RecordList::default();
    for (owner, last) in [("db.backhaul.", 1u8), ("dyn-member.backhaul.", 2)] {
        let a = RData::A(rdata::A::new(10, 147, 17, last));
        zone.push_record(&Record::from_rdata(n(owner), 60, a));
    }
    for r in written.values().flat_map(|l| l.iter()) {
        zone.push(r);
    }
    let mut zone = zone.sorted();
    let soa = rdata::SOA::new(n("backhaul."), n("hostmaster.backhaul."), 7, 1, 1, 2, 1);
    zone.set_first(&Record::from_rdata(n("backhaul."), 60, RData::SOA(soa)));
    let in_zone = |o: &[u8]| is_at_or_below(o, &apex);
    let target = Zone {
        apex: &apex,
        records: &zone,
        in_zone: &in_zone,
    };
    let Ok(applied) = apply(&target, &written, &key, &policy, &req) else {
        return;
    };
    assert!(applied.written.len() <= policy.max_records);
    let bytes: usize = applied
        .written
        .iter()
        .map(|r| r.owner.len() + r.rdata.len())
        .sum();
    assert!(bytes <= policy.max_bytes);
    for r in applied.deleted.iter() {
        assert!(!r.owner.starts_with(b"\x02db") && !r.owner.starts_with(b"\x0adyn-member"));
    }
    let (mut deleted, mut added) = (RecordList::default(), RecordList::default());
    deleted.push(zone.get(0));
    added.push(zone.get(0));
    for r in applied.deleted.iter() {
        deleted.push(r);
    }
    for r in applied.added.iter() {
        added.push(r);
    }
    let change = Change {
        from: 7,
        to: 7,
        deleted,
        added,
    };
    assert!(
        patch(&zone, &change).is_some(),
        "the change fits the zone it was worked out on"
    );
}
