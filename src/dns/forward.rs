//! Forwarding: names outside our zones, for allowed clients, are resolved by hickory-resolver
//! (with its cache) through the configured upstreams. [`Plan`] works out which upstreams from
//! the config (never this server itself), [`Forwarders::from_plan`] builds them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::RData;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::Resolver;

use hickory_proto::rr::Name;

use super::answer::{Transport, MAX_UDP_PAYLOAD};
use crate::config::{Config, Forward, ForwardZone, Upstream, UpstreamTransport};
use crate::dname::{labels, name_wire, parent};
use crate::once::LogOnce;

/// Per-attempt upstream timeout: a stub resolver gives up after about 5 s, so answer
/// SERVFAIL before that rather than never.
const UPSTREAM_TIMEOUT: Duration = Duration::from_millis(1500);
const CACHE_ENTRIES: u64 = 10_000;
/// Whatever the upstreams do, the client hears from us by then (SERVFAIL if need be).
const DEADLINE: Duration = Duration::from_secs(3);

pub struct Forwarder {
    resolver: Resolver<TokioRuntimeProvider>,
    /// The upstreams as configured, for the log.
    upstreams: String,
    /// The encrypted ones and their TLS setup: when they fail, a handshake of our own says why
    /// (the resolver reports only that no connection was made).
    encrypted: Vec<Upstream>,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Failures already logged, by kind: said once until the upstreams answer again.
    failures: LogOnce<&'static str>,
}

/// Where names outside our zones go: `[forward] upstreams` and the `[[forward.zone]]`s.
#[derive(Default)]
pub struct Forwarders {
    default: Option<Forwarder>,
    /// Each zone's lowercase wire name and forwarder, most labels first: the first that holds
    /// a name is its longest match.
    zones: Vec<(Vec<u8>, Forwarder)>,
}

impl Forwarders {
    pub fn new(default: Option<Forwarder>, zones: Vec<(Vec<u8>, Forwarder)>) -> Forwarders {
        let mut zones = zones;
        zones.sort_by_key(|(name, _)| std::cmp::Reverse(labels(name).count()));
        Forwarders { default, zones }
    }

    /// No upstream at all: names outside our zones get REFUSED.
    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.zones.is_empty()
    }

    /// The forwarder for `name` (lowercase wire form): the zone with the longest match, else
    /// the default; `None` when neither is configured.
    pub fn pick(&self, name: &[u8]) -> Option<&Forwarder> {
        (self.zones.iter())
            .find(|(zone, _)| is_at_or_under(name, zone))
            .map(|(_, f)| f)
            .or(self.default.as_ref())
    }
}

/// Whether wire name `name` is `zone` or below it (on a label boundary).
fn is_at_or_under(name: &[u8], zone: &[u8]) -> bool {
    let mut at = Some(name);
    while let Some(n) = at {
        if n == zone {
            return true;
        }
        at = parent(n);
    }
    false
}

/// Where resolv.conf is read when `[forward] upstreams` is not set.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Which upstreams serve which names, worked out from the config with this server's own
/// addresses left out. Compared on reload and when the listening addresses change: the
/// forwarders (and their caches) are rebuilt only when this changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    default: Vec<Upstream>,
    /// Each forward zone or resolved delegation: name, upstreams, whether a delegation.
    zones: Vec<(Name, Vec<Upstream>, bool)>,
    /// Upstreams left out because they are this server, with what they were for.
    ourselves: Vec<(Upstream, String)>,
    /// `[forward] tls_ca_file`, for the encrypted upstreams.
    ca_file: Option<std::path::PathBuf>,
    /// Delegations with no glue: referred, never resolved.
    unresolved: Vec<Name>,
    /// resolv.conf was asked for and had nothing usable.
    resolv_conf_empty: bool,
    /// resolv.conf's nameservers that are this server (left out).
    resolv_conf_ours: Vec<IpAddr>,
}

