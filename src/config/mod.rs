//! Configuration: raw serde types (unknown keys are errors) turned into a validated `Config`.
//!
//! Everything a user can get wrong is caught here, before anything binds or fetches, and
//! reported as one line that names the key or file at fault.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::Name;
use ipnet::IpNet;
use thiserror::Error;

use crate::ids::{NetworkId, NodeId};
use crate::secret::Secret;

mod raw;
mod validate;

use raw::RawConfig;
use validate::Validator;

/// Environment variable that can hold the ZeroTier Central API token instead of `token_file`.
pub const TOKEN_ENV: &str = "BACKHAUL_DNS_TOKEN";

/// A configuration problem, worded for the person editing the file.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the file was read from; relative paths inside it are resolved against its directory.
    pub path: PathBuf,
    /// The default domain (lowercase, fully qualified). It also names the server itself (NS).
    pub domain: Name,
    /// TTL of member records, NS and SOA.
    pub ttl: u32,
    /// SOA MINIMUM: how long resolvers may cache a negative answer (RFC 2308).
    pub negative_ttl: u32,
    pub state_dir: PathBuf,
    pub listen: Listen,
    pub networks: Vec<Network>,
    pub webhook: Option<Webhook>,
    pub transfer: Transfer,
    pub forward: Forward,
    /// `[records] zone_file`: extra records for the backhaul view.
    pub records_file: Option<PathBuf>,
    /// `[public]`: the second view, answered on public addresses.
    pub public: Option<Public>,
    /// `[http] listen`: /healthz, /readyz and /metrics; off when absent.
    pub http: Option<std::net::SocketAddr>,
    /// `[http] allow`: clients besides loopback and the listening interfaces' subnets.
    pub http_allow: Vec<IpNet>,
    /// `[http] ready_max_age`: /readyz fails while some network's data is older.
    pub ready_max_age: Option<Duration>,
    /// `[log] queries`: one log line per query.
    pub log_queries: bool,
    /// `[log] dnstap`: the Unix socket a dnstap reader listens on.
    pub dnstap: Option<PathBuf>,
    /// `[[forward.zone]]`: names under these go to their own upstreams (longest match).
    pub forward_zones: Vec<ForwardZone>,
    /// `[forward] tls_ca_file`: certificates trusted for `tls://` and `https://` upstreams
    /// besides the system's.
    pub forward_ca_file: Option<PathBuf>,
    /// `[rate_limit]`: response rate limiting over UDP.
    pub rate_limit: RateLimit,
    /// `[soa]`: the SOA's names and timers.
    pub soa: Soa,
    /// `[[service]]`: names for the members that do a job, while they are up.
    pub services: Vec<Service>,
    /// `[[scope]]`: who sees which names; the first scope whose clients match decides.
    pub scopes: Vec<Scope>,
    /// `[follow]`: this server serves another server's zones (then it has no networks).
    pub follow: Option<Follow>,
    /// `[[update]]`: what each TSIG key may change by RFC 2136 UPDATE (nothing when empty).
    pub updates: Vec<UpdatePolicy>,
}

/// `[[update]]`: one key's right to change names by UPDATE, in one view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePolicy {
    /// A `[[transfer.key]]` (lowercase, fully qualified).
    pub key: Name,
    /// Owner names it may change, as globs over the name below the zone's apex
    /// (`_acme-challenge.*`), matched without regard to case.
    pub names: Vec<glob::Pattern>,
    /// Record types it may add and delete.
    pub types: Vec<u16>,
    pub view: crate::view::View,
    /// Records and bytes (owners and RDATA) its updates may hold in all.
    pub max_records: usize,
    pub max_bytes: usize,
}

impl UpdatePolicy {
    /// Whether the owner `relative` (the name below the apex, lowercase, no final dot) may
    /// hold records of type `rtype` by this key's updates.
    pub fn allows(&self, relative: &str, rtype: u16) -> bool {
        let options = glob::MatchOptions {
            case_sensitive: false,
            require_literal_separator: false,
            require_literal_leading_dot: false,
        };
        self.types.contains(&rtype) && self.names.iter().any(|g| g.matches_with(relative, options))
    }
}

/// `[follow]`: the primary whose zones this server serves, as a secondary does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follow {
    /// Transfers come from it and NOTIFY is taken from its address only.
    pub primary: std::net::SocketAddr,
    /// The `[[transfer.key]]` requests to it are signed with (and its replies checked with).
    pub key: Option<Name>,
    pub zones: Followed,
}

