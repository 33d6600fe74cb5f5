//! Serde shapes of the ZeroTier Central API v1 JSON (<https://docs.zerotier.com/api/central/v1>: member and network objects).
//!
//! Every field is optional and unknown fields are ignored: the API marks everything nullable
//! and adds fields over time. Validation into [`super::Member`] happens in [`parse_members`].

use std::borrow::Cow;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use super::addresses::servable;
use super::{Hints, Member, NetworkSnapshot, TagDef};
use crate::ids::{NetworkId, NodeId};

/// `GET /network/{id}`: only what DNS needs.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    #[serde(default)]
    pub config: Option<NetworkConfig>,
    /// The tags the rules declare: `{"role": {"id": 1000, "default": 0, "enums": {"pg": 1}}}`.
    #[serde(default)]
    pub tags_by_name: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfig {
    #[serde(default)]
    pub v6_assign_mode: Option<V6AssignMode>,
    #[serde(default)]
    pub routes: Option<Vec<Route>>,
    /// `{"domain", "servers"}` on Central; a controller sends `[]` until it is set.
    #[serde(default)]
    pub dns: Option<serde_json::Value>,
}

/// A network's DNS settings as ZeroTier clients with allowDNS apply them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    pub domain: String,
    pub servers: Vec<String>,
}

impl DnsSettings {
    /// Reads `config.dns`; anything unset or odd counts as empty.
    pub fn from_json(v: Option<&serde_json::Value>) -> DnsSettings {
        let domain = v
            .and_then(|v| v.get("domain"))
            .and_then(|d| d.as_str())
            .unwrap_or("")
            .to_owned();
        let servers = v
            .and_then(|v| v.get("servers"))
            .and_then(|s| s.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        DnsSettings { domain, servers }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct V6AssignMode {
    #[serde(default, rename = "6plane")]
    pub sixplane: Option<bool>,
    #[serde(default)]
    pub rfc4193: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct Route {
    pub target: Option<String>,
    #[serde(default)]
    pub via: Option<String>,
}

/// One element of `GET /network/{id}/member`. Strings borrow from the response where they
/// can (no escapes): a 10,000-member list is 60,000 strings.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiMember<'a> {
    #[serde(borrow)]
    pub node_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub config: Option<MemberConfig<'a>>,
    #[serde(borrow)]
    pub description: Option<Cow<'a, str>>,
    pub last_seen: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberConfig<'a> {
    #[serde(borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub address: Option<Cow<'a, str>>,
    pub authorized: Option<bool>,
    pub creation_time: Option<i64>,
    #[serde(borrow)]
    pub ip_assignments: Option<Vec<Cow<'a, str>>>,
    pub no_auto_assign_ips: Option<bool>,
    /// `[[tagId, value], ...]`; read leniently (see [`member_tags`]).
    pub tags: Option<Value>,
}

/// `[[tagId, value], ...]` -> pairs; a flag's `true` is 1. Entries of any other shape are
/// ignored: tags only choose services, and one odd entry must not cost the member its name.
pub fn member_tags(tags: Option<&Value>) -> Vec<(u32, u32)> {
    let Some(list) = tags.and_then(Value::as_array) else {
        return Vec::new();
    };
    let number = |v: &Value| match v {
        Value::Bool(b) => Some(u32::from(*b)),
        v => v.as_u64().and_then(|n| u32::try_from(n).ok()),
    };
    list.iter()
        .filter_map(|pair| match pair.as_array()?.as_slice() {
            [id, value] => Some((number(id)?, number(value)?)),
            _ => None,
        })
        .collect()
}

/// Central's `tagsByName` -> tag declarations; odd entries are ignored.
pub fn tags_by_name(map: &serde_json::Map<String, Value>) -> Vec<TagDef> {
    let number = |v: Option<&Value>| {
        v.and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let mut tags: Vec<TagDef> = map
        .iter()
        .filter_map(|(name, def)| {
            let mut enums: Vec<(String, u32)> = (def.get("enums").and_then(Value::as_object))
                .map(|e| {
                    e.iter()
                        .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), number(Some(v))?)))
                        .collect()
                })
                .unwrap_or_default();
            enums.sort();
            Some(TagDef {
                id: number(def.get("id"))?,
                name: Some(name.to_ascii_lowercase()),
                default: number(def.get("default")),
                enums,
            })
        })
        .collect();
    tags.sort_by(|a, b| a.name.cmp(&b.name));
    tags
}

/// Why one member was skipped; the rest of the list is still served.
pub type Skip = String;