impl Plan {
    /// `own`: the addresses this server answers on (port `config.listen.port`); an upstream
    /// there would be a forwarding loop. `delegations`: the records file's cuts with their
    /// glue, resolved through for clients only when some upstream or forward zone is
    /// configured (otherwise they get referrals: a records file alone never makes the server
    /// send queries to addresses it names).
    pub fn new(config: &Config, own: &[IpAddr], delegations: &[ForwardZone]) -> Plan {
        let mut plan = Plan::default();
        let port = config.listen.port;
        plan.ca_file = config.forward_ca_file.clone();
        let is_us = |u: &Upstream| {
            let ip = u.addr.ip().to_canonical();
            let ours = ip.is_unspecified() || own.iter().any(|o| o.to_canonical() == ip);
            // Only plain DNS on our port reaches our listeners.
            ours && u.addr.port() == port && !u.encrypted()
        };
        let keep = |list: &[Upstream], what: String, plan: &mut Plan| -> Vec<Upstream> {
            let (us, others): (Vec<Upstream>, Vec<Upstream>) =
                list.iter().cloned().partition(|u| is_us(u));
            plan.ourselves
                .extend(us.into_iter().map(|a| (a, what.clone())));
            others
        };
        plan.default = match &config.forward {
            Forward::Off => Vec::new(),
            Forward::To(list) => keep(list, "other names".into(), &mut plan),
            Forward::ResolvConf => {
                let text = std::fs::read_to_string(RESOLV_CONF).unwrap_or_default();
                // This server in resolv.conf is the usual setup for its own host: left out,
                // said at INFO.
                let (kept, ours) = from_resolv_conf(&text, own);
                plan.resolv_conf_ours = ours;
                plan.resolv_conf_empty = kept.is_empty();
                kept.into_iter().map(Upstream::plain).collect()
            }
        };
        for zone in &config.forward_zones {
            let upstreams = keep(&zone.upstreams, zone.name.to_ascii(), &mut plan);
            if !upstreams.is_empty() {
                plan.zones.push((zone.name.clone(), upstreams, false));
            }
        }
        let resolving = !plan.default.is_empty() || !plan.zones.is_empty();
        for zone in delegations.iter().filter(|_| resolving) {
            let upstreams = keep(&zone.upstreams, zone.name.to_ascii(), &mut plan);
            if upstreams.is_empty() {
                plan.unresolved.push(zone.name.clone());
            } else {
                plan.zones.push((zone.name.clone(), upstreams, true));
            }
        }
        plan
    }
}

/// The `nameserver` lines of a resolv.conf, minus addresses of this server (forwarding to
/// ourselves would loop). Returns (kept, skipped).
pub fn from_resolv_conf(text: &str, own: &[IpAddr]) -> (Vec<SocketAddr>, Vec<IpAddr>) {
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        // A scoped IPv6 (`fe80::1%eth0`) cannot be used without its scope: skip it.
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        let ip = ip.to_canonical();
        if own.iter().any(|o| o.to_canonical() == ip) || ip.is_unspecified() {
            skipped.push(ip);
        } else {
            kept.push(SocketAddr::new(ip, 53));
        }
    }
    (kept, skipped)
}

impl Forwarders {
    /// The forwarders of `plan`, saying in the log where names go and which upstreams were
    /// left out.
    pub fn from_plan(plan: &Plan) -> Result<Forwarders, NetError> {
        for (a, what) in &plan.ourselves {
            tracing::warn!(upstream = %a, "not forwarding {what} to {a}: that is this server (it would loop)");
        }
        for ip in &plan.resolv_conf_ours {
            tracing::info!(nameserver = %ip, "not forwarding to {ip} from {RESOLV_CONF}: that is this server (it would loop)");
        }
        // One TLS client setup for every encrypted upstream: the system's roots and the
        // configured CA file.
        let encrypted = (plan.default.iter())
            .chain(plan.zones.iter().flat_map(|(_, u, _)| u))
            .any(Upstream::encrypted);
        let tls = encrypted
            .then(|| tls_config(plan.ca_file.as_deref()))
            .transpose()?;
        if plan.resolv_conf_empty {
            tracing::warn!("no usable nameserver in {RESOLV_CONF}: set [forward] upstreams; names outside our zones get REFUSED");
        }
        let default = if plan.default.is_empty() {
            tracing::info!(
                "no default upstreams: names outside our zones (and the forward zones) get REFUSED"
            );
            None
        } else {
            let list: Vec<String> = plan.default.iter().map(|u| u.to_string()).collect();
            tracing::info!(upstreams = %list.join(", "), "forwarding other names for allowed clients");
            Some(Forwarder::new(&plan.default, tls.as_ref())?)
        };
        for name in &plan.unresolved {
            tracing::info!(zone = %name, "delegation without glue addresses in the records file: clients are referred, not resolved");
        }
        let mut zones = Vec::new();
        for (name, upstreams, delegation) in &plan.zones {
            let list: Vec<String> = upstreams.iter().map(|u| u.to_string()).collect();
            let what = if *delegation {
                "resolving a delegation through its servers"
            } else {
                "forwarding a zone"
            };
            tracing::info!(zone = %name, upstreams = %list.join(", "), "{what}");
            zones.push((name_wire(name), Forwarder::new(upstreams, tls.as_ref())?));
        }
        Ok(Forwarders::new(default, zones))
    }
}