/// Which of the primary's zones are followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// The member zones of the primary's catalog zone of this name (RFC 9432), as it changes.
    Catalog(Name),
    /// These zones.
    Listed(Vec<Name>),
}

/// `[[scope]]`: the clients it applies to, and the names that do not exist for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub name: String,
    pub clients: Vec<ScopeClient>,
    pub hide: Vec<Selector>,
}

/// One entry of a scope's `clients`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeClient {
    /// Members, by the addresses they have.
    Members(Selector),
    /// Any address in this network.
    Net(IpNet),
}

/// Members (and, for `hide`, names) a scope entry picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `tag:env=prod`: members with this tag value.
    Tag(TagMatch),
    Node(NodeId),
    /// A glob over names below their domain: members' names (`web.prod`, `zt-…`, aliases),
    /// and in `hide` also the records files' owners and services' names.
    Glob(glob::Pattern),
}

/// `[[service]]`: one name for the members that do a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The service's name as written in the config (for logs and labels): `pg`, `pg.prod`.
    pub label: String,
    /// The full name, lowercase: `pg.backhaul.`.
    pub name: Name,
    /// Only this network's members; `None`: every network's.
    pub network: Option<NetworkId>,
    /// `tag = "role=pg"`: members with this tag value.
    pub tag: Option<TagMatch>,
    /// `members = [...]`: member-name globs and node ids, in the order failover follows.
    pub members: Vec<MemberPattern>,
    pub policy: Policy,
    /// With a port, `_<name>._<protocol>` SRV records are served too.
    pub port: Option<u16>,
    pub protocol: String,
    pub check: Check,
    pub interval: Duration,
    pub fall: u32,
    pub rise: u32,
    pub max_age: Duration,
    pub ttl: u32,
}

/// Half of `tag = "role=pg"`: a name (resolved through the network's `tagsByName`) or a number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TagKey {
    Name(String),
    Number(u32),
}

/// `tag = "<tag>=<value>"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagMatch {
    pub tag: TagKey,
    pub value: TagKey,
}

/// One entry of `members = [...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberPattern {
    Node(NodeId),
    /// Over the member's name after the naming rules, below its domain (`db-1`, `web.prod`).
    Glob(glob::Pattern),
}

/// Which of the up members a service name answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Every up member, the order rotated from answer to answer.
    All,
    /// The first up member in the service's order: failover.
    First,
}

/// How a service learns whether a member is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Authorized members are up.
    None,
    /// A TCP connect to the member's address on the service's port.
    Tcp,
    /// Central's `lastSeen` within `max_age`.
    Online,
}

/// `[soa]`: what every zone's SOA says besides its serial (RFC 1035 3.3.13). The timers tell
/// secondaries how often to check for changes; the defaults are in the ranges RFC 1912 2.2
/// recommends, which zone checkers hold zones to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soa {
    /// The primary's name; by default the first NS name at the zone's apex, so it always
    /// names a server that answers.
    pub mname: Option<Name>,
    /// The responsible mailbox as a name (`hostmaster.backhaul.`); by default `hostmaster`
    /// under the domain.
    pub rname: Option<Name>,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
}

impl Default for Soa {
    fn default() -> Soa {
        Soa {
            mname: None,
            rname: None,
            refresh: 4 * 3600,
            retry: 3600,
            expire: 14 * 24 * 3600,
        }
    }
}

/// `[rate_limit]`: how many responses of each class (answers and NODATA per name and type,
/// NXDOMAIN per zone, referrals per delegation, errors, forwarded queries) one client prefix
/// gets per second over UDP (whose source addresses can be spoofed: the limit keeps the
/// server from being a reflector). Over the rate, every `slip`th response goes out empty with
/// TC=1 (a real client retries over TCP, which cannot be spoofed) and the rest are dropped.
/// TCP is never limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Per prefix and kind of response; 0 turns rate limiting off.
    pub responses_per_second: u32,
    /// Every `slip`th limited response is sent truncated; 0 drops them all.
    pub slip: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// Also limit clients inside the listening subnets and `[listen] allow` (off: only
    /// outside clients and the public view are limited).
    pub inside: bool,
}

/// `[public]`: a split-horizon view of `domain` for everyone else. It answers from its zone
/// file only: never a member record, never forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Public {
    pub addresses: Vec<IpAddr>,
    pub zone_file: PathBuf,
}

