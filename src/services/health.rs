//! Who is up: check results -> up/down per address (rise and fall), services' up members, and
//! the live table and status they give. Pure: the probes and the clock come from outside.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use crate::config::{Check, Policy};
use crate::dname::{rtype, wire_to_text};
use crate::ids::{NetworkId, NodeId};
use crate::metrics::ServiceStatus;
use crate::zone::services::{live_addresses, srv_rdatas, LiveRecords};
use crate::zone::{ServiceMember, ServicePlan};

/// One TCP check: an address, a port and how the service judges it. Two services checking
/// the same address and port the same way share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckKey {
    pub ip: IpAddr,
    pub port: u16,
    pub interval: Duration,
    pub fall: u32,
    pub rise: u32,
}

/// What the checks have said about one address so far.
#[derive(Debug, Clone, Copy, Default)]
struct Verdict {
    /// `None` until the first result: counted as up, so a restart does not empty a service
    /// while its first checks run.
    up: Option<bool>,
    /// Results in a row that disagree with `up`.
    against: u32,
}

impl Verdict {
    /// Takes one result; returns whether `up` changed. The first result decides at once;
    /// later, `fall` failures in a row take an address down and `rise` successes bring it back.
    fn record(&mut self, ok: bool, fall: u32, rise: u32) -> bool {
        let Some(up) = self.up else {
            self.up = Some(ok);
            return !ok;
        };
        if ok == up {
            self.against = 0;
            return false;
        }
        self.against += 1;
        let needed = if up { fall } else { rise };
        if self.against >= needed {
            self.up = Some(ok);
            self.against = 0;
            return true;
        }
        false
    }

    fn is_up(&self) -> bool {
        self.up != Some(false)
    }
}

/// The health of every checked address and the plans they serve.
#[derive(Default)]
pub struct Health {
    plans: Vec<ServicePlan>,
    verdicts: HashMap<CheckKey, Verdict>,
}

impl Health {
    /// New plans from a zone build. Verdicts of checks still wanted are kept.
    pub fn set_plans(&mut self, plans: Vec<ServicePlan>) {
        self.plans = plans;
        let wanted: HashSet<CheckKey> = self.checks().into_iter().collect();
        self.verdicts.retain(|k, _| wanted.contains(k));
        for key in wanted {
            self.verdicts.entry(key).or_default();
        }
    }

    pub fn plans(&self) -> &[ServicePlan] {
        &self.plans
    }

