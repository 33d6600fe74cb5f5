//! ZeroTier side: ids, the plain member data a sync produces, and the sources that fetch it.
//!
//! A source turns API JSON into a [`NetworkSnapshot`]: validated, plain data with no I/O left
//! in it. Everything after that (names, zone building) is pure.

pub mod addresses;
pub mod api;
pub mod central;
pub mod controller;
pub mod file;
pub mod local;
pub mod models;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::config;

/// A 64-bit ZeroTier network id, written as 16 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkId(pub u64);

/// A 40-bit ZeroTier node (member) id, written as 10 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u64);

fn parse_hex(s: &str, digits: usize) -> Option<u64> {
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

impl FromStr for NetworkId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        parse_hex(s.trim(), 16).map(NetworkId).ok_or(())
    }
}

impl FromStr for NodeId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        parse_hex(s.trim(), 10).map(NodeId).ok_or(())
    }
}

/// Ids travel as hex strings in snapshots, as in the API.
macro_rules! hex_serde {
    ($t:ty, $what:literal) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse()
                    .map_err(|_| serde::de::Error::custom(format!("\"{text}\" is not a {}", $what)))
            }
        }
    };
}
hex_serde!(NetworkId, "network id");
hex_serde!(NodeId, "node id");

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:010x}", self.0)
    }
}

/// One network member as the zone needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub node: NodeId,
    /// Free-form name from the API; may be empty.
    pub name: String,
    pub authorized: bool,
    /// Milliseconds since the epoch; `None` when the API did not say (sorts last).
    pub creation_time: Option<i64>,
    /// `config.ipAssignments`: does not include the computed RFC4193/6PLANE addresses.
    pub ips: Vec<IpAddr>,
    /// The controller assigns no computed IPv6 addresses to such members.
    pub no_auto_assign_ips: bool,
}

/// Everything one successful sync learned about one network. Also the format of the last-good
/// snapshot in `state_dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSnapshot {
    pub id: NetworkId,
    /// `v6AssignMode.rfc4193`: members get `fd<nwid>9993<node>`.
    pub rfc4193: bool,
    /// `v6AssignMode.6plane`: members get `fc<hash>:<node>::1` and own its /80.
    pub sixplane: bool,
    /// Managed routes (no `via`): the network's own subnets, used for reverse zones.
    pub routes: Vec<IpNet>,
    pub members: Vec<Member>,
}

impl NetworkSnapshot {
    /// All addresses of a member: assigned plus computed ones, without duplicates.
    pub fn addresses_of(&self, m: &Member) -> Vec<IpAddr> {
        let mut out = m.ips.clone();
        if !m.no_auto_assign_ips {
            if self.rfc4193 {
                out.push(IpAddr::V6(addresses::rfc4193(self.id, m.node)));
            }
            if self.sixplane {
                out.push(IpAddr::V6(addresses::sixplane(self.id, m.node)));
            }
        }
        let mut seen = Vec::with_capacity(out.len());
        out.retain(|ip| {
            let new = !seen.contains(ip);
            seen.push(*ip);
            new
        });
        out
    }
}

/// The reason given when parsing a member list panicked on the background thread.
pub(crate) const PARSE_PANICKED: &str =
    "parsing it failed unexpectedly (a bug: please report the panic logged above)";

/// Why a sync failed. Each message says what the operator can do about it; none contain the token.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error(
        "cannot reach the ZeroTier API at {url}: {reason}; check api_url and this host's network"
    )]
    Connect { url: String, reason: String },
    #[error("the ZeroTier API at {url} did not answer within {timeout:?}; will retry")]
    Timeout { url: String, timeout: Duration },
    #[error("the API token was rejected (HTTP 401 from {url}); check {hint}")]
    Unauthorized { url: String, hint: &'static str },
    #[error("the token cannot see network {network} (HTTP {status}); check the network id and that the token's account can access it")]
    NoAccess { network: NetworkId, status: u16 },
    #[error("the ZeroTier API is rate-limiting us (HTTP 429); waiting {retry_after:?} before the next request")]
    RateLimited { retry_after: Duration },
    #[error("the ZeroTier API answered HTTP {status} for {url}; will retry")]
    Status { url: String, status: u16 },
    #[error("the ZeroTier API sent an unreadable {what} from {url}: {reason}")]
    BadResponse {
        url: String,
        what: &'static str,
        reason: String,
    },
    #[error("cannot read members file {path}: {reason}")]
    File { path: String, reason: String },
}

impl FetchError {
    /// A short stable word for logs and, later, metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Connect { .. } => "connect",
            FetchError::Timeout { .. } => "timeout",
            FetchError::Unauthorized { .. } => "unauthorized",
            FetchError::NoAccess { .. } => "no_access",
            FetchError::RateLimited { .. } => "rate_limited",
            FetchError::Status { .. } => "http_status",
            FetchError::BadResponse { .. } => "bad_response",
            FetchError::File { .. } => "file",
        }
    }
}

/// Where one network's members come from.
pub enum Source {
    Central(central::Client),
    Controller(controller::ControllerClient),
    File(file::MembersFile),
}

/// One request per 100 ms to each API, across all networks (Central allows 20/s).
const API_GAP: Duration = Duration::from_millis(100);

/// Builds every network's source; networks on the same Central URL share one pacer.
pub fn sources(networks: &[config::Network]) -> Result<Vec<Source>, (NetworkId, FetchError)> {
    let mut pacers: std::collections::HashMap<String, std::sync::Arc<api::Pacer>> =
        std::collections::HashMap::new();
    networks
        .iter()
        .map(|net| {
            let source = match &net.source {
                config::Source::Central {
                    api_url,
                    token,
                    timeout,
                } => {
                    let pacer = pacers
                        .entry(api_url.clone())
                        .or_insert_with(|| api::Pacer::new(API_GAP))
                        .clone();
                    central::Client::new(api_url, token.clone(), net.id, *timeout, pacer)
                        .map(Source::Central)
                }
                config::Source::Controller {
                    api_url,
                    token,
                    timeout,
                } => controller::ControllerClient::new(api_url, token.clone(), net.id, *timeout)
                    .map(Source::Controller),
                config::Source::File { members_file } => Ok(Source::File(file::MembersFile::new(
                    members_file.clone(),
                    net.id,
                ))),
            };
            source.map_err(|e| (net.id, e))
        })
        .collect()
}

impl Source {
    /// One complete fetch; an error means nothing of this attempt may be used.
    pub async fn fetch(&self) -> Result<NetworkSnapshot, FetchError> {
        match self {
            Source::Central(c) => c.fetch().await,
            Source::Controller(c) => c.fetch().await,
            Source::File(f) => f.fetch().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let n: NetworkId = "8056C2E21C000001".parse().unwrap();
        assert_eq!(n.to_string(), "8056c2e21c000001");
        let m: NodeId = "00a45dc9d2".parse().unwrap();
        assert_eq!(m.to_string(), "00a45dc9d2");
        assert!("abcdef01234".parse::<NodeId>().is_err()); // the SPEC example has 11 digits
        assert!("xyz".parse::<NetworkId>().is_err());
    }
}
