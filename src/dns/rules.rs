//! [`Rules`]: everything about answering that a reload (or a change of the listening
//! addresses) may change, built in one place from the config and swapped whole, so a request
//! sees one consistent set: who may ask, who may transfer and with which keys, where other
//! names go, rate limiting, the query log, the TCP limits.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::Name;
use ipnet::IpNet;

use super::access::Acl;
use super::answer::Policy;
use super::forward::{Forwarders, Plan};
use super::ratelimit::Limiter;
use super::transfer::Transfers;
use super::tsig::Keyring;
use crate::config::{Config, ForwardZone, TcpLimits};
use crate::view::View;

/// How requests of one view are handled now.
pub struct Rules {
    pub view: View,
    /// Backhaul: the listening subnets and `[listen] allow` (everyone else is REFUSED, unless a
    /// secondary). The public view answers everyone.
    acl: Acl,
    /// `[transfer] allow` and `[[transfer.key]]` (backhaul only).
    pub transfers: Transfers,
    /// Where other names go; empty when nothing is configured (they get REFUSED).
    pub forwarders: Arc<Forwarders>,
    plan: Plan,
    /// `[rate_limit]`, kept across reloads that leave it alone (its buckets with it).
    pub limiter: Arc<Limiter>,
    /// `[log] queries`.
    pub log_queries: bool,
    /// `[listen] tcp_*`.
    pub tcp: TcpLimits,
    /// `[follow]`: whose NOTIFYs are taken (backhaul view only).
    pub follow: Option<FollowRule>,
    /// `[[update]]`: the keys that may send UPDATEs in this view.
    update_keys: Vec<Name>,
    /// The keys signed requests are checked against: every `[[transfer.key]]` in the backhaul
    /// view; in the public view only those an `[[update]]` of it names (certbot signs its
    /// SOA queries too).
    pub keys: Arc<Keyring>,
}

/// Who may NOTIFY a follower: its primary, from its address, unsigned or with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowRule {
    pub primary: IpAddr,
    pub key: Option<Name>,
}

/// What besides the config the rules depend on: the addresses being listened on now.
#[derive(Clone, Copy)]
pub struct Surroundings<'a> {
    /// The backhaul listening addresses with their prefix lengths (their subnets may ask).
    pub nets: &'a [IpNet],
    /// The records file's delegations with glue (resolved through when forwarding is on).
    pub delegations: &'a [ForwardZone],
}

impl Rules {
    /// The rules of `view` under `config`. Parts that did not change are taken over from
    /// `previous` (the forwarders' caches, the rate limiter's buckets) instead of rebuilt.
    pub fn from_config(
        config: &Config,
        view: View,
        around: Surroundings<'_>,
        previous: Option<&Rules>,
    ) -> anyhow::Result<Rules> {
        let backhaul = view == View::Backhaul;
        let own: Vec<IpAddr> = around.nets.iter().map(|n| n.addr()).collect();
        let plan = if backhaul {
            Plan::new(config, &own, around.delegations)
        } else {
            Plan::default() // the public view never forwards
        };
        let forwarders = match previous {
            Some(p) if p.plan == plan => p.forwarders.clone(),
            _ if plan == Plan::default() => Arc::new(Forwarders::default()),
            _ => Arc::new(
                Forwarders::from_plan(&plan)
                    .map_err(|e| anyhow::anyhow!("cannot set up forwarding: {e}"))?,
            ),
        };
        let limiter = match previous {
            Some(p) if p.limiter.config() == config.rate_limit => p.limiter.clone(),
            _ => Arc::new(Limiter::new(config.rate_limit)),
        };
        Ok(Rules {
            view,
            acl: if backhaul {
                Acl::new(around.nets, &config.listen.allow)
            } else {
                Acl::default()
            },
            transfers: if backhaul {
                Transfers::new(&config.transfer)
            } else {
                Transfers::default()
            },
            forwarders,
            plan,
            limiter,
            log_queries: config.log_queries,
            tcp: config.listen.tcp,
            update_keys: (config.updates.iter())
                .filter(|u| u.view == view)
                .map(|u| u.key.clone())
                .collect(),
            keys: Arc::new(match view {
                View::Backhaul => Keyring::new(&config.transfer.keys),
                View::Public => {
                    let named = |k: &&crate::config::TsigKey| {
                        (config.updates.iter()).any(|u| u.view == view && u.key == k.name)
                    };
                    let keys: Vec<_> = config.transfer.keys.iter().filter(named).cloned().collect();
                    Keyring::new(&keys)
                }
            }),
            follow: (config.follow.as_ref())
                .filter(|_| backhaul)
                .map(|f| FollowRule {
                    primary: f.primary.ip(),
                    key: f.key.clone(),
                }),
        })
    }

    /// Rules that answer nobody (REFUSED) and forward nothing, for unit tests.
    #[cfg(test)]
    pub(crate) fn closed(view: View, tcp: TcpLimits, limiter: Limiter) -> Rules {
        Rules {
            view,
            acl: Acl::default(),
            transfers: Transfers::default(),
            forwarders: Arc::default(),
            plan: Plan::default(),
            limiter: Arc::new(limiter),
            log_queries: false,
            tcp,
            follow: None,
            update_keys: Vec::new(),
            keys: Arc::default(),
        }
    }

    /// What this client may have done for it.
    pub fn policy(&self, client: IpAddr) -> Policy {
        match self.view {
            View::Public => Policy {
                allowed: true,
                ..Policy::default()
            },
            View::Backhaul if self.acl.allows(client) => Policy {
                allowed: true,
                forward: !self.forwarders.is_empty(),
                ..Policy::default()
            },
            // A secondary outside the listening subnets asks for our SOA before it
            // transfers: our zones are answered to it (it may have them all anyway), nothing
            // is forwarded for it.
            View::Backhaul => Policy {
                allowed: self.transfers.allows(client, None),
                ..Policy::default()
            },
        }
    }

    /// Whether an UPDATE signed with `key` (already checked) may be applied in this view.
    pub fn may_update(&self, key: &Name) -> bool {
        self.update_keys.contains(key)
    }

    /// Whether some `[transfer] allow` entry holds this client, keyed or not (it may open TCP
    /// connections to transfer).
    pub fn transfer_listed(&self, client: IpAddr) -> bool {
        self.view == View::Backhaul && self.transfers.listed(client)
    }

    /// Whether this client may transfer with a request signed by `key` (already checked), or
    /// unsigned (`None`).
    pub fn transfer_allowed(&self, client: IpAddr, key: Option<&Name>) -> bool {
        self.view == View::Backhaul && self.transfers.allows(client, key)
    }
}
