//! A self-hosted zerotier-one controller (<https://docs.zerotier.com/controller/>):
//! `GET /controller/network/{id}`, the member map `{id: revision}`, then each member,
//! re-fetching only changed revisions.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;

use super::api::{Api, Auth};
use super::models::{ApiMember, MemberConfig, Network, NetworkConfig, Route, V6AssignMode};
use super::{FetchError, Member, MemberWarnings, NetworkSnapshot, TagDef};
use crate::ids::{NetworkId, NodeId};
use crate::secret::Secret;

/// Member requests in flight at once: fast on a big network, gentle on the controller.
const CONCURRENCY: usize = 8;

/// The controller's network object: the same fields as Central's `config`, at the top level.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ControllerNetwork {
    #[serde(default)]
    v6_assign_mode: Option<V6Mode>,
    #[serde(default)]
    routes: Option<Vec<Route>>,
    /// `[{"id": 1000, "default": 0}, ...]`: tags without names (the controller stores only
    /// the compiled rules).
    #[serde(default)]
    tags: Option<Value>,
}

impl ControllerNetwork {
    fn tags(&self) -> Vec<TagDef> {
        let number = |v: Option<&Value>| {
            v.and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
        };
        let list = self.tags.as_ref().and_then(Value::as_array);
        let mut tags: Vec<TagDef> = (list.into_iter().flatten())
            .filter_map(|t| {
                Some(TagDef {
                    id: number(t.get("id"))?,
                    name: None,
                    default: number(t.get("default")),
                    enums: Vec::new(),
                })
            })
            .collect();
        tags.sort_by_key(|t| t.id);
        tags
    }
}

/// An object, or the legacy comma-separated string form (`"rfc4193,6plane"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum V6Mode {
    Object(V6AssignMode),
    Text(String),
}

impl From<ControllerNetwork> for Network {
    fn from(c: ControllerNetwork) -> Network {
        let v6 = c.v6_assign_mode.map(|m| match m {
            V6Mode::Object(o) => o,
            V6Mode::Text(t) => {
                let has = |w: &str| Some(t.split(',').any(|p| p.trim() == w));
                V6AssignMode {
                    sixplane: has("6plane"),
                    rfc4193: has("rfc4193"),
                }
            }
        });
        Network {
            config: Some(NetworkConfig {
                v6_assign_mode: v6,
                routes: c.routes,
                dns: None,
            }),
            tags_by_name: None,
        }
    }
}

/// The controller's member object: Central's `config` fields, at the top level.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ControllerMember {
    id: Option<String>,
    address: Option<String>,
    /// Stored only since zerotier-one 1.14.0, and only if someone set it.
    name: Option<String>,
    authorized: Option<bool>,
    creation_time: Option<i64>,
    ip_assignments: Option<Vec<String>>,
    no_auto_assign_ips: Option<bool>,
    tags: Option<Value>,
    /// Not in the controller's own JSON, but kept if a tool stores one.
    description: Option<String>,
}

impl From<ControllerMember> for ApiMember<'static> {
    fn from(c: ControllerMember) -> ApiMember<'static> {
        ApiMember {
            node_id: c.id.clone().map(Cow::Owned),
            name: c.name.map(Cow::Owned),
            config: Some(MemberConfig {
                id: c.id.map(Cow::Owned),
                address: c.address.map(Cow::Owned),
                authorized: c.authorized,
                creation_time: c.creation_time,
                ip_assignments: (c.ip_assignments)
                    .map(|ips| ips.into_iter().map(Cow::Owned).collect()),
                no_auto_assign_ips: c.no_auto_assign_ips,
                tags: c.tags,
            }),
            description: c.description.map(Cow::Owned),
            last_seen: None,
        }
    }
}

/// A member as last fetched: its revision, and the member (`None` if it was unusable).
type Cached = (u64, Option<Member>);

pub struct ControllerClient {
    api: Arc<Api>,
    network: NetworkId,
    cache: Mutex<HashMap<NodeId, Cached>>,
    warnings: MemberWarnings,
}