/// `[forward]`: where names outside our zones are resolved, for allowed clients only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    /// `upstreams = []`: names outside our zones get REFUSED.
    Off,
    /// Configured upstreams.
    To(Vec<Upstream>),
    /// No `upstreams` key: the nameservers in /etc/resolv.conf that are not this server.
    ResolvConf,
}

/// `[[forward.zone]]`: conditional forwarding. Names at or under `name` (outside our zones)
/// are resolved through `upstreams` instead of `[forward] upstreams`, for the same clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardZone {
    /// Lowercase, fully qualified.
    pub name: Name,
    pub upstreams: Vec<Upstream>,
}

/// One upstream resolver: its address, and how queries travel to it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Upstream {
    pub addr: std::net::SocketAddr,
    pub transport: UpstreamTransport,
}

/// Plain DNS (UDP, TCP when truncated), DNS over TLS (RFC 7858) or over HTTPS (RFC 8484).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UpstreamTransport {
    Plain,
    /// `name`: the name its certificate must hold.
    Tls {
        name: String,
    },
    Https {
        name: String,
        path: String,
    },
}

impl Upstream {
    pub fn plain(addr: std::net::SocketAddr) -> Upstream {
        Upstream {
            addr,
            transport: UpstreamTransport::Plain,
        }
    }

    pub fn encrypted(&self) -> bool {
        self.transport != UpstreamTransport::Plain
    }
}

/// As written in the config: `10.0.0.1:53`, `tls://9.9.9.9:853#dns.quad9.net`,
/// `https://9.9.9.9:443/dns-query#dns.quad9.net`.
impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.transport {
            UpstreamTransport::Plain => write!(f, "{}", self.addr),
            UpstreamTransport::Tls { name } => write!(f, "tls://{}#{name}", self.addr),
            UpstreamTransport::Https { name, path } => {
                write!(f, "https://{}{path}#{name}", self.addr)
            }
        }
    }
}

/// `[transfer]`: zone transfers to standard secondaries (NSD, Knot, BIND).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Who may AXFR/IXFR, and with which TSIG key when one is named.
    pub allow: Vec<TransferAllow>,
    /// Secondaries to NOTIFY when a zone's serial changes.
    pub notify: Vec<NotifyTarget>,
    /// `[[transfer.key]]`: TSIG keys (RFC 8945).
    pub keys: Vec<TsigKey>,
    /// The IXFR journal of each zone keeps at most this many changes...
    pub journal_changes: usize,
    /// ...of at most this many bytes (owners and RDATA) in all.
    pub journal_bytes: usize,
    /// `catalog`: the name of an RFC 9432 catalog zone listing every zone served.
    pub catalog: Option<Name>,
}

impl Default for Transfer {
    fn default() -> Transfer {
        Transfer {
            allow: Vec::new(),
            notify: Vec::new(),
            keys: Vec::new(),
            journal_changes: 100,
            journal_bytes: 8 << 20,
            catalog: None,
        }
    }
}

/// One `[transfer] allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferAllow {
    pub network: IpNet,
    /// The key requests from `network` must be signed with (lowercase, fully qualified); when
    /// `None`, the address alone allows (signed requests are still verified and answered
    /// signed).
    pub key: Option<Name>,
}

/// One `[transfer] notify` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    pub address: std::net::SocketAddr,
    /// The key NOTIFYs are signed with: named in the entry, or else the key of the first
    /// `allow` entry holding the address.
    pub key: Option<Name>,
}

/// A TSIG key: its name (lowercase, fully qualified, as both sides spell it), algorithm and
/// secret (the base64 text of `secret_file`, checked to decode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigKey {
    pub name: Name,
    pub algorithm: TsigAlgorithm,
    pub secret: Secret,
}

/// The TSIG algorithms served (RFC 8945 6: HMAC-SHA256 is required; SHA-384 and SHA-512 are
/// what BIND, NSD and Knot offer beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigAlgorithm {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl TsigAlgorithm {
    /// The algorithm's name as config files (and `tsig-keygen -a`, `keymgr -t`) spell it.
    pub fn name(self) -> &'static str {
        match self {
            TsigAlgorithm::HmacSha256 => "hmac-sha256",
            TsigAlgorithm::HmacSha384 => "hmac-sha384",
            TsigAlgorithm::HmacSha512 => "hmac-sha512",
        }
    }

    pub fn from_name(name: &str) -> Option<TsigAlgorithm> {
        [Self::HmacSha256, Self::HmacSha384, Self::HmacSha512]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim_end_matches('.')))
    }
}