impl ApiMember<'_> {
    /// Validates one member. A bad address is dropped (and reported) rather than the member.
    pub fn into_member(self) -> Result<(Member, Vec<Skip>), Skip> {
        let config = self.config.ok_or("no \"config\" object")?;
        let id_text = self
            .node_id
            .as_deref()
            .or(config.id.as_deref())
            .or(config.address.as_deref())
            .ok_or("no \"nodeId\"")?;
        let node: NodeId = id_text
            .parse()
            .map_err(|_| format!("\"{id_text}\" is not a 10-digit node id"))?;
        let authorized = config
            .authorized
            .ok_or("no \"config.authorized\" (treating it as unknown is unsafe)")?;
        let assigned = config.ip_assignments.unwrap_or_default();
        // Exact capacity: a member list is held for as long as the network is served.
        let mut ips = Vec::with_capacity(assigned.len());
        let mut warnings = Vec::new();
        for text in assigned {
            // Central sends bare IPs; tolerate a "/bits" suffix like the local service prints.
            let bare = text.split('/').next().unwrap_or("").trim();
            match bare.parse::<IpAddr>() {
                Ok(ip) if servable(&ip) => ips.push(ip),
                _ => warnings.push(format!(
                    "ignoring address \"{text}\": not a unicast address other hosts can reach"
                )),
            }
        }
        Ok((
            Member {
                node,
                name: self.name.map(Cow::into_owned).unwrap_or_default(),
                authorized,
                creation_time: config.creation_time,
                ips,
                no_auto_assign_ips: config.no_auto_assign_ips.unwrap_or(false),
                hints: Hints::new(
                    member_tags(config.tags.as_ref()),
                    self.description.as_deref().unwrap_or(""),
                ),
                last_seen: self.last_seen.filter(|t| *t > 0),
            },
            warnings,
        ))
    }
}

impl Network {
    /// Fills the network-wide parts of a snapshot.
    pub fn into_snapshot(self, id: NetworkId, members: Vec<Member>) -> NetworkSnapshot {
        let config = self.config.unwrap_or_default();
        let modes = config.v6_assign_mode.unwrap_or_default();
        let routes = config
            .routes
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.via.as_deref().is_none_or(|v| v.trim().is_empty()))
            .filter_map(|r| {
                let t = r.target?;
                match t.parse::<IpNet>() {
                    Ok(n) => Some(n.trunc()),
                    Err(_) => {
                        tracing::warn!(network = %id, route = %t, "ignoring route: not a CIDR");
                        None
                    }
                }
            })
            .collect();
        NetworkSnapshot {
            id,
            rfc4193: modes.rfc4193.unwrap_or(false),
            sixplane: modes.sixplane.unwrap_or(false),
            routes,
            members,
            tags: self
                .tags_by_name
                .as_ref()
                .map(tags_by_name)
                .unwrap_or_default(),
        }
    }
}

/// A member list as it arrives: each member still raw JSON text, so that one bad member is
/// skipped alone, and so that parsing goes straight to [`ApiMember`] without building a
/// `Value` tree first (a third of a 100,000-member parse).
pub type RawMembers = Vec<Box<serde_json::value::RawValue>>;

