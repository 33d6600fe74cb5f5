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

/// The health of every checked address and the plans they serve, with each service's
/// answers and status as last worked out.
#[derive(Default)]
pub struct Health {
    plans: Vec<ServicePlan>,
    verdicts: HashMap<CheckKey, Verdict>,
    /// The services (indexes into `plans`) each check serves.
    users: HashMap<CheckKey, Vec<usize>>,
    /// Per plan: its live records and status as last worked out (`None`: never).
    done: Vec<Option<(Vec<LiveRecords>, ServiceStatus)>>,
    /// Per plan: to be worked out again (a check it uses flipped, it is new, or it depends
    /// on the time).
    dirty: Vec<bool>,
}

/// A service whose answers or status changed in [`Health::refresh`], with its old status.
pub struct Changed {
    pub index: usize,
    pub before: Option<ServiceStatus>,
}

impl Health {
    /// New plans from a zone build. Verdicts of checks still wanted are kept.
    pub fn set_plans(&mut self, plans: Vec<ServicePlan>) {
        // What each service looked like stays, to tell what changed (by name: the plans may
        // come in another order).
        let mut before: HashMap<String, (Vec<LiveRecords>, ServiceStatus)> = (self.plans.iter())
            .zip(std::mem::take(&mut self.done))
            .filter_map(|(p, d)| Some((display_name(&p.service), d?)))
            .collect();
        self.plans = plans;
        self.done = (self.plans.iter())
            .map(|p| before.remove(&display_name(&p.service)))
            .collect();
        self.dirty = vec![true; self.plans.len()];
        self.users.clear();
        for (i, p) in self.plans.iter().enumerate() {
            for key in checks_of(p) {
                let users = self.users.entry(key).or_default();
                if users.last() != Some(&i) {
                    users.push(i);
                }
            }
        }
        let users = &self.users;
        self.verdicts.retain(|k, _| users.contains_key(k));
        for key in self.users.keys() {
            self.verdicts.entry(*key).or_default();
        }
    }

    pub fn plans(&self) -> &[ServicePlan] {
        &self.plans
    }

    /// Every TCP check the plans need, each once.
    pub fn checks(&self) -> Vec<CheckKey> {
        let mut keys: Vec<CheckKey> = self.users.keys().copied().collect();
        keys.sort();
        keys
    }

    /// Takes one check result; returns whether the address changed state (the services
    /// that use it are then worked out again by the next [`Health::refresh`]). Results for
    /// checks no plan wants any more are ignored.
    pub fn record(&mut self, key: CheckKey, ok: bool) -> bool {
        let flipped =
            (self.verdicts.get_mut(&key)).is_some_and(|v| v.record(ok, key.fall, key.rise));
        if flipped {
            for i in self.users.get(&key).into_iter().flatten() {
                self.dirty[*i] = true;
            }
        }
        flipped
    }

    /// The services that use `key` (for counting its failures).
    pub fn services_of(&self, key: &CheckKey) -> Vec<String> {
        (self.users.get(key).into_iter().flatten())
            .map(|i| display_name(&self.plans[*i].service))
            .collect()
    }

    /// Forgets what `check = "online"` services looked like: they depend on the time.
    pub fn age(&mut self) {
        for (p, dirty) in self.plans.iter().zip(&mut self.dirty) {
            if p.service.check == Check::Online {
                *dirty = true;
            }
        }
    }

    /// Works out the services whose checks changed (or that are new) as of `now_ms`;
    /// returns those whose answers or status differ from before.
    pub fn refresh(&mut self, now_ms: i64) -> Vec<Changed> {
        let mut changed = Vec::new();
        for i in 0..self.plans.len() {
            if !self.dirty[i] {
                continue;
            }
            self.dirty[i] = false;
            let fresh = self.work_out(&self.plans[i], now_ms);
            let before = self.done[i].replace(fresh);
            if before.as_ref() != self.done[i].as_ref() {
                changed.push(Changed {
                    index: i,
                    before: before.map(|(_, s)| s),
                });
            }
        }
        changed
    }

    /// Every service's live records, as last worked out.
    pub fn records(&self) -> impl Iterator<Item = &LiveRecords> {
        self.done.iter().flatten().flat_map(|(r, _)| r)
    }

    /// The live records of the service at `index` of the plans.
    pub fn records_of(&self, index: usize) -> &[LiveRecords] {
        self.done
            .get(index)
            .and_then(Option::as_ref)
            .map_or(&[], |(r, _)| r)
    }

    /// Every service's status, as last worked out.
    pub fn statuses(&self) -> impl Iterator<Item = &ServiceStatus> {
        self.done.iter().flatten().map(|(_, s)| s)
    }