/// `[webhook]`: Central webhooks trigger an immediate sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub listen: std::net::SocketAddr,
    /// Hex-decoded signing secrets (one per line in the file, so a secret can be rotated).
    pub secrets: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Where the addresses to answer on come from; they are followed while running.
    pub from: ListenOn,
    /// 0 asks the OS for a free port (UDP first, TCP then takes the same number); useful in tests.
    pub port: u16,
    /// Client networks allowed besides the listening interfaces' own subnets.
    pub allow: Vec<IpNet>,
    /// Caps and timeouts of TCP connections.
    pub tcp: TcpLimits,
}

/// `[listen] tcp_*`: what one client, or all together, can hold of the TCP service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Connections at once, all clients together; more are closed at accept.
    pub connections: usize,
    /// Connections at once from one client (an IPv4 address, an IPv6 /64).
    pub per_client: usize,
    /// Longest wait for the next query (RFC 7766 6.2.3); shortened while the server is busy.
    pub idle: Duration,
    /// Longest time writing one answer may take: a client that does not read is dropped.
    pub write_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenOn {
    /// Every address of the interfaces whose name matches this glob (`zt*`).
    Interface(String),
    /// The interface and addresses the local zerotier-one service reports for this network.
    Network {
        id: NetworkId,
        local_api_url: String,
        authtoken_file: PathBuf,
        token: Secret,
    },
    /// These addresses exactly.
    Addresses(Vec<IpAddr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub id: NetworkId,
    /// Domain this network's members live under (lowercase, fully qualified).
    pub domain: Name,
    pub source: Source,
    pub poll_interval: Duration,
    pub include_unauthorized: bool,
    /// Opt-in: keep the network's DNS settings in Central pointing at this server.
    pub push_dns: bool,
    /// `wildcard = [...]`: members that also get `*.<name>.<domain>` (as `dns: *` asks).
    pub wildcard: Vec<Selector>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// ZeroTier Central (or anything that speaks its API v1).
    Central {
        api_url: String,
        token: Secret,
        /// Whole-request limit, body included.
        timeout: Duration,
    },
    /// A self-hosted zerotier-one controller (its `/controller` API).
    Controller {
        api_url: String,
        token: Secret,
        timeout: Duration,
    },
    /// A Central member-list JSON file on disk.
    File { members_file: PathBuf },
}

impl Source {
    /// "central", "controller" or "file", as the config names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Central { .. } => "central",
            Source::Controller { .. } => "controller",
            Source::File { .. } => "file",
        }
    }
}