/// The TLS client setup of encrypted upstreams: the system's root certificates plus those of
/// `ca_file`; certificates are checked against the name each upstream gives.
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, NetError> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (_added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| NetError::from(format!("{}: {e}", path.display())))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(NetError::from(format!(
                "{}: no usable certificate",
                path.display()
            )));
        }
    }
    if roots.is_empty() {
        tracing::warn!("no trusted certificates (system roots or [forward] tls_ca_file): tls:// and https:// upstreams will fail");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::from(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A TLS handshake with `upstream` as the resolver makes it: the certificate error, if that is
/// what fails (`None` when the handshake succeeds or fails for another reason).
async fn handshake(
    upstream: &Upstream,
    tls: std::sync::Arc<rustls::ClientConfig>,
) -> Option<String> {
    let (UpstreamTransport::Tls { name } | UpstreamTransport::Https { name, .. }) =
        &upstream.transport
    else {
        return None;
    };
    let server_name = rustls_pki_types::ServerName::try_from(name.clone()).ok()?;
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(upstream.addr).await.ok()?;
        let connector = tokio_rustls::TlsConnector::from(tls);
        match connector.connect(server_name, tcp).await {
            Ok(_) => None,
            Err(e) => {
                let inner = e
                    .get_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| e.to_string());
                inner.contains("certificate").then_some(inner)
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
}

impl Forwarder {
    /// A resolver asking `upstreams` (plain DNS over UDP then TCP, or DNS over TLS or HTTPS
    /// only: an encrypted upstream is never asked in the clear); `tls`: the client setup for
    /// the encrypted ones.
    pub fn new(
        upstreams: &[Upstream],
        tls: Option<&rustls::ClientConfig>,
    ) -> Result<Forwarder, NetError> {
        let servers = upstreams
            .iter()
            .map(|u| {
                let conn = |protocol| {
                    let mut c = ConnectionConfig::new(protocol);
                    c.port = u.addr.port();
                    c
                };
                let protocols = match &u.transport {
                    UpstreamTransport::Plain => {
                        vec![conn(ProtocolConfig::Udp), conn(ProtocolConfig::Tcp)]
                    }
                    UpstreamTransport::Tls { name } => vec![conn(ProtocolConfig::Tls {
                        server_name: name.as_str().into(),
                    })],
                    UpstreamTransport::Https { name, path } => vec![conn(ProtocolConfig::Https {
                        server_name: name.as_str().into(),
                        path: path.as_str().into(),
                    })],
                };
                NameServerConfig::new(u.addr.ip(), true, protocols)
            })
            .collect();
        let config = ResolverConfig::from_parts(None, vec![], servers);
        let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
        if let Some(tls) = tls {
            builder = builder.with_tls_config(tls.clone());
        }
        let opts = builder.options_mut();
        opts.timeout = UPSTREAM_TIMEOUT;
        opts.attempts = 2;
        opts.cache_size = CACHE_ENTRIES;
        opts.ndots = 0; // names arrive fully qualified: never append a search domain
        opts.preserve_intermediates = true; // keep CNAME chains in the answer
                                            // Never this host's /etc/hosts: its names (localhost, the host's own) are not for the
                                            // clients we forward for, and every answer must come from the upstreams.
        opts.use_hosts_file = ResolveHosts::Never;
        Ok(Forwarder {
            resolver: builder.build()?,
            upstreams: (upstreams.iter().map(Upstream::to_string))
                .collect::<Vec<_>>()
                .join(", "),
            failures: LogOnce::default(),
            encrypted: upstreams
                .iter()
                .filter(|u| u.encrypted())
                .cloned()
                .collect(),
            tls: tls.map(|t| std::sync::Arc::new(t.clone())),
        })
    }

    /// Resolves the query and writes the response into `out`. Never fails: upstream trouble is
    /// SERVFAIL, as a resolver's client expects. Returns false when no upstream answered.
    pub async fn answer(&self, query: &[u8], transport: Transport, out: &mut Vec<u8>) -> bool {
        out.clear();
        let Ok(req) = Message::from_vec(query) else {
            return true;
        };
        let Some(q) = req.queries.first().cloned() else {
            return true;
        };
        let mut upstream_ok = true;
        let mut resp = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
        resp.metadata.recursion_desired = req.metadata.recursion_desired;
        resp.metadata.recursion_available = true;
        resp.metadata.checking_disabled = req.metadata.checking_disabled;
        resp.add_query(q.clone());
        let name = q.name().clone();
        let lookup =
            tokio::time::timeout(DEADLINE, self.resolver.lookup(name.clone(), q.query_type()));
        match lookup.await.unwrap_or(Err(NetError::Timeout)) {
            Ok(lookup) => {
                // The resolver answers in lowercase; the client sees its own spelling again.
                for r in lookup.answers() {
                    let mut r = r.clone();
                    if r.name == name {
                        r.name = name.clone();
                    }
                    resp.add_answer(r);
                }
            }
            Err(NetError::Dns(DnsError::NoRecordsFound(nr))) => {
                resp.metadata.response_code = nr.response_code;
                if let Some(soa) = nr.soa {
                    resp.add_authority(soa.into_record_of_rdata());
                }
            }
            Err(e) => {
                self.failed(&e);
                tracing::debug!(name = %name, error = %e, "forwarding failed: SERVFAIL");
                resp.metadata.response_code = ResponseCode::ServFail;
                upstream_ok = false;
            }
        }
        if upstream_ok {
            self.failures.forget(&"failed");
        }
        if let Some(client) = &req.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(MAX_UDP_PAYLOAD);
            edns.set_dnssec_ok(client.flags().dnssec_ok);
            resp.set_edns(edns);
        }
        encode(resp, limit(transport, &req), out);
        upstream_ok
    }

    /// Says once (until the upstreams answer again) why they did not. For an encrypted
    /// upstream a TLS handshake of our own finds out, apart from the answer (which never
    /// waits for it), whether its certificate is the problem (a name it does not hold, an
    /// issuer not trusted), and the line says so.
    fn failed(&self, e: &NetError) {
        if !self.failures.first("failed") {
            return;
        }
        let (encrypted, tls) = (self.encrypted.clone(), self.tls.clone());
        let (upstreams, error) = (self.upstreams.clone(), e.to_string());
        tokio::spawn(async move {
            for u in encrypted.iter().filter(|_| tls.is_some()) {
                let Some(why) = handshake(u, tls.clone()?).await else {
                    continue;
                };
                tracing::warn!(upstream = %u, error = %why,
                    "forwarding failed (SERVFAIL): the upstream's TLS certificate was refused; check the name after '#' and [forward] tls_ca_file");
                return Some(());
            }
            tracing::warn!(upstreams = %upstreams, error = %error,
                "forwarding failed (SERVFAIL): the upstreams did not answer");
            Some(())
        });
    }

    /// Completes our answer (`partial`) whose CNAME chain ends outside our zones: resolves the
    /// last target and appends what the upstreams say, so a stub resolver, which does not
    /// chase CNAMEs itself, gets addresses. The RCODE becomes that of the target (RFC 6604).
    pub async fn complete_chain(
        &self,
        query: &[u8],
        partial: &[u8],
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> bool {
        out.clear();
        let (Ok(req), Ok(mut resp)) = (Message::from_vec(query), Message::from_vec(partial)) else {
            return true;
        };
        let target = resp.answers.iter().rev().find_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.clone()),
            _ => None,
        });
        let (Some(target), Some(q)) = (target, resp.queries.first()) else {
            return true;
        };
        let mut upstream_ok = true;
        // Our part may end in a referral (a CNAME into a delegation): a recursive answer
        // carries the upstreams' records instead.
        resp.authorities.clear();
        resp.additionals.clear();
        let lookup = tokio::time::timeout(DEADLINE, self.resolver.lookup(target, q.query_type()));
        match lookup.await.unwrap_or(Err(NetError::Timeout)) {
            Ok(lookup) => resp.answers.extend(lookup.answers().iter().cloned()),
            Err(NetError::Dns(DnsError::NoRecordsFound(nr))) => {
                resp.metadata.response_code = nr.response_code;
                if let Some(soa) = nr.soa {
                    resp.add_authority(soa.into_record_of_rdata());
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "completing a CNAME chain failed: SERVFAIL");
                resp.metadata.response_code = ResponseCode::ServFail;
                upstream_ok = false;
            }
        }
        resp.metadata.recursion_available = true;
        encode(resp, limit(transport, &req), out);
        upstream_ok
    }
}