    /// The status of the service at `index` of the plans.
    pub fn status(&self, index: usize) -> Option<&ServiceStatus> {
        self.done.get(index)?.as_ref().map(|(_, s)| s)
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
                    let key = check_key(p, *ip);
                    self.verdicts.get(&key).is_none_or(Verdict::is_up)
                })
                .collect(),
        }
    }

    /// One service's live records and status as of `now_ms`.
    fn work_out(&self, p: &ServicePlan, now_ms: i64) -> (Vec<LiveRecords>, ServiceStatus) {
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
        let mut live = vec![LiveRecords {
            owner: p.owner.clone(),
            sets: by_type.into_iter().collect(),
            ttl: s.ttl,
            rotate: s.policy == Policy::All,
        }];
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
        let status = ServiceStatus {
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
        };
        (live, status)
    }
}

/// The check of `ip` for plan `p`.
fn check_key(p: &ServicePlan, ip: IpAddr) -> CheckKey {
    let s = &p.service;
    CheckKey {
        ip,
        port: s.port.unwrap_or(0),
        interval: s.interval,
        fall: s.fall,
        rise: s.rise,
    }
}

/// Every TCP check plan `p` needs.
fn checks_of(p: &ServicePlan) -> Vec<CheckKey> {
    if p.service.check != Check::Tcp {
        return Vec::new();
    }
    (p.members.iter())
        .flat_map(|m| m.addresses.iter().map(|ip| check_key(p, *ip)))
        .collect()
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

#[cfg(test)]
mod plan_tests {
    use super::*;
    use crate::config::{Check, Policy, Service};
    use hickory_proto::rr::Name;

    fn plan(check: Check, policy: Policy, ips: &[&str]) -> ServicePlan {
        let service = Service {
            label: "pg".into(),
            name: Name::from_ascii("pg.backhaul.").unwrap(),
            network: None,
            tag: None,
            members: Vec::new(),
            policy,
            port: Some(5432),
            protocol: "tcp".into(),
            check,
            interval: Duration::from_secs(1),
            fall: 2,
            rise: 2,
            max_age: Duration::from_secs(60),
            ttl: 5,
        };
        let members = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| ServiceMember {
                network: NetworkId(1),
                node: NodeId(i as u64 + 1),
                target: crate::dname::name_wire(
                    &Name::from_ascii(format!("db-{i}.backhaul.")).unwrap(),
                ),
                addresses: vec![ip.parse().unwrap()],
                last_seen: Some(1_000),
            })
            .collect();
        ServicePlan {
            owner: crate::dname::name_wire(&service.name),
            srv_owner: None,
            service,
            members,
            problems: Vec::new(),
        }
    }

    fn a_records(h: &Health) -> Vec<Vec<u8>> {
        h.records()
            .flat_map(|r| r.sets.iter())
            .filter(|(t, _)| *t == rtype::A)
            .flat_map(|(_, rd)| rd.clone())
            .collect()
    }

    #[test]
    fn a_flip_changes_only_the_services_that_use_the_check() {
        let mut h = Health::default();
        h.set_plans(vec![plan(
            Check::Tcp,
            Policy::All,
            &["10.0.0.1", "10.0.0.2"],
        )]);
        assert_eq!(h.refresh(0).len(), 1, "new");
        assert_eq!(a_records(&h).len(), 2);
        let key = h.checks()[0];
        assert!(!h.record(key, true));
        assert!(h.refresh(0).is_empty());
        assert!(!h.record(key, false));
        assert!(h.record(key, false));
        let changed = h.refresh(0);
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].before.as_ref().unwrap().up.len(), 2);
        assert_eq!(a_records(&h), [vec![10, 0, 0, 2]]);
        assert_eq!(h.status(0).unwrap().down, ["db-0.backhaul"]);
        // Both down: fail open, every member.
        let other = h.checks()[1];
        h.record(other, false);
        h.record(other, false);
        h.refresh(0);
        assert!(h.status(0).unwrap().fail_open);
        assert_eq!(a_records(&h).len(), 2);
    }

    #[test]
    fn online_judges_last_seen_against_the_clock() {
        let mut h = Health::default();
        h.set_plans(vec![plan(
            Check::Online,
            Policy::First,
            &["10.0.0.1", "10.0.0.2"],
        )]);
        h.refresh(30_000);
        assert_eq!(h.status(0).unwrap().up.len(), 2);
        assert_eq!(a_records(&h).len(), 1, "first: one member");
        h.age();
        assert_eq!(h.refresh(61_001).len(), 1);
        assert!(h.status(0).unwrap().fail_open);
    }
}
