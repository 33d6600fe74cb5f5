//! Configuration: raw serde types (unknown keys are errors) turned into a validated `Config`.
//!
//! Everything a user can get wrong is caught here, before anything binds or fetches, and
//! reported as one line that names the key or file at fault.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::Name;
use ipnet::IpNet;
use serde::Deserialize;
use thiserror::Error;

use crate::zerotier::NetworkId;

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

/// A secret (API token) that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
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
    /// `[log] queries`: one log line per query.
    pub log_queries: bool,
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
    To(Vec<std::net::SocketAddr>),
    /// No `upstreams` key: the nameservers in /etc/resolv.conf that are not this server.
    ResolvConf,
}

/// `[transfer]`: zone transfers to standard secondaries (NSD, Knot, BIND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Who may AXFR/IXFR (over TCP).
    pub allow: Vec<IpNet>,
    /// Secondaries to NOTIFY when a zone's serial changes.
    pub notify: Vec<std::net::SocketAddr>,
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

// ---------------------------------------------------------------------------------------------
// Raw file shape. Every default is a named function so the example config can point at it.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_domain")]
    domain: String,
    #[serde(default = "default_ttl")]
    ttl: String,
    #[serde(default = "default_negative_ttl")]
    negative_ttl: String,
    #[serde(default = "default_state_dir")]
    state_dir: PathBuf,
    listen: Option<RawListen>,
    #[serde(default, rename = "network")]
    networks: Vec<RawNetwork>,
    webhook: Option<RawWebhook>,
    #[serde(default)]
    transfer: RawTransfer,
    #[serde(default)]
    forward: RawForward,
    records: Option<RawRecords>,
    public: Option<RawPublic>,
    http: Option<RawHttp>,
    #[serde(default)]
    log: RawLog,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default = "default_http_listen")]
    listen: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default)]
    queries: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecords {
    zone_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublic {
    addresses: Vec<String>,
    zone_file: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForward {
    upstreams: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransfer {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    notify: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    #[serde(default = "default_webhook_listen")]
    listen: String,
    secret_file: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    interface: Option<String>,
    network: Option<String>,
    addresses: Option<Vec<String>>,
    authtoken_file: Option<PathBuf>,
    local_api_url: Option<String>,
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    id: String,
    #[serde(default = "default_source")]
    source: RawSource,
    api_url: Option<String>,
    token_file: Option<PathBuf>,
    #[serde(default = "default_poll_interval")]
    poll_interval: String,
    #[serde(default = "default_request_timeout")]
    request_timeout: String,
    members_file: Option<PathBuf>,
    domain: Option<String>,
    #[serde(default)]
    include_unauthorized: bool,
    #[serde(default)]
    push_dns: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawSource {
    Central,
    Controller,
    File,
}

fn default_domain() -> String {
    "backhaul".into()
}
fn default_ttl() -> String {
    "60s".into()
}
fn default_negative_ttl() -> String {
    "60s".into()
}
fn default_state_dir() -> PathBuf {
    "/var/lib/backhaul-dns".into()
}
fn default_port() -> u16 {
    53
}
fn default_http_listen() -> String {
    "127.0.0.1:9153".into()
}
fn default_webhook_listen() -> String {
    "127.0.0.1:9154".into()
}
fn default_interface() -> String {
    "zt*".into()
}
fn default_authtoken_file() -> PathBuf {
    "/var/lib/zerotier-one/authtoken.secret".into()
}
fn default_local_api_url() -> String {
    "http://127.0.0.1:9993".into()
}
fn default_source() -> RawSource {
    RawSource::Central
}
fn default_api_url() -> String {
    "https://api.zerotier.com/api/v1".into()
}
fn default_controller_url() -> String {
    "http://127.0.0.1:9993".into()
}
fn default_poll_interval() -> String {
    "30s".into()
}
fn default_request_timeout() -> String {
    "20s".into()
}

/// Central allows 20 requests/s on free accounts and a poll costs two; stay far below that.
const MIN_CENTRAL_POLL: Duration = Duration::from_secs(1);
const MIN_FILE_POLL: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------------------

struct Validator<'a> {
    path: &'a Path,
}

impl Validator<'_> {
    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// Relative paths in the file are relative to the file, not to wherever the server was started.
    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.path.parent().unwrap_or_else(|| Path::new(".")).join(p)
        }
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let domain = self.domain("domain", &raw.domain)?;
        let ttl = self.seconds("ttl", &raw.ttl)?;
        let negative_ttl = self.seconds("negative_ttl", &raw.negative_ttl)?;
        let listen = self.listen(raw.listen)?;
        if raw.networks.is_empty() {
            return Err(self.err(
                "network",
                "no [[network]] table: add one with the 16-digit ZeroTier network id",
            ));
        }
        let mut networks = Vec::with_capacity(raw.networks.len());
        for (i, n) in raw.networks.into_iter().enumerate() {
            let net = self.network(i, n, &domain)?;
            if networks.iter().any(|o: &Network| o.id == net.id) {
                return Err(self.err(
                    format!("network[{i}].id"),
                    format!("network {} is listed twice", net.id),
                ));
            }
            networks.push(net);
        }
        let webhook = raw.webhook.map(|w| self.webhook(w)).transpose()?;
        let transfer = self.transfer(raw.transfer)?;
        let forward = match raw.forward.upstreams {
            None => Forward::ResolvConf,
            Some(list) if list.is_empty() => Forward::Off,
            Some(list) => {
                let mut ups = Vec::new();
                for (i, a) in list.iter().enumerate() {
                    ups.push(self.socket_addr(&format!("forward.upstreams[{i}]"), a)?);
                }
                Forward::To(ups)
            }
        };
        let records_file = raw.records.map(|r| self.resolve(&r.zone_file));
        let public = raw.public.map(|p| self.public(p, &listen)).transpose()?;
        let http = raw
            .http
            .map(|h| {
                h.listen.trim().parse().map_err(|_| {
                    self.err(
                        "http.listen",
                        format!(
                            "\"{}\" is not an address:port like \"127.0.0.1:9153\"",
                            h.listen
                        ),
                    )
                })
            })
            .transpose()?;
        Ok(Config {
            http,
            log_queries: raw.log.queries,
            records_file,
            public,
            forward,
            webhook,
            transfer,
            path: self.path.to_owned(),
            domain,
            ttl,
            negative_ttl,
            state_dir: self.resolve(&raw.state_dir),
            listen,
            networks,
        })
    }

    fn domain(&self, key: &str, text: &str) -> Result<Name, ConfigError> {
        let trimmed = text.trim().trim_end_matches('.');
        if trimmed.is_empty() {
            return Err(self.err(key, "must not be empty (for example \"backhaul\")"));
        }
        let ok_chars = trimmed
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        let name = Name::from_ascii(format!("{trimmed}."))
            .ok()
            .filter(|_| ok_chars)
            .ok_or_else(|| {
                self.err(
                    key,
                    format!("\"{text}\" is not a domain name (letters, digits, '-' and dots)"),
                )
            })?;
        // Every member gets zt-<10 hex digits> under it: 14 more bytes of a 255-byte name.
        if crate::dns::wire::name_wire(&name).len() + 14 > 255 {
            return Err(self.err(
                key,
                format!("\"{text}\" is too long to hold member names (zt-<id>.{trimmed} must fit in 255 bytes); use a shorter domain"),
            ));
        }
        Ok(name.to_lowercase())
    }

    fn duration(&self, key: &str, text: &str) -> Result<Duration, ConfigError> {
        humantime::parse_duration(text.trim()).map_err(|e| {
            self.err(
                key,
                format!("\"{text}\" is not a duration ({e}); write it like \"30s\" or \"5m\""),
            )
        })
    }

    fn seconds(&self, key: &str, text: &str) -> Result<u32, ConfigError> {
        let d = self.duration(key, text)?;
        u32::try_from(d.as_secs())
            .ok()
            .filter(|s| *s <= i32::MAX as u32) // RFC 2181 section 8: TTLs fit in 31 bits
            .ok_or_else(|| self.err(key, "is too long (at most 68 years)"))
    }

    fn listen(&self, raw: Option<RawListen>) -> Result<Listen, ConfigError> {
        let mut raw = raw.unwrap_or_else(|| RawListen {
            port: default_port(),
            ..RawListen::default()
        });
        let given = [
            raw.interface.is_some(),
            raw.network.is_some(),
            raw.addresses.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(self.err("listen", "set only one of interface, network and addresses"));
        }
        if raw.network.is_none() {
            for (key, set) in [
                ("listen.authtoken_file", raw.authtoken_file.is_some()),
                ("listen.local_api_url", raw.local_api_url.is_some()),
            ] {
                if set {
                    return Err(self.err(key, "only applies with listen.network"));
                }
            }
        }
        let from = if let Some(id) = raw.network.take() {
            self.listen_network(&id, raw.authtoken_file.take(), raw.local_api_url.take())?
        } else if let Some(list) = raw.addresses.take() {
            ListenOn::Addresses(self.listen_addresses(&list)?)
        } else {
            let glob = raw.interface.take().unwrap_or_else(default_interface);
            if glob.trim().is_empty() || glob::Pattern::new(&glob).is_err() {
                return Err(self.err(
                    "listen.interface",
                    format!("\"{glob}\" is not an interface name or glob like \"zt*\""),
                ));
            }
            ListenOn::Interface(glob)
        };
        let mut allow = Vec::new();
        for (i, a) in raw.allow.iter().enumerate() {
            let key = format!("listen.allow[{i}]");
            let net = a
                .trim()
                .parse::<IpNet>()
                .or_else(|_| a.trim().parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| self.err(&key, format!("\"{a}\" is not an address or CIDR")))?;
            if net.prefix_len() == 0 {
                return Err(self.err(
                    &key,
                    format!("{net} allows everyone and would make this an open resolver"),
                ));
            }
            allow.push(net.trunc());
        }
        Ok(Listen {
            from,
            port: raw.port,
            allow,
        })
    }

    fn listen_addresses(&self, list: &[String]) -> Result<Vec<IpAddr>, ConfigError> {
        if list.is_empty() {
            return Err(self.err(
                "listen.addresses",
                "is empty: list the ZeroTier addresses to answer on, e.g. [\"10.147.17.1\"]",
            ));
        }
        let mut addresses = Vec::new();
        for (i, a) in list.iter().enumerate() {
            let key = format!("listen.addresses[{i}]");
            let ip: IpAddr = a
                .trim()
                .parse()
                .map_err(|_| self.err(&key, format!("\"{a}\" is not an IP address")))?;
            if ip.is_unspecified() {
                return Err(self.err(
                    &key,
                    format!(
                        "{ip} would answer on every interface, including public ones, and make \
                         this an open resolver; list the ZeroTier addresses instead"
                    ),
                ));
            }
            if !addresses.contains(&ip) {
                addresses.push(ip);
            }
        }
        Ok(addresses)
    }

    fn listen_network(
        &self,
        id: &str,
        authtoken_file: Option<PathBuf>,
        local_api_url: Option<String>,
    ) -> Result<ListenOn, ConfigError> {
        let id: NetworkId = id.parse().map_err(|_| {
            self.err(
                "listen.network",
                format!("\"{id}\" is not a ZeroTier network id (16 hex digits)"),
            )
        })?;
        let url = local_api_url.unwrap_or_else(default_local_api_url);
        let url = url.trim().trim_end_matches('/').to_owned();
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(self.err(
                "listen.local_api_url",
                format!("\"{url}\" is not an http URL"),
            ));
        }
        let file = self.resolve(&authtoken_file.unwrap_or_else(default_authtoken_file));
        let token = std::fs::read_to_string(&file).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                "it is readable by root only: run as root, or give this user read access \
                 (for example through the zerotier-one group)"
            } else {
                "it is written by zerotier-one; is zerotier-one installed?"
            };
            self.err(
                "listen.authtoken_file",
                format!("cannot read {}: {e}; {hint}", file.display()),
            )
        })?;
        let token = token.trim().to_owned();
        if token.is_empty() {
            return Err(self.err(
                "listen.authtoken_file",
                format!("{} is empty", file.display()),
            ));
        }
        Ok(ListenOn::Network {
            id,
            local_api_url: url,
            authtoken_file: file,
            token: Secret(token),
        })
    }

    fn network(&self, i: usize, raw: RawNetwork, domain: &Name) -> Result<Network, ConfigError> {
        let key = |k: &str| format!("network[{i}].{k}");
        let id: NetworkId = raw.id.parse().map_err(|_| {
            self.err(
                key("id"),
                format!(
                    "\"{}\" is not a ZeroTier network id (16 hex digits)",
                    raw.id
                ),
            )
        })?;
        let domain = match &raw.domain {
            Some(d) => self.domain(&key("domain"), d)?,
            None => domain.clone(),
        };
        let poll_interval = self.duration(&key("poll_interval"), &raw.poll_interval)?;
        let source = match raw.source {
            RawSource::Central | RawSource::Controller => {
                if raw.members_file.is_some() {
                    return Err(self.err(key("members_file"), "only applies to source = \"file\""));
                }
                if poll_interval < MIN_CENTRAL_POLL {
                    return Err(self.err(
                        key("poll_interval"),
                        "must be at least 1s: API servers rate-limit their clients",
                    ));
                }
                let controller = raw.source == RawSource::Controller;
                let default_url = if controller {
                    default_controller_url()
                } else {
                    default_api_url()
                };
                let text = raw.api_url.unwrap_or(default_url);
                let api_url = text.trim().trim_end_matches('/').to_owned();
                if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
                    return Err(
                        self.err(key("api_url"), format!("\"{text}\" is not an http(s) URL"))
                    );
                }
                let timeout = self.duration(&key("request_timeout"), &raw.request_timeout)?;
                if timeout.is_zero() {
                    return Err(self.err(key("request_timeout"), "must be more than 0s"));
                }
                if controller {
                    let file = raw.token_file.unwrap_or_else(default_authtoken_file);
                    Source::Controller {
                        api_url,
                        token: self.token(&key("token_file"), Some(&file))?,
                        timeout,
                    }
                } else {
                    Source::Central {
                        api_url,
                        token: self.token(&key("token_file"), raw.token_file.as_deref())?,
                        timeout,
                    }
                }
            }
            RawSource::File => {
                if raw.token_file.is_some() || raw.api_url.is_some() {
                    return Err(self.err(
                        key("token_file"),
                        "token_file and api_url only apply to source = \"central\" or \"controller\"",
                    ));
                }
                let file = raw.members_file.ok_or_else(|| {
                    self.err(
                        key("members_file"),
                        "source = \"file\" needs members_file = \"<path to a member-list JSON>\"",
                    )
                })?;
                let members_file = self.resolve(&file);
                if !members_file.is_file() {
                    return Err(self.err(
                        key("members_file"),
                        format!("{} does not exist or is not a file", members_file.display()),
                    ));
                }
                if poll_interval < MIN_FILE_POLL {
                    return Err(self.err(key("poll_interval"), "must be at least 100ms"));
                }
                Source::File { members_file }
            }
        };
        if raw.push_dns && !matches!(source, Source::Central { .. }) {
            return Err(self.err(key("push_dns"), "only works with source = \"central\""));
        }
        Ok(Network {
            id,
            domain,
            source,
            poll_interval,
            include_unauthorized: raw.include_unauthorized,
            push_dns: raw.push_dns,
        })
    }

    fn public(&self, raw: RawPublic, listen: &Listen) -> Result<Public, ConfigError> {
        if raw.addresses.is_empty() {
            return Err(self.err(
                "public.addresses",
                "is empty: list the public addresses that answer for the public view",
            ));
        }
        let mut addresses = Vec::new();
        for (i, a) in raw.addresses.iter().enumerate() {
            let key = format!("public.addresses[{i}]");
            let ip: IpAddr = a
                .trim()
                .parse()
                .map_err(|_| self.err(&key, format!("\"{a}\" is not an IP address")))?;
            if ip.is_unspecified() {
                return Err(self.err(
                    &key,
                    format!("{ip} would also answer on the ZeroTier interface: list the public addresses"),
                ));
            }
            if matches!(&listen.from, ListenOn::Addresses(l) if l.contains(&ip)) {
                return Err(self.err(
                    &key,
                    format!("{ip} is also in listen.addresses: one address serves one view"),
                ));
            }
            if !addresses.contains(&ip) {
                addresses.push(ip);
            }
        }
        Ok(Public {
            addresses,
            zone_file: self.resolve(&raw.zone_file),
        })
    }

    fn transfer(&self, raw: RawTransfer) -> Result<Transfer, ConfigError> {
        let mut allow = Vec::new();
        for (i, a) in raw.allow.iter().enumerate() {
            allow.push(self.cidr(&format!("transfer.allow[{i}]"), a)?);
        }
        let mut notify = Vec::new();
        for (i, a) in raw.notify.iter().enumerate() {
            notify.push(self.socket_addr(&format!("transfer.notify[{i}]"), a)?);
        }
        Ok(Transfer { allow, notify })
    }

    /// `ip` or `ip:port` (`[v6]:port`); port 53 when absent. Wildcards are refused.
    fn socket_addr(&self, key: &str, text: &str) -> Result<std::net::SocketAddr, ConfigError> {
        let t = text.trim();
        let addr = t
            .parse::<std::net::SocketAddr>()
            .or_else(|_| {
                t.parse::<IpAddr>()
                    .map(|ip| std::net::SocketAddr::new(ip, 53))
            })
            .map_err(|_| self.err(key, format!("\"{text}\" is not an address or address:port")))?;
        if addr.ip().is_unspecified() || addr.port() == 0 {
            return Err(self.err(key, format!("\"{text}\" is not a usable address")));
        }
        Ok(addr)
    }

    /// An address or CIDR; /0 (everyone) is refused.
    fn cidr(&self, key: &str, text: &str) -> Result<IpNet, ConfigError> {
        let net = text
            .trim()
            .parse::<IpNet>()
            .or_else(|_| text.trim().parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| self.err(key, format!("\"{text}\" is not an address or CIDR")))?;
        if net.prefix_len() == 0 {
            return Err(self.err(key, format!("{net} would allow everyone")));
        }
        Ok(net.trunc())
    }

    fn webhook(&self, raw: RawWebhook) -> Result<Webhook, ConfigError> {
        let listen = raw.listen.trim().parse().map_err(|_| {
            self.err(
                "webhook.listen",
                format!(
                    "\"{}\" is not an address:port like \"127.0.0.1:9154\"",
                    raw.listen
                ),
            )
        })?;
        let path = self.resolve(&raw.secret_file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.err(
                "webhook.secret_file",
                format!(
                    "cannot read {}: {e} (it must hold the webhook signing secret from Central)",
                    path.display()
                ),
            )
        })?;
        let mut secrets = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let secret = hex::decode(line).map_err(|_| {
                self.err(
                    "webhook.secret_file",
                    format!(
                        "{}: a secret is not hex (Central shows it as a hex string)",
                        path.display()
                    ),
                )
            })?;
            secrets.push(secret);
        }
        if secrets.is_empty() {
            return Err(self.err(
                "webhook.secret_file",
                format!("{} is empty", path.display()),
            ));
        }
        Ok(Webhook { listen, secrets })
    }

    fn token(&self, key: &str, file: Option<&Path>) -> Result<Secret, ConfigError> {
        let token = match file {
            Some(f) => {
                let path = self.resolve(f);
                std::fs::read_to_string(&path).map_err(|e| {
                    self.err(
                        key,
                        format!(
                            "cannot read {}: {e} (it must hold the ZeroTier Central API token)",
                            path.display()
                        ),
                    )
                })?
            }
            None => std::env::var(TOKEN_ENV).map_err(|_| {
                self.err(
                    key,
                    format!(
                        "source = \"central\" needs an API token: set token_file, or the \
                         environment variable {TOKEN_ENV}"
                    ),
                )
            })?,
        };
        let token = token.trim().to_owned();
        if token.is_empty() {
            return Err(self.err(key, "the API token is empty"));
        }
        Ok(Secret(token))
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
}
