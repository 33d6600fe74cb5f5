//! The config file's shape as serde reads it: unknown keys are errors, and every default is
//! a named function (the example config documents each). [`super::validate`] turns it into
//! a [`super::Config`].

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default = "default_domain")]
    pub(super) domain: String,
    #[serde(default = "default_ttl")]
    pub(super) ttl: String,
    #[serde(default = "default_negative_ttl")]
    pub(super) negative_ttl: String,
    #[serde(default = "default_state_dir")]
    pub(super) state_dir: PathBuf,
    pub(super) listen: Option<RawListen>,
    #[serde(default, rename = "network")]
    pub(super) networks: Vec<RawNetwork>,
    pub(super) webhook: Option<RawWebhook>,
    #[serde(default)]
    pub(super) transfer: RawTransfer,
    #[serde(default)]
    pub(super) forward: RawForward,
    pub(super) records: Option<RawRecords>,
    pub(super) public: Option<RawPublic>,
    pub(super) http: Option<RawHttp>,
    #[serde(default)]
    pub(super) log: RawLog,
    #[serde(default)]
    pub(super) rate_limit: RawRateLimit,
    #[serde(default)]
    pub(super) soa: RawSoa,
    #[serde(default, rename = "service")]
    pub(super) services: Vec<RawService>,
    #[serde(default, rename = "scope")]
    pub(super) scopes: Vec<RawScope>,
    pub(super) follow: Option<RawFollow>,
    #[serde(default, rename = "update")]
    pub(super) updates: Vec<RawUpdate>,
}

/// `[[update]]`: what one TSIG key may change by RFC 2136 UPDATE.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpdate {
    pub(super) key: String,
    #[serde(default)]
    pub(super) names: Vec<String>,
    #[serde(default = "default_update_types")]
    pub(super) types: Vec<String>,
    #[serde(default = "default_update_view")]
    pub(super) view: String,
    #[serde(default = "default_update_max_records")]
    pub(super) max_records: usize,
    #[serde(default = "default_update_max_size")]
    pub(super) max_size: String,
}

fn default_update_types() -> Vec<String> {
    vec!["TXT".to_owned()]
}

fn default_update_view() -> String {
    "private".to_owned()
}

fn default_update_max_records() -> usize {
    1000
}

fn default_update_max_size() -> String {
    "1 MiB".to_owned()
}

/// `[follow]`: serve another server's zones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFollow {
    pub(super) primary: String,
    pub(super) key: Option<String>,
    pub(super) catalog: Option<String>,
    #[serde(default)]
    pub(super) zones: Vec<String>,
}

/// `[[scope]]`: who sees what.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScope {
    pub(super) name: String,
    #[serde(default)]
    pub(super) clients: Vec<String>,
    #[serde(default)]
    pub(super) hide: Vec<String>,
}

/// `[[service]]`: one name for the members that do a job.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) name: String,
    pub(super) network: Option<String>,
    pub(super) tag: Option<String>,
    #[serde(default)]
    pub(super) members: Vec<String>,
    #[serde(default = "default_service_policy")]
    pub(super) policy: String,
    pub(super) port: Option<u16>,
    #[serde(default = "default_service_protocol")]
    pub(super) protocol: String,
    #[serde(default = "default_service_check")]
    pub(super) check: String,
    #[serde(default = "default_service_interval")]
    pub(super) interval: String,
    #[serde(default = "default_service_fall")]
    pub(super) fall: u32,
    #[serde(default = "default_service_rise")]
    pub(super) rise: u32,
    #[serde(default = "default_service_max_age")]
    pub(super) max_age: String,
    #[serde(default = "default_service_ttl")]
    pub(super) ttl: String,
}

/// `[soa]`: what every zone's SOA says besides its serial.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSoa {
    pub(super) mname: Option<String>,
    pub(super) rname: Option<String>,
    pub(super) refresh: Option<String>,
    pub(super) retry: Option<String>,
    pub(super) expire: Option<String>,
}

