//! `[[service]]` tables: names, member selectors, policy and health check settings.

use std::time::Duration;

use hickory_proto::rr::Name;

use super::super::raw::RawService;
use super::super::{
    Check, ConfigError, MemberPattern, Network, Policy, Service, Source, TagKey, TagMatch,
};
use super::Validator;
use crate::ids::{NetworkId, NodeId};

/// Checks more often than this would load the members more than it tells.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// More than this many checks in a row before a flip is a typo, not a policy.
const MAX_STREAK: u32 = 100;

impl Validator<'_> {
    pub(super) fn services(
        &self,
        raw: Vec<RawService>,
        domain: &Name,
        networks: &[Network],
    ) -> Result<Vec<Service>, ConfigError> {
        let mut out: Vec<Service> = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            let s = self.service(i, r, domain, networks)?;
            if let Some(o) = out.iter().find(|o| o.name == s.name) {
                return Err(self.err(
                    format!("service[{i}].name"),
                    format!("{} is already the name of service \"{}\"", s.name, o.label),
                ));
            }
            out.push(s);
        }
        Ok(out)
    }

    fn service(
        &self,
        i: usize,
        raw: RawService,
        domain: &Name,
        networks: &[Network],
    ) -> Result<Service, ConfigError> {
        let key = |k: &str| format!("service[{i}].{k}");
        let name = self.service_name(&key("name"), &raw.name, domain, networks)?;
        let network = match &raw.network {
            None => None,
            Some(text) => {
                let id: NetworkId = text.parse().map_err(|_| {
                    self.err(
                        key("network"),
                        format!("\"{text}\" is not a network id (16 hex digits)"),
                    )
                })?;
                if !networks.iter().any(|n| n.id == id) {
                    return Err(self.err(
                        key("network"),
                        format!("network {id} is not one of the [[network]] tables"),
                    ));
                }
                Some(id)
            }
        };
        let tag = raw
            .tag
            .as_deref()
            .map(|t| self.tag_match(&key("tag"), t))
            .transpose()?;
        let mut members = Vec::with_capacity(raw.members.len());
        for (j, m) in raw.members.iter().enumerate() {
            members.push(self.member_pattern(&format!("{}[{j}]", key("members")), m)?);
        }
        let policy = match raw.policy.trim() {
            "all" => Policy::All,
            "first" => Policy::First,
            other => {
                return Err(self.err(
                    key("policy"),
                    format!("\"{other}\" is not a policy: use \"all\" (every up member) or \"first\" (failover)"),
                ))
            }
        };
        let port = match raw.port {
            Some(0) => return Err(self.err(key("port"), "must be 1 to 65535")),
            p => p,
        };
        let protocol = raw.protocol.trim().to_ascii_lowercase();
        if protocol.is_empty()
            || protocol.len() > 15
            || !protocol
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(self.err(
                key("protocol"),
                format!(
                    "\"{}\" is not a protocol name like \"tcp\" or \"udp\"",
                    raw.protocol
                ),
            ));
        }
        let check = match raw.check.trim() {
            "none" => Check::None,
            "tcp" => Check::Tcp,
            "online" => Check::Online,
            other => {
                return Err(self.err(
                    key("check"),
                    format!("\"{other}\" is not a check: use \"none\", \"tcp\" or \"online\""),
                ))
            }
        };
        if check == Check::Tcp && port.is_none() {
            return Err(self.err(
                key("check"),
                "\"tcp\" connects to the service's port: set port as well",
            ));
        }
        if check == Check::Online {
            let covered = networks
                .iter()
                .filter(|n| network.is_none_or(|id| id == n.id));
            if let Some(n) = covered
                .into_iter()
                .find(|n| matches!(n.source, Source::Controller { .. }))
            {
                return Err(self.err(
                    key("check"),
                    format!(
                        "\"online\" reads Central's lastSeen, which network {} (a controller) \
                         does not have: use check = \"tcp\", or set network to a Central network",
                        n.id
                    ),
                ));
            }
        }
        let interval = self.duration(&key("interval"), &raw.interval)?;
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
            return Err(self.err(key("interval"), "must be 1s to 1h"));
        }
        for (k, v) in [("fall", raw.fall), ("rise", raw.rise)] {
            if !(1..=MAX_STREAK).contains(&v) {
                return Err(self.err(key(k), format!("must be 1 to {MAX_STREAK}")));
            }
        }
        let max_age = self.duration(&key("max_age"), &raw.max_age)?;
        if max_age < MIN_INTERVAL {
            return Err(self.err(key("max_age"), "must be at least 1s"));
        }
        let ttl = self.seconds(&key("ttl"), &raw.ttl)?;
        Ok(Service {
            label: raw.name.trim().trim_end_matches('.').to_ascii_lowercase(),
            name,
            network,
            tag,
            members,
            policy,
            port,
            protocol,
            check,
            interval,
            fall: raw.fall,
            rise: raw.rise,
            max_age,
            ttl,
        })
    }

    /// `pg` and `pg.prod` live under `domain`; a name ending in a dot must be inside a domain
    /// this server answers for.
    fn service_name(
        &self,
        key: &str,
        text: &str,
        domain: &Name,
        networks: &[Network],
    ) -> Result<Name, ConfigError> {
        let trimmed = text.trim();
        let absolute = trimmed.ends_with('.');
        let relative = trimmed.trim_end_matches('.');
        let bad = || {
            self.err(
                key,
                format!("\"{text}\" is not a name: use labels of letters, digits and '-', like \"pg\" or \"pg.prod\""),
            )
        };
        if relative.is_empty()
            || !relative.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
        {
            return Err(bad());
        }
        let relative = relative.to_ascii_lowercase();
        let name = if absolute {
            Name::from_ascii(format!("{relative}.")).map_err(|_| bad())?
        } else {
            Name::from_ascii(&relative)
                .and_then(|n| n.append_domain(domain))
                .map_err(|_| {
                    self.err(
                        key,
                        format!("\"{text}\" under {domain} is longer than 255 bytes"),
                    )
                })?
        };
        let ours = std::iter::once(domain).chain(networks.iter().map(|n| &n.domain));
        let mut inside = false;
        for d in ours {
            if *d == name {
                return Err(self.err(
                    key,
                    format!("{name} is a zone apex: a service needs a name below it, like pg.{d}"),
                ));
            }
            inside |= d.zone_of(&name);
        }
        if !inside {
            return Err(self.err(
                key,
                format!("{name} is outside the domains this server answers for"),
            ));
        }
        let first = relative.split('.').next().unwrap_or("");
        if first.len() == 13 && first.starts_with("zt-") && first[3..].parse::<NodeId>().is_ok() {
            return Err(self.err(key, format!("{name} is a member's zt- name")));
        }
        Ok(name)
    }

    pub(super) fn tag_match(&self, key: &str, text: &str) -> Result<TagMatch, ConfigError> {
        let part = |p: &str| -> Option<TagKey> {
            let p = p.trim();
            if p.is_empty() {
                return None;
            }
            if p.bytes().all(|b| b.is_ascii_digit()) {
                return p.parse().ok().map(TagKey::Number);
            }
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                .then(|| TagKey::Name(p.to_ascii_lowercase()))
        };
        text.split_once('=')
            .and_then(|(t, v)| Some(TagMatch { tag: part(t)?, value: part(v)? }))
            .ok_or_else(|| {
                self.err(
                    key,
                    format!(
                        "\"{text}\" is not a tag match: write \"<tag>=<value>\" with names from the \
                         network's rules (\"role=pg\") or numbers (\"1000=1\")"
                    ),
                )
            })
    }

    fn member_pattern(&self, key: &str, text: &str) -> Result<MemberPattern, ConfigError> {
        let t = text.trim().to_ascii_lowercase();
        if let Ok(node) = t.parse::<NodeId>() {
            return Ok(MemberPattern::Node(node));
        }
        if t.is_empty() {
            return Err(self.err(key, "must not be empty"));
        }
        glob::Pattern::new(&t)
            .map(MemberPattern::Glob)
            .map_err(|e| self.err(key, format!("\"{text}\" is not a glob ({e})")))
    }
}
