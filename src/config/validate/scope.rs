//! `[[scope]]` tables: who the clients are, and what they do not see.

use ipnet::IpNet;

use super::super::raw::RawScope;
use super::super::{ConfigError, Scope, ScopeClient, Selector};
use super::Validator;
use crate::ids::NodeId;

/// A scope is one bit of a 32-bit mask on the query path.
pub const MAX_SCOPES: usize = 32;

impl Validator<'_> {
    pub(super) fn scopes(&self, raw: Vec<RawScope>) -> Result<Vec<Scope>, ConfigError> {
        if raw.len() > MAX_SCOPES {
            return Err(self.err(
                format!("scope[{MAX_SCOPES}]"),
                format!("at most {MAX_SCOPES} scopes; merge scopes that hide the same names"),
            ));
        }
        let mut out: Vec<Scope> = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            let key = |k: &str| format!("scope[{i}].{k}");
            let name = r.name.trim().to_ascii_lowercase();
            let usable = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
            if name.is_empty() || !name.bytes().all(usable) {
                return Err(self.err(
                    key("name"),
                    format!(
                        "\"{}\" is not a scope name: letters, digits, - and _",
                        r.name
                    ),
                ));
            }
            if out.iter().any(|o| o.name == name) {
                return Err(self.err(key("name"), format!("two scopes are called \"{name}\"")));
            }
            if r.clients.is_empty() {
                return Err(self.err(
                    key("clients"),
                    "is empty: list the members (\"tag:env=dev\", a node id, a name glob) or \
                     networks (\"10.147.20.0/24\") this scope applies to",
                ));
            }
            let clients = (r.clients.iter())
                .map(|c| self.scope_client(&key("clients"), c))
                .collect::<Result<_, _>>()?;
            let hide: Vec<Selector> = (r.hide.iter())
                .map(|h| self.selector(&key("hide"), h))
                .collect::<Result<_, _>>()?;
            if let Some(all) = hide.iter().find_map(|h| match h {
                Selector::Glob(g) if g.matches("any-name") && g.matches("x.y.z") => Some(g),
                _ => None,
            }) {
                return Err(self.err(
                    key("hide"),
                    format!(
                        "\"{all}\" hides every name: every query from this scope would be \
                         NXDOMAIN; list the members (\"tag:env=prod\") or names (\"*.prod\") to hide"
                    ),
                ));
            }
            out.push(Scope {
                name,
                clients,
                hide,
            });
        }
        Ok(out)
    }

    fn scope_client(&self, key: &str, text: &str) -> Result<ScopeClient, ConfigError> {
        let t = text.trim();
        if let Ok(net) = t.parse::<IpNet>() {
            return Ok(ScopeClient::Net(net.trunc()));
        }
        if let Ok(ip) = t.parse::<std::net::IpAddr>() {
            return Ok(ScopeClient::Net(IpNet::from(ip)));
        }
        self.selector(key, t).map(ScopeClient::Members)
    }

    /// `tag:<tag>=<value>`, a node id, or a glob over names below the domain.
    pub(super) fn selector(&self, key: &str, text: &str) -> Result<Selector, ConfigError> {
        let t = text.trim().to_ascii_lowercase();
        if let Some(tag) = t.strip_prefix("tag:") {
            return self.tag_match(key, tag).map(Selector::Tag);
        }
        if let Ok(node) = t.parse::<NodeId>() {
            return Ok(Selector::Node(node));
        }
        if t.is_empty() {
            return Err(self.err(key, "an entry is empty"));
        }
        glob::Pattern::new(t.trim_end_matches('.'))
            .map(Selector::Glob)
            .map_err(|e| self.err(key, format!("\"{text}\" is not a glob ({e})")))
    }
}