/// `[rate_limit]`: response rate limiting over UDP.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    pub(super) responses_per_second: Option<u32>,
    pub(super) slip: Option<u32>,
    pub(super) ipv4_prefix: Option<u8>,
    pub(super) ipv6_prefix: Option<u8>,
    #[serde(default)]
    pub(super) inside: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    #[serde(default = "default_http_listen")]
    pub(super) listen: String,
    /// Client CIDRs besides loopback and the ZeroTier subnets.
    #[serde(default)]
    pub(super) allow: Vec<String>,
    /// Listening on a public (or wildcard) address is refused unless this is set.
    #[serde(default)]
    pub(super) allow_public: bool,
    /// /readyz fails while some network's data is older than this ("2m"); off when absent.
    pub(super) ready_max_age: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    #[serde(default)]
    pub(super) queries: bool,
    /// A Frame Streams Unix socket to send dnstap messages to.
    pub(super) dnstap: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecords {
    pub(super) zone_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPublic {
    pub(super) addresses: Vec<String>,
    pub(super) zone_file: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForward {
    pub(super) upstreams: Option<Vec<String>>,
    /// Extra CA certificates (PEM) for `tls://` and `https://` upstreams.
    pub(super) tls_ca_file: Option<PathBuf>,
    /// `[[forward.zone]]`: conditional forwarding.
    #[serde(default)]
    pub(super) zone: Vec<RawForwardZone>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForwardZone {
    pub(super) name: String,
    pub(super) upstreams: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTransfer {
    #[serde(default)]
    pub(super) allow: Vec<RawPeer>,
    #[serde(default)]
    pub(super) notify: Vec<RawPeer>,
    #[serde(default, rename = "key")]
    pub(super) keys: Vec<RawTsigKey>,
    #[serde(default = "default_journal_changes")]
    pub(super) journal_changes: usize,
    #[serde(default = "default_journal_size")]
    pub(super) journal_size: String,
    pub(super) catalog: Option<String>,
}

/// A `[transfer] allow` or `notify` entry: `"10.147.17.7"`, or
/// `{ address = "10.147.17.7", key = "xfr" }` for a secondary that signs with a TSIG key.
#[derive(Debug)]
pub(super) enum RawPeer {
    Address(String),
    Keyed {
        address: String,
        key: Option<String>,
    },
}

impl RawPeer {
    /// The address text, and the key's name when one is given.
    pub(super) fn parts(&self) -> (&str, Option<&String>) {
        match self {
            RawPeer::Address(a) => (a, None),
            RawPeer::Keyed { address, key } => (address, key.as_ref()),
        }
    }
}

/// By hand rather than `untagged`, whose error ("did not match any variant") does not say what
/// an entry may be.
impl<'de> Deserialize<'de> for RawPeer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawPeer, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawPeer;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an address (\"10.147.17.7\") or a table { address = \"10.147.17.7\", key = \"xfr\" }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawPeer, E> {
                Ok(RawPeer::Address(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawPeer, A::Error> {
                let (mut address, mut key) = (None, None);
                while let Some(name) = map.next_key::<String>()? {
                    match name.as_str() {
                        "address" => address = Some(map.next_value::<String>()?),
                        "key" => key = Some(map.next_value::<String>()?),
                        other => {
                            return Err(serde::de::Error::unknown_field(other, &["address", "key"]))
                        }
                    }
                }
                let address = address.ok_or_else(|| serde::de::Error::missing_field("address"))?;
                Ok(RawPeer::Keyed { address, key })
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTsigKey {
    pub(super) name: String,
    #[serde(default = "default_tsig_algorithm")]
    pub(super) algorithm: String,
    pub(super) secret_file: PathBuf,
}

impl Default for RawTransfer {
    fn default() -> RawTransfer {
        RawTransfer {
            allow: Vec::new(),
            notify: Vec::new(),
            keys: Vec::new(),
            journal_changes: default_journal_changes(),
            journal_size: default_journal_size(),
            catalog: None,
        }
    }
}

fn default_journal_changes() -> usize {
    100
}

fn default_journal_size() -> String {
    "8 MiB".to_owned()
}

fn default_tsig_algorithm() -> String {
    "hmac-sha256".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    #[serde(default = "default_webhook_listen")]
    pub(super) listen: String,
    pub(super) secret_file: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListen {
    pub(super) interface: Option<String>,
    pub(super) network: Option<String>,
    pub(super) addresses: Option<Vec<String>>,
    pub(super) authtoken_file: Option<PathBuf>,
    pub(super) local_api_url: Option<String>,
    #[serde(default = "default_port")]
    pub(super) port: u16,
    #[serde(default)]
    pub(super) allow: Vec<String>,
    /// TCP connections at once, all clients together.
    pub(super) tcp_connections: Option<usize>,
    /// TCP connections at once from one client (an IPv4 address, an IPv6 /64).
    pub(super) tcp_per_client: Option<usize>,
    /// How long a TCP connection may wait for its next query.
    pub(super) tcp_idle: Option<String>,
    /// How long writing one answer may take before the connection is closed.
    pub(super) tcp_write_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub(super) id: String,
    #[serde(default = "default_source")]
    pub(super) source: RawSource,
    pub(super) api_url: Option<String>,
    pub(super) token_file: Option<PathBuf>,
    #[serde(default = "default_poll_interval")]
    pub(super) poll_interval: String,
    #[serde(default = "default_request_timeout")]
    pub(super) request_timeout: String,
    pub(super) members_file: Option<PathBuf>,
    pub(super) domain: Option<String>,
    #[serde(default)]
    pub(super) include_unauthorized: bool,
    #[serde(default)]
    pub(super) push_dns: bool,
    /// Members that get `*.<name>`: name globs and `tag:k=v`.
    #[serde(default)]
    pub(super) wildcard: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawSource {
    Central,
    Controller,
    File,
}

pub(super) fn default_domain() -> String {
    "backhaul".into()
}
pub(super) fn default_ttl() -> String {
    "60s".into()
}
pub(super) fn default_negative_ttl() -> String {
    "60s".into()
}
pub(super) fn default_state_dir() -> PathBuf {
    "/var/lib/backhaul-dns".into()
}
pub(super) fn default_port() -> u16 {
    53
}
/// NSD's default (`rrl-ratelimit`): far above what one real resolver sends for errors and
/// NXDOMAIN, far below a reflection flood.
pub(super) fn default_rate_limit() -> u32 {
    200
}
pub(super) fn default_slip() -> u32 {
    2
}
pub(super) fn default_soa_refresh() -> String {
    "4h".into()
}
pub(super) fn default_soa_retry() -> String {
    "1h".into()
}
pub(super) fn default_soa_expire() -> String {
    "14d".into()
}
pub(super) fn default_rate_limit_ipv4_prefix() -> u8 {
    24
}
pub(super) fn default_rate_limit_ipv6_prefix() -> u8 {
    56
}
pub(super) fn default_tcp_connections() -> usize {
    512
}
/// One host's share: a load tool or a busy resolver on one address opens a few dozen (dnsperf
/// in `bench/run.sh` uses 20), far below the 512 in all.
pub(super) fn default_tcp_per_client() -> usize {
    64
}
pub(super) fn default_tcp_idle() -> String {
    "10s".into()
}
pub(super) fn default_tcp_write_timeout() -> String {
    "5s".into()
}
pub(super) fn default_http_listen() -> String {
    "127.0.0.1:9153".into()
}
pub(super) fn default_webhook_listen() -> String {
    "127.0.0.1:9154".into()
}
pub(super) fn default_interface() -> String {
    "zt*".into()
}
pub(super) fn default_authtoken_file() -> PathBuf {
    "/var/lib/zerotier-one/authtoken.secret".into()
}
pub(super) fn default_local_api_url() -> String {
    "http://127.0.0.1:9993".into()
}
pub(super) fn default_source() -> RawSource {
    RawSource::Central
}
pub(super) fn default_api_url() -> String {
    "https://api.zerotier.com/api/v1".into()
}
pub(super) fn default_controller_url() -> String {
    "http://127.0.0.1:9993".into()
}
pub(super) fn default_poll_interval() -> String {
    "30s".into()
}
pub(super) fn default_request_timeout() -> String {
    "20s".into()
}
pub(super) fn default_service_policy() -> String {
    "all".into()
}
pub(super) fn default_service_protocol() -> String {
    "tcp".into()
}
pub(super) fn default_service_check() -> String {
    "none".into()
}
pub(super) fn default_service_interval() -> String {
    "5s".into()
}
/// Two failures in a row before a member leaves: one lost SYN is not an outage.
pub(super) fn default_service_fall() -> u32 {
    2
}
pub(super) fn default_service_rise() -> u32 {
    2
}
/// Central updates `lastSeen` about once a minute for a member that is online.
pub(super) fn default_service_max_age() -> String {
    "2m".into()
}
/// Short: clients must see a failover quickly.
pub(super) fn default_service_ttl() -> String {
    "5s".into()
}