/// Turns a member list (a JSON array, each member's text borrowed from it or from a
/// [`RawMembers`]) into members, skipping bad ones; returns a warning for each problem (for
/// [`super::MemberWarnings`], which reports each once).
pub fn parse_members(list: &[&serde_json::value::RawValue]) -> (Vec<Member>, Vec<String>) {
    let mut out = Vec::with_capacity(list.len());
    let mut problems = Vec::new();
    for (i, raw) in list.iter().enumerate() {
        let parsed = serde_json::from_str::<ApiMember>(raw.get())
            .map_err(|e| e.to_string())
            .and_then(ApiMember::into_member);
        match parsed {
            Ok((m, warnings)) => {
                problems.extend(
                    warnings
                        .into_iter()
                        .map(|w| format!("member {}: {w}", m.node)),
                );
                out.push(m);
            }
            Err(why) => {
                let hint = serde_json::from_str::<Value>(raw.get())
                    .ok()
                    .and_then(|v| v.get("nodeId").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_else(|| "?".into());
                problems.push(format!(
                    "member {hint} (#{i} in the list): skipping it: {why}"
                ));
            }
        }
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn real_member_parses() {
        let v = json!([{
            "id": "e5cd7a9e1c122ef7-efcc1b0947", "type": "Member", "nodeId": "efcc1b0947",
            "name": "bc", "hidden": false,
            "config": {"authorized": true, "creationTime": 1689164995720i64,
                       "ipAssignments": ["10.147.17.31"], "noAutoAssignIps": false,
                       "remoteTraceTarget": null, "tags": [[1, true]]},
            "physicalLocation": null
        }]);
        let text = v.to_string();
        let (ms, _) = parse_members(&serde_json::from_str::<Vec<_>>(&text).unwrap());
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].node.to_string(), "efcc1b0947");
        assert_eq!(ms[0].ips, vec!["10.147.17.31".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn tags_description_and_last_seen() {
        let v = json!([{"nodeId": "efcc1b0947", "lastSeen": 1691078701874i64,
            "description": "db host\nServices: pg, cache\ndns: postgres  pg-main\nnot: this",
            "config": {"authorized": true, "tags": [[1000, 1], [7, true], ["x", 1], [5], [4294967296u64, 1]]}}]);
        let text = v.to_string();
        let (ms, _) = parse_members(&serde_json::from_str::<Vec<_>>(&text).unwrap());
        let hints = ms[0].hints.as_deref().unwrap();
        assert_eq!(hints.tags, [(1000, 1), (7, 1)], "odd entries are ignored");
        assert_eq!(hints.services, ["pg", "cache"]);
        assert_eq!(hints.aliases, ["postgres", "pg-main"]);
        assert_eq!(ms[0].last_seen, Some(1691078701874));
        // lastSeen is not content: a member that only checked in again is the same member.
        let mut later = ms[0].clone();
        later.last_seen = Some(1691078799999);
        assert_eq!(ms[0], later);
        // Nothing to say: no hints at all.
        let plain = json!([{"nodeId": "efcc1b0947", "description": "just a box", "config": {"authorized": true, "tags": []}}]);
        let text = plain.to_string();
        let (ms, _) = parse_members(&serde_json::from_str::<Vec<_>>(&text).unwrap());
        assert!(ms[0].hints.is_none());
        let n: Network = serde_json::from_value(json!({"tagsByName": {
            "Role": {"id": 1000, "default": 0, "enums": {"PG": 1, "web": 2}, "flags": {}},
            "broken": {"id": "x"}}}))
        .unwrap();
        let s = n.into_snapshot(NetworkId(1), vec![]);
        assert_eq!(s.tags.len(), 1);
        assert_eq!(s.tags[0].name.as_deref(), Some("role"));
        assert_eq!(
            s.tags[0].enums,
            [("pg".to_owned(), 1), ("web".to_owned(), 2)]
        );
    }

    #[test]
    fn bad_members_are_skipped_alone() {
        let v = json!([
            {"nodeId": "efcc1b0947", "config": {"authorized": true}},
            {"nodeId": 12, "config": {"authorized": true}},
            {"name": "no id", "config": {"authorized": true}},
            {"nodeId": "a02505e545"},
            {"nodeId": "a02505e546", "config": {"authorized": true, "ipAssignments": ["10.1.1.300", "10.1.1.3"]}}
        ]);
        let text = v.to_string();
        let (ms, problems) = parse_members(&serde_json::from_str::<Vec<_>>(&text).unwrap());
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[1].ips.len(), 1);
        assert_eq!(problems.len(), 4, "{problems:?}"); // three members, one address
                                                       // Unreachable addresses are dropped with a problem each, as for every source.
        let v = json!([{"nodeId": "a02505e546", "config": {"authorized": true,
            "ipAssignments": ["255.255.255.255", "0.0.0.0", "224.0.0.1", "ff02::1", "10.1.1.3"]}}]);
        let text = v.to_string();
        let (ms, problems) = parse_members(&serde_json::from_str::<Vec<_>>(&text).unwrap());
        assert_eq!(ms[0].ips, vec!["10.1.1.3".parse::<IpAddr>().unwrap()]);
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn network_routes_and_modes() {
        let n: Network = serde_json::from_value(json!({"config": {
            "routes": [{"target": "10.0.0.0/23", "via": "192.168.195.64"},
                       {"target": "192.168.195.0/24"}, {"target": "10.9.9.0/24", "via": null}],
            "v6AssignMode": {"6plane": true, "rfc4193": false, "zt": false},
            "rules": [{"type": "MATCH_SOURCE", "value": 3232285886u64}]
        }}))
        .unwrap();
        let s = n.into_snapshot(NetworkId(1), vec![]);
        assert!(s.sixplane && !s.rfc4193);
        let routes: Vec<String> = s.routes.iter().map(|r| r.to_string()).collect();
        assert_eq!(routes, ["192.168.195.0/24", "10.9.9.0/24"]);
    }
}