impl ControllerClient {
    pub fn new(
        url: &str,
        token: Secret,
        network: NetworkId,
        timeout: Duration,
    ) -> Result<ControllerClient, FetchError> {
        let auth = Auth {
            header: reqwest::header::HeaderName::from_static("x-zt1-auth"),
            value: token.expose().to_owned(),
            hint: "token_file (the controller host's authtoken.secret)",
        };
        Ok(ControllerClient {
            api: Arc::new(Api::new(url, auth, network, timeout, None)?),
            network,
            cache: Mutex::new(HashMap::new()),
            warnings: MemberWarnings::default(),
        })
    }

    pub async fn fetch(&self) -> Result<NetworkSnapshot, FetchError> {
        let base = format!("/controller/network/{}", self.network);
        let network: ControllerNetwork = self
            .api
            .get(&base, "network object", false)
            .await?
            .unwrap_or_default();
        let revisions: HashMap<String, u64> = self
            .api
            .get(&format!("{base}/member"), "member map", false)
            .await?
            .unwrap_or_default();

        // Only one fetch runs at a time per network (the poller awaits it), so holding the
        // cache across the requests blocks nobody.
        let mut cache = self.cache.lock().await;
        let mut current: HashMap<NodeId, u64> = HashMap::new();
        let mut problems = Vec::new();
        for (id, rev) in &revisions {
            match id.parse::<NodeId>() {
                Ok(node) => {
                    current.insert(node, *rev);
                }
                Err(()) => {
                    problems.push(format!("member {id}: skipping it: not a 10-digit node id"))
                }
            }
        }
        let stale: Vec<(NodeId, u64)> = current
            .iter()
            .filter(|(node, rev)| cache.get(node).is_none_or(|(r, _)| r != *rev))
            .map(|(n, r)| (*n, *r))
            .collect();

        let slots = Arc::new(Semaphore::new(CONCURRENCY));
        let mut tasks = JoinSet::new();
        for (node, rev) in stale {
            let api = self.api.clone();
            let slots = slots.clone();
            let path = format!("{base}/member/{node}");
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await;
                (node, rev, api.get::<Value>(&path, "member", true).await)
            });
        }
        let mut fetched = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (node, rev, result) = joined.expect("member fetch task does not panic");
            // Any failure fails the whole sync: the zone is built from complete data only.
            fetched.push((node, rev, result?));
        }
        for (node, rev, value) in fetched {
            let member = value.and_then(|v| {
                let parsed = serde_json::from_value::<ControllerMember>(v)
                    .map_err(|e| e.to_string())
                    .and_then(|c| ApiMember::from(c).into_member());
                match parsed {
                    Ok((m, warnings)) => {
                        problems
                            .extend(warnings.into_iter().map(|w| format!("member {node}: {w}")));
                        Some(m)
                    }
                    Err(why) => {
                        problems.push(format!("member {node}: skipping it: {why}"));
                        None
                    }
                }
            });
            cache.insert(node, (rev, member));
        }
        cache.retain(|node, _| current.contains_key(node));
        let mut members: Vec<Member> = cache.values().filter_map(|(_, m)| m.clone()).collect();
        members.sort_by_key(|m| m.node);
        self.warnings.report(self.network, problems);
        let tags = network.tags();
        let mut snapshot = Network::from(network).into_snapshot(self.network, members);
        snapshot.tags = tags;
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_shapes() {
        let n: ControllerNetwork = serde_json::from_str(
            r#"{"v6AssignMode": "rfc4193,6plane", "routes": [{"target": "10.1.0.0/16", "via": null}], "dns": []}"#,
        )
        .unwrap();
        let s = Network::from(n).into_snapshot(NetworkId(1), vec![]);
        assert!(s.rfc4193 && s.sixplane);
        assert_eq!(s.routes.len(), 1);
        let m: ControllerMember = serde_json::from_str(
            r#"{"id": "efcc1b0947", "address": "efcc1b0947", "authorized": true, "ipAssignments": ["10.1.2.3"], "revision": 3, "vMajor": -1}"#,
        )
        .unwrap();
        let (m, _) = ApiMember::from(m).into_member().unwrap();
        assert_eq!(m.name, "");
        assert_eq!(m.ips.len(), 1);
    }
}