impl Config {
    /// Reads, parses and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates config text; `path` names the file in errors and anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            line: e
                .span()
                .map(|s| {
                    text.as_bytes()[..s.start.min(text.len())]
                        .iter()
                        .filter(|b| **b == b'\n')
                        .count()
                        + 1
                })
                .unwrap_or(1),
            message: e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
        })?;
        Validator { path }.config(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/nonexistent/test.toml"), text)
    }

    const MINIMAL: &str = r#"
        [listen]
        addresses = ["127.0.0.1"]
        [[network]]
        id = "8056c2e21c000001"
    "#;

    #[test]
    fn minimal_config_with_env_token() {
        std::env::set_var(TOKEN_ENV, " tok\n");
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.domain.to_ascii(), "backhaul.");
        assert_eq!(c.ttl, 60);
        assert_eq!(c.negative_ttl, 60);
        assert_eq!(c.listen.port, 53);
        assert!(matches!(&c.listen.from, ListenOn::Addresses(a) if a.len() == 1));
        let n = &c.networks[0];
        assert_eq!(n.id.to_string(), "8056c2e21c000001");
        assert_eq!(n.poll_interval, Duration::from_secs(30));
        match &n.source {
            Source::Central { api_url, token, .. } => {
                assert_eq!(api_url, "https://api.zerotier.com/api/v1");
                assert_eq!(token.expose(), "tok");
                assert!(!format!("{token:?}").contains("tok"));
            }
            other => panic!("{other:?}"),
        }
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_key_names_line() {
        let e = err("domain = \"x\"\nbogus = 1\n");
        assert!(e.contains("line 2") && e.contains("bogus"), "{e}");
    }

    #[test]
    fn a_domain_too_long_for_member_names_is_refused() {
        // 4 labels of 60 characters: 245 bytes, fine as a name, but zt-<id> no longer fits.
        let members = tempfile::NamedTempFile::new().unwrap();
        let config = |domain: &str| {
            format!(
                "domain = \"{domain}\"\n[listen]\naddresses = [\"127.0.0.1\"]\n[[network]]\n\
                 id = \"8056c2e21c000001\"\nsource = \"file\"\nmembers_file = \"{}\"\n",
                members.path().display()
            )
        };
        let long = vec!["a".repeat(60); 4].join(".");
        let e = err(&config(&long));
        assert!(e.contains("domain:") && e.contains("too long"), "{e}");
        let fits = [
            "a".repeat(60),
            "a".repeat(60),
            "a".repeat(60),
            "a".repeat(55),
        ]
        .join(".");
        parse(&config(&fits)).unwrap();
    }

    #[test]
    fn bad_duration_names_key() {
        let e = err(&format!("ttl = \"soon\"\n{MINIMAL}"));
        assert!(e.contains("ttl:") && e.contains("\"30s\""), "{e}");
    }

    #[test]
    fn wildcard_listen_refused() {
        let e = err("[listen]\naddresses=[\"0.0.0.0\"]\n[[network]]\nid=\"8056c2e21c000001\"\n");
        assert!(
            e.contains("listen.addresses[0]") && e.contains("open resolver"),
            "{e}"
        );
        let e = err("[listen]\naddresses=[\"::\"]\n[[network]]\nid=\"8056c2e21c000001\"\n");
        assert!(e.contains("every interface"), "{e}");
    }

    #[test]
    fn listen_defaults_to_zerotier_interfaces_and_takes_one_source() {
        std::env::set_var(TOKEN_ENV, "tok");
        let c = parse("[[network]]\nid = \"8056c2e21c000001\"\n").unwrap();
        assert!(matches!(&c.listen.from, ListenOn::Interface(g) if g == "zt*"));
        let e = err("[listen]\ninterface=\"zt*\"\naddresses=[\"10.0.0.1\"]\n[[network]]\nid=\"8056c2e21c000001\"\n");
        assert!(e.contains("only one of"), "{e}");
        let e = err("[listen]\nauthtoken_file=\"x\"\n[[network]]\nid=\"8056c2e21c000001\"\n");
        assert!(
            e.contains("listen.authtoken_file") && e.contains("listen.network"),
            "{e}"
        );
        let e = err("[listen]\nnetwork=\"8056c2e21c000001\"\nauthtoken_file=\"/nonexistent/authtoken.secret\"\n[[network]]\nid=\"8056c2e21c000001\"\n");
        assert!(
            e.contains("cannot read /nonexistent/authtoken.secret"),
            "{e}"
        );
        let e = err("[listen]\nallow=[\"0.0.0.0/0\"]\n[[network]]\nid=\"8056c2e21c000001\"\n");
        assert!(e.contains("open resolver"), "{e}");
        let c = parse("[listen]\nallow=[\"192.0.2.7\", \"10.1.0.0/16\"]\n[[network]]\nid=\"8056c2e21c000001\"\n").unwrap();
        assert_eq!(c.listen.allow.len(), 2);
    }

    #[test]
    fn no_network() {
        let e = err("[listen]\naddresses=[\"127.0.0.1\"]\n");
        assert!(e.contains("no [[network]]"), "{e}");
        // The packaged config's placeholder id.
        let e = err("[[network]]\nid = \"0000000000000000\"\n");
        assert!(
            e.contains("network[0].id: set your ZeroTier network's id"),
            "{e}"
        );
    }

    #[test]
    fn missing_token_file() {
        let e = err(&format!(
            "{MINIMAL}token_file = \"/nonexistent/central.token\"\n"
        ));
        assert!(
            e.contains("network[0].token_file") && e.contains("cannot read"),
            "{e}"
        );
    }

    #[test]
    fn bad_network_id_and_domain() {
        let e = err("[listen]\naddresses=[\"127.0.0.1\"]\n[[network]]\nid=\"xyz\"\n");
        assert!(e.contains("network[0].id"), "{e}");
        let e = err(&format!("domain = \"bad domain\"\n{MINIMAL}"));
        assert!(e.contains("domain:"), "{e}");
    }

    #[test]
    fn transfer_keys_and_peers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("xfr.key"), "c2VjcmV0c2VjcmV0c2VjcmV0\n").unwrap();
        std::fs::write(dir.path().join("bad.key"), "not base64 at all!").unwrap();
        std::fs::write(dir.path().join("m.json"), "[]").unwrap();
        let path = dir.path().join("c.toml");
        let base = "[listen]\naddresses = [\"127.0.0.1\"]\n[[network]]\n\
                    id = \"8056c2e21c000001\"\nsource = \"file\"\nmembers_file = \"m.json\"\n";
        let config =
            |transfer: &str| Config::parse(&path, &format!("{base}\n[transfer]\n{transfer}\n"));
        let key = "[[transfer.key]]\nname = \"XFR\"\nsecret_file = \"xfr.key\"\n";
        let c = config(&format!(
            "allow = [\"10.0.0.1\", {{ address = \"10.0.0.0/24\", key = \"xfr\" }}]\n\
             notify = [\"10.0.0.7\", {{ address = \"192.0.2.1:5300\" }}]\n{key}"
        ))
        .unwrap();
        let t = &c.transfer;
        assert_eq!(
            t.keys[0].name.to_ascii(),
            "xfr.",
            "lowercase, fully qualified"
        );
        assert_eq!(
            t.keys[0].algorithm,
            TsigAlgorithm::HmacSha256,
            "the default"
        );
        assert_eq!(t.allow[0].key, None);
        assert_eq!(
            t.allow[1].key.as_ref().map(Name::to_ascii).as_deref(),
            Some("xfr.")
        );
        // A plain notify target takes the key of the allow entry holding it.
        assert_eq!(t.notify[0].key, t.allow[1].key);
        assert_eq!(t.notify[1].key, None);
        assert_eq!((t.journal_changes, t.journal_bytes), (100, 8 << 20));
        assert!(
            !format!("{c:?}").contains("c2VjcmV0"),
            "the secret never prints"
        );

        let bad = |transfer: String, want: &[&str]| {
            let e = config(&transfer).unwrap_err().to_string();
            assert!(want.iter().all(|w| e.contains(w)), "{e}");
            assert!(
                !e.contains("c2VjcmV0") && !e.contains("not base64 at all"),
                "{e}"
            );
        };
        bad(
            "allow = [{ address = \"10.0.0.1\", key = \"nope\" }]".into(),
            &[
                "transfer.allow[0].key",
                "no [[transfer.key]] is named \"nope\"",
            ],
        );
        bad(
            "[[transfer.key]]\nname = \"x\"\nalgorithm = \"hmac-md5\"\nsecret_file = \"xfr.key\""
                .into(),
            &["transfer.key[0].algorithm", "hmac-sha256"],
        );
        bad(
            "[[transfer.key]]\nname = \"x\"\nsecret_file = \"bad.key\"".into(),
            &["transfer.key[0].secret_file", "base64"],
        );
        bad(
            "[[transfer.key]]\nname = \"x\"\nsecret_file = \"missing.key\"".into(),
            &["transfer.key[0].secret_file", "cannot read"],
        );
        bad(
            format!("{key}{key}"),
            &["transfer.key[1].name", "defined twice"],
        );
        bad(
            "journal_size = \"lots\"".into(),
            &["transfer.journal_size", "8 MiB"],
        );
        bad("journal_changes = 0".into(), &["transfer.journal_changes"]);
        bad(
            "allow = [{ address = \"10.0.0.1\", secret = \"x\" }]".into(),
            &[
                "line 9",
                "unknown field `secret`, expected `address` or `key`",
            ],
        );
        let c = config("journal_size = \"512 KiB\"\njournal_changes = 5").unwrap();
        assert_eq!(
            (c.transfer.journal_changes, c.transfer.journal_bytes),
            (5, 512 << 10)
        );
    }

    #[test]
    fn scopes_read_and_their_mistakes_in_one_line() {
        std::env::set_var(TOKEN_ENV, "tok");
        let with = |tables: &str| format!("{MINIMAL}\n{tables}");
        let c = parse(&with(
            "[[scope]]\nname = \"Dev\"\nclients = [\"tag:env=dev\", \"10.147.20.0/24\", \"10.147.17.9\", \"a45dc9d260\", \"ci-*\"]\n\
             hide = [\"tag:1000=2\", \"*.prod\", \"e610b78bf1\"]\n",
        ))
        .unwrap();
        let s = &c.scopes[0];
        assert_eq!(s.name, "dev");
        assert!(
            matches!(&s.clients[0], ScopeClient::Members(Selector::Tag(t))
            if t.tag == TagKey::Name("env".into()) && t.value == TagKey::Name("dev".into()))
        );
        assert_eq!(
            s.clients[1],
            ScopeClient::Net("10.147.20.0/24".parse().unwrap())
        );
        assert_eq!(
            s.clients[2],
            ScopeClient::Net("10.147.17.9/32".parse().unwrap())
        );
        assert!(matches!(
            &s.clients[3],
            ScopeClient::Members(Selector::Node(_))
        ));
        assert!(matches!(
            &s.clients[4],
            ScopeClient::Members(Selector::Glob(_))
        ));
        assert!(matches!(&s.hide[0], Selector::Tag(t) if t.tag == TagKey::Number(1000)));
        for (tables, says) in [
            ("[[scope]]\nname = \"dev\"\nhide = [\"*.prod\"]\n", "scope[0].clients: is empty"),
            ("[[scope]]\nname = \"dev\"\nclients = [\"tag:env\"]\n", "is not a tag match"),
            ("[[scope]]\nname = \"dev\"\nclients = [\"ci-*\"]\nhide = [\"*\"]\n", "hides every name"),
            (
                "[[scope]]\nname = \"dev\"\nclients = [\"ci-*\"]\n[[scope]]\nname = \"DEV\"\nclients = [\"x\"]\n",
                "two scopes are called \"dev\"",
            ),
            ("[[scope]]\nname = \"a b\"\nclients = [\"x\"]\n", "not a scope name"),
            ("[[scope]]\nname = \"dev\"\nclients = [\"x\"]\nbogus = 1\n", "bogus"),
        ] {
            let e = err(&with(tables));
            assert!(e.contains(says), "{tables}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn a_catalog_is_a_zone_of_its_own() {
        std::env::set_var(TOKEN_ENV, "tok");
        let with = |name: &str| format!("{MINIMAL}\n[transfer]\ncatalog = \"{name}\"\n");
        let c = parse(&with("Catalog.Invalid")).unwrap();
        assert_eq!(c.transfer.catalog.unwrap().to_ascii(), "catalog.invalid.");
        for inside in ["catalog.backhaul", "backhaul", "x..y"] {
            let e = err(&with(inside));
            assert!(e.contains("transfer.catalog"), "{inside}: {e}");
        }
        assert!(err(&with("catalog.backhaul")).contains("overlaps the served domain backhaul."));
    }

    #[test]
    fn a_follower_names_its_primary_and_zones_and_nothing_that_needs_members() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("xfr.key");
        std::fs::write(&key, "c2VjcmV0\n").unwrap();
        let base = format!(
            "[listen]\naddresses = [\"127.0.0.1\"]\n[[transfer.key]]\nname = \"xfr\"\nsecret_file = \"{}\"\n",
            key.display()
        );
        let with = |follow: &str, more: &str| format!("{base}{more}\n[follow]\n{follow}\n");
        let c = parse(&with(
            "primary = \"10.0.0.1\"\nkey = \"xfr\"\ncatalog = \"catalog.invalid\"",
            "",
        ))
        .unwrap();
        let f = c.follow.unwrap();
        assert_eq!(f.primary.to_string(), "10.0.0.1:53");
        assert_eq!(f.key.unwrap().to_ascii(), "xfr.");
        assert!(matches!(f.zones, Followed::Catalog(ref c) if c.to_ascii() == "catalog.invalid."));
        let c = parse(&with(
            "primary = \"10.0.0.1:5300\"\nzones = [\"backhaul\", \"other\"]",
            "",
        ))
        .unwrap();
        assert!(matches!(c.follow.unwrap().zones, Followed::Listed(ref z) if z.len() == 2));
        let net = format!(
            "[[network]]\nid = \"8056c2e21c000001\"\nsource = \"file\"\nmembers_file = \"{}\"\n",
            key.display()
        );
        let scope = "[[scope]]\nname = \"dev\"\nclients = [\"10.0.0.0/8\"]\n";
        for (follow, more, says) in [
            (
                "primary = \"10.0.0.1\"\nzones = [\"a\"]",
                net.as_str(),
                "[[network]] needs member data",
            ),
            (
                "primary = \"10.0.0.1\"\nzones = [\"a\"]",
                scope,
                "[[scope]] needs member data",
            ),
            (
                "primary = \"10.0.0.1\"\nzones = [\"a\"]",
                "[transfer]\ncatalog = \"c.invalid\"",
                "[transfer] catalog",
            ),
            ("primary = \"10.0.0.1\"", "", "name the zones to follow"),
            (
                "primary = \"10.0.0.1\"\nzones = [\"a\"]\ncatalog = \"c\"",
                "",
                "not both",
            ),
            (
                "primary = \"10.0.0.1\"\nzones = [\"a\", \"A\"]",
                "",
                "listed twice",
            ),
            (
                "primary = \"10.0.0.1\"\nzones = [\"a\"]\nkey = \"other\"",
                "",
                "no [[transfer.key]] is named \"other\"",
            ),
            (
                "primary = \"nowhere\"\nzones = [\"a\"]",
                "",
                "follow.primary",
            ),
        ] {
            let e = err(&with(follow, more));
            assert!(e.contains(says), "{follow} {more}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn update_tables_name_a_key_names_and_types_in_one_line_each() {
        std::env::set_var(TOKEN_ENV, "tok");
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("acme.key");
        std::fs::write(&key, "c2VjcmV0\n").unwrap();
        let with = |update: &str| {
            format!(
                "{MINIMAL}\n[[transfer.key]]\nname = \"acme\"\nsecret_file = \"{}\"\n[[update]]\n{update}\n",
                key.display()
            )
        };
        let c = parse(&with("key = \"acme\"\nnames = [\"_acme-challenge.*\"]")).unwrap();
        let u = &c.updates[0];
        assert_eq!(u.types, [16], "TXT by default");
        assert_eq!((u.max_records, u.max_bytes), (1000, 1 << 20));
        assert!(u.allows("_acme-challenge.db", 16));
        assert!(u.allows("_ACME-Challenge.db.prod", 16));
        assert!(!u.allows("db", 16));
        assert!(!u.allows("_acme-challenge.db", 1));
        for (update, says) in [
            (
                "key = \"nope\"\nnames = [\"a\"]",
                "no [[transfer.key]] is named \"nope\"",
            ),
            ("key = \"acme\"", "list the names this key may change"),
            (
                "key = \"acme\"\nnames = [\"*\"]",
                "would let the key write any name",
            ),
            ("key = \"acme\"\nnames = [\"a[\"]", "is not a name glob"),
            (
                "key = \"acme\"\nnames = [\"a\"]\ntypes = [\"SOA\"]",
                "never SOA, NS or DNAME",
            ),
            (
                "key = \"acme\"\nnames = [\"a\"]\ntypes = []",
                "at least one type",
            ),
            (
                "key = \"acme\"\nnames = [\"a\"]\nview = \"public\"",
                "needs a [public] view",
            ),
            (
                "key = \"acme\"\nnames = [\"a\"]\nview = \"other\"",
                "not a view",
            ),
            (
                "key = \"acme\"\nnames = [\"a\"]\nmax_records = 0",
                "at least 1",
            ),
            (
                "key = \"acme\"\nnames = [\"a\"]\nmax_size = \"lots\"",
                "update[0].max_size",
            ),
            ("key = \"acme\"\nnames = [\"a\"]\nbogus = 1", "bogus"),
        ] {
            let e = err(&with(update));
            assert!(e.contains(says), "{update}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        let twice =
            with("key = \"acme\"\nnames = [\"a\"]\n[[update]]\nkey = \"acme\"\nnames = [\"b\"]");
        assert!(err(&twice).contains("two [[update]] tables"));
    }

    #[test]
    fn upstreams_plain_tls_and_https() {
        std::env::set_var(TOKEN_ENV, "tok");
        let with = |list: &str| format!("{MINIMAL}\n[forward]\nupstreams = [{list}]\n");
        let c = parse(&with(
            "\"10.0.0.1\", \"tls://9.9.9.9#dns.quad9.net\", \"https://[2620:fe::fe]/dns-query#dns.quad9.net\", \"https://1.1.1.1:8443#one.one\"",
        ))
        .unwrap();
        let Forward::To(ups) = &c.forward else {
            panic!("{:?}", c.forward)
        };
        let text: Vec<String> = ups.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "10.0.0.1:53",
                "tls://9.9.9.9:853#dns.quad9.net",
                "https://[2620:fe::fe]:443/dns-query#dns.quad9.net",
                "https://1.1.1.1:8443/dns-query#one.one",
            ]
        );
        for (list, says) in [
            ("\"tls://9.9.9.9\"", "name the server's certificate"),
            (
                "\"https://dns.quad9.net/dns-query#dns.quad9.net\"",
                "is not an address",
            ),
            ("\"quic://9.9.9.9#x\"", "is not an upstream kind"),
            ("\"tls://9.9.9.9/path#x\"", "has no path"),
        ] {
            let e = err(&with(list));
            assert!(
                e.contains("forward.upstreams[0]") && e.contains(says),
                "{list}: {e}"
            );
        }
        let e = err(&format!(
            "{MINIMAL}\n[forward]\ntls_ca_file = \"/nonexistent/ca.pem\"\n"
        ));
        assert!(e.contains("forward.tls_ca_file"), "{e}");
    }
}