    /// Every TCP check the plans need, each once.
    pub fn checks(&self) -> Vec<CheckKey> {
        let mut keys: Vec<CheckKey> = self
            .plans
            .iter()
            .filter(|p| p.service.check == Check::Tcp)
            .flat_map(|p| {
                let s = &p.service;
                let port = s.port.unwrap_or(0);
                p.members.iter().flat_map(move |m| {
                    m.addresses.iter().map(move |ip| CheckKey {
                        ip: *ip,
                        port,
                        interval: s.interval,
                        fall: s.fall,
                        rise: s.rise,
                    })
                })
            })
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Takes one check result; returns whether the address changed state. Results for
    /// checks no plan wants any more are ignored.
    pub fn record(&mut self, key: CheckKey, ok: bool) -> bool {
        (self.verdicts.get_mut(&key)).is_some_and(|v| v.record(ok, key.fall, key.rise))
    }

    /// The services that use `key` (for counting its failures).
    pub fn services_of(&self, key: &CheckKey) -> Vec<String> {
        (self.plans.iter())
            .filter(|p| {
                p.service.check == Check::Tcp
                    && p.service.port == Some(key.port)
                    && p.members.iter().any(|m| m.addresses.contains(&key.ip))
            })
            .map(|p| display_name(&p.service))
            .collect()
    }

    /// A member's addresses that are up for plan `p` at `now_ms` (Unix ms, for `online`).
    fn up_addresses(&self, p: &ServicePlan, m: &ServiceMember, now_ms: i64) -> Vec<IpAddr> {
        let s = &p.service;
        match s.check {
            Check::None => m.addresses.clone(),
            Check::Online => {
                let max_age = i64::try_from(s.max_age.as_millis()).unwrap_or(i64::MAX);
                let online = m
                    .last_seen
                    .is_some_and(|t| now_ms.saturating_sub(t) <= max_age);
                if online {
                    m.addresses.clone()
                } else {
                    Vec::new()
                }
            }
            Check::Tcp => (m.addresses.iter().copied())
                .filter(|ip| {
                    let key = CheckKey {
                        ip: *ip,
                        port: s.port.unwrap_or(0),
                        interval: s.interval,
                        fall: s.fall,
                        rise: s.rise,
                    };
                    self.verdicts.get(&key).is_none_or(Verdict::is_up)
                })
                .collect(),
        }
    }

    /// The live records of every service and their status, as of `now_ms`.
    pub fn compile(&self, now_ms: i64) -> (Vec<LiveRecords>, Vec<ServiceStatus>) {
        let mut live = Vec::with_capacity(self.plans.len() * 2);
        let mut statuses = Vec::with_capacity(self.plans.len());
        for p in &self.plans {
            let s = &p.service;
            // Up members with only their up addresses, in service order.
            let up: Vec<ServiceMember> = (p.members.iter())
                .filter_map(|m| {
                    let addresses = self.up_addresses(p, m, now_ms);
                    (!addresses.is_empty()).then(|| ServiceMember {
                        addresses,
                        ..m.clone()
                    })
                })
                .collect();
            let up_nodes: HashSet<(NetworkId, NodeId)> =
                up.iter().map(|m| (m.network, m.node)).collect();
            let fail_open = up.is_empty() && !p.members.is_empty();
            // Nobody up: every member (fail open), as the zone holds them.
            let serving: &[ServiceMember] = if fail_open { &p.members } else { &up };
            let mut by_type: BTreeMap<u16, Vec<Vec<u8>>> = BTreeMap::new();
            for (ip, _) in live_addresses(p, serving) {
                let (t, rdata) = match ip {
                    IpAddr::V4(v4) => (rtype::A, v4.octets().to_vec()),
                    IpAddr::V6(v6) => (rtype::AAAA, v6.octets().to_vec()),
                };
                by_type.entry(t).or_default().push(rdata);
            }
            live.push(LiveRecords {
                owner: p.owner.clone(),
                sets: by_type.into_iter().collect(),
                ttl: s.ttl,
                rotate: s.policy == Policy::All,
            });
            if let (Some(srv), Some(port)) = (&p.srv_owner, s.port) {
                live.push(LiveRecords {
                    owner: srv.clone(),
                    sets: vec![(rtype::SRV, srv_rdatas(p, serving, port))],
                    ttl: s.ttl,
                    rotate: false,
                });
            }
            let name = |m: &ServiceMember| wire_to_text(&m.target).trim_end_matches('.').to_owned();
            let (mut ups, mut downs) = (Vec::new(), Vec::new());
            for m in &p.members {
                if up_nodes.contains(&(m.network, m.node)) {
                    ups.push(name(m));
                } else {
                    downs.push(name(m));
                }
            }
            statuses.push(ServiceStatus {
                name: display_name(s),
                check: match s.check {
                    Check::None => "none",
                    Check::Tcp => "tcp",
                    Check::Online => "online",
                },
                up: ups,
                down: downs,
                fail_open,
                problems: p.problems.clone(),
            });
        }
        (live, statuses)
    }
}

/// How logs, metrics and `/readyz` name a service: `pg.backhaul`.
pub fn display_name(s: &crate::config::Service) -> String {
    s.name.to_ascii().trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_result_decides_then_fall_and_rise() {
        let mut v = Verdict::default();
        assert!(v.is_up());
        assert!(!v.record(true, 2, 3));
        assert!(v.is_up());
        assert!(!v.record(false, 2, 3));
        assert!(v.is_up(), "one failure is not an outage");
        assert!(v.record(false, 2, 3));
        assert!(!v.is_up());
        assert!(!v.record(true, 2, 3));
        assert!(!v.record(true, 2, 3));
        assert!(!v.record(false, 2, 3), "a failure resets the rise");
        assert!(!v.record(true, 2, 3));
        assert!(!v.record(true, 2, 3));
        assert!(v.record(true, 2, 3));
        assert!(v.is_up());
        let mut first_down = Verdict::default();
        assert!(first_down.record(false, 2, 2));
        assert!(!first_down.is_up());
    }
}