/// The largest response the client takes over this transport.
fn limit(transport: Transport, req: &Message) -> usize {
    match (transport, &req.edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(e)) => usize::from(e.max_payload().clamp(512, MAX_UDP_PAYLOAD)),
    }
}

/// Writes the response, or, when it does not fit, the header and question with TC set.
fn encode(mut resp: Message, limit: usize, out: &mut Vec<u8>) {
    let mut bytes = resp.to_vec().unwrap_or_default();
    if bytes.len() > limit {
        resp.answers.clear();
        resp.authorities.clear();
        resp.metadata.truncation = true;
        bytes = resp.to_vec().unwrap_or_default();
    }
    out.extend_from_slice(&bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_without_ourselves() {
        let text = "# generated\nsearch example\nnameserver 10.147.17.1\nnameserver 9.9.9.9\n\
                    nameserver fe80::1%eth0\nnameserver ::1\noptions edns0\n";
        let own: Vec<IpAddr> = vec!["10.147.17.1".parse().unwrap()];
        let (kept, skipped) = from_resolv_conf(text, &own);
        assert_eq!(
            kept,
            ["9.9.9.9:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
        );
        assert_eq!(skipped, own);
    }

    #[test]
    fn the_longest_zone_wins_else_the_default() {
        let f = |port: u16| {
            let upstream = Upstream::plain(SocketAddr::from(([127, 0, 0, 1], port)));
            Forwarder::new(&[upstream], None).unwrap()
        };
        let wire =
            |n: &str| crate::dname::name_wire(&hickory_proto::rr::Name::from_ascii(n).unwrap());
        let all = Forwarders::new(
            Some(f(1)),
            vec![(wire("consul."), f(2)), (wire("dc1.consul."), f(3))],
        );
        // Which one was picked: "default", or the zone's name.
        let which = |name: &str| {
            let picked = all.pick(&wire(name)).unwrap();
            if std::ptr::eq(picked, all.default.as_ref().unwrap()) {
                return "default".to_owned();
            }
            let (zone, _) = all
                .zones
                .iter()
                .find(|(_, z)| std::ptr::eq(z, picked))
                .unwrap();
            crate::dname::wire_to_text(zone)
        };
        assert_eq!(which("example.com."), "default");
        assert_eq!(which("x.dc1.consul."), "dc1.consul.", "the longest match");
        assert_eq!(which("x.consul."), "consul.");
        assert_eq!(which("consul."), "consul.");
        assert_eq!(
            which("notconsul."),
            "default",
            "a label boundary, not a suffix"
        );
        let zones_only = Forwarders::new(None, vec![(wire("consul."), f(2))]);
        assert!(zones_only.pick(&wire("example.com.")).is_none());
        assert!(!zones_only.is_empty() && Forwarders::default().is_empty());
    }
}
