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

use crate::lock::lock;
use std::net::IpAddr;
use std::time::Duration;

/// One request per 100 ms to each API, across all networks (Central allows 20/s).
pub const API_GAP: Duration = Duration::from_millis(100);

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ids::{NetworkId, NodeId};

/// One network member as the zone needs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Tags and description lines that services and aliases read; `None` for the many
    /// members that have none (eight bytes each instead of three empty lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hints: Option<Box<Hints>>,
    /// Central's `lastSeen` (ms since the epoch), for `check = "online"`. Not part of the
    /// member's content: it moves on every poll, and must not make every poll a new zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
}

impl PartialEq for Member {
    /// Everything but `last_seen` (see there).
    fn eq(&self, other: &Member) -> bool {
        self.node == other.node
            && self.name == other.name
            && self.authorized == other.authorized
            && self.creation_time == other.creation_time
            && self.ips == other.ips
            && self.no_auto_assign_ips == other.no_auto_assign_ips
            && self.hints == other.hints
    }
}

impl Eq for Member {}

/// What a member says about itself beyond its name: its ZeroTier tags and the lines of its
/// description meant for DNS (`services: pg, cache` and `dns: alias1 alias2`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hints {
    /// `[tagId, value]` pairs from `config.tags` (a `true` flag value counts as 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(u32, u32)>,
    /// Services the description puts the member in, lowercased.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Extra names the description asks for, as written (the naming rules apply later).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `dns: *`: the member also gets `*.<name>` (names below its own).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wildcard: bool,
}

impl Hints {
    /// The hints of a member with these tags and this description; `None` if there are none.
    pub fn new(tags: Vec<(u32, u32)>, description: &str) -> Option<Box<Hints>> {
        let mut hints = Hints {
            tags,
            ..Hints::default()
        };
        for line in description.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let words = value
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|w| !w.is_empty());
            match key.trim().to_ascii_lowercase().as_str() {
                "services" | "service" => hints.services.extend(words.map(str::to_ascii_lowercase)),
                "dns" => {
                    for w in words {
                        if w == "*" {
                            hints.wildcard = true;
                        } else {
                            hints.aliases.push(w.to_owned());
                        }
                    }
                }
                _ => {}
            }
        }
        // A description is free text any member owner can fill: bound what one member adds.
        hints.services.truncate(MAX_HINTS);
        hints.aliases.truncate(MAX_HINTS);
        hints.tags.truncate(MAX_HINTS);
        (hints != Hints::default()).then(|| Box::new(hints))
    }

    /// This member's value of tag `id`, if it has one.
    pub fn tag(&self, id: u32) -> Option<u32> {
        self.tags.iter().find(|(t, _)| *t == id).map(|(_, v)| *v)
    }
}

/// Services, aliases and tags one member may contribute.
pub const MAX_HINTS: usize = 32;

/// A tag the network's rules declare (Central's `tagsByName`; a controller's `tags`, which
/// have no names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagDef {
    pub id: u32,
    /// Lowercase, as the rule compiler stores it; `None` on a controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The value of members that have no entry for this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<u32>,
    /// Names of values (`enum 1 pg`), lowercase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enums: Vec<(String, u32)>,
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
    /// The tags the network's rules declare (empty when it declares none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagDef>,
}

impl NetworkSnapshot {
    /// Whether `ip` lies on this network: in one of its managed routes, or in the prefixes it
    /// computes IPv6 addresses from (RFC4193, 6PLANE). A network that declares no managed
    /// route cannot say, and every address counts as on it.
    pub fn on_network(&self, ip: &IpAddr) -> bool {
        if self.routes.is_empty() || self.routes.iter().any(|r| r.contains(ip)) {
            return true;
        }
        let IpAddr::V6(v6) = ip else { return false };
        (self.rfc4193 && addresses::rfc4193_prefix(self.id).contains(v6))
            || (self.sixplane
                && v6.octets()[..5] == addresses::sixplane(self.id, NodeId(0)).octets()[..5])
    }

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
        // The same rule as when members are read: a snapshot from disk passes it again.
        out.retain(|ip| {
            let new = !seen.contains(ip);
            seen.push(*ip);
            new && addresses::servable(ip)
        });
        out
    }
}

/// Problems with single members (one skipped, an address ignored), each reported once per
/// change: a source polled every 30 s must not repeat the same warning forever. A problem
/// that goes away and comes back is reported again.
#[derive(Default)]
pub struct MemberWarnings {
    last: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl MemberWarnings {
    /// The problems of the latest fetch of `network`: the new ones are logged at WARN.
    pub fn report(&self, network: NetworkId, problems: Vec<String>) {
        let now: std::collections::HashSet<String> = problems.into_iter().collect();
        let mut last = lock(&self.last);
        let mut new: Vec<&String> = now.difference(&last).collect();
        new.sort();
        for problem in new {
            tracing::warn!(network = %network, "{problem}");
        }
        *last = now;
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
