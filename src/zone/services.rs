//! Service names (`[[service]]`): which members do a job, in which order, and the records the
//! zone holds for them.
//!
//! The zone holds every member of a service (what answers when none is known to be up, and
//! what a secondary serves); which of them are up is the health checks' business
//! (`crate::services`), which patch the live answers in without a zone build.

use std::net::IpAddr;

use foldhash::{HashMap, HashMapExt, HashSet};
use hickory_proto::rr::RecordType;

use super::{Input, RecordList};
use crate::config::{self, MemberPattern, Policy, TagKey};
use crate::dname::{name_wire, wire_to_text};
use crate::ids::{NetworkId, NodeId};
use crate::names::Named;
use crate::zerotier::TagDef;

/// One service as the build found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePlan {
    pub service: config::Service,
    /// The service's name, lowercase wire form.
    pub owner: Vec<u8>,
    /// `_<name>._<protocol>.<parent>` when the service has a port.
    pub srv_owner: Option<Vec<u8>>,
    /// Its members in service order (see [`select`]).
    pub members: Vec<ServiceMember>,
    /// What the operator should know (a tag name no network declares): reported by the
    /// health side when it changes.
    pub problems: Vec<String>,
}

/// A member of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMember {
    pub network: NetworkId,
    pub node: NodeId,
    /// The member's name (its own if it won it, else its zt- name): the SRV target.
    pub target: Vec<u8>,
    pub addresses: Vec<IpAddr>,
    /// Central's `lastSeen` (ms), for `check = "online"`.
    pub last_seen: Option<i64>,
}

impl ServicePlan {
    /// The service's owner names: not to be taken by members or aliases.
    pub fn owners(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.owner.as_slice()).chain(self.srv_owner.as_deref())
    }
}

/// The owner names of every configured service, before any member is looked at: members and
/// aliases must not take them.
pub fn owner_names(services: &[config::Service]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    services
        .iter()
        .map(|s| (name_wire(&s.name), srv_owner(s)))
        .collect()
}

/// `_pg._tcp.backhaul` for `pg.backhaul` with a port; `_pg._tcp.prod.backhaul` for
/// `pg.prod.backhaul`.
fn srv_owner(s: &config::Service) -> Option<Vec<u8>> {
    s.port?;
    let wire = name_wire(&s.name);
    let first = usize::from(wire[0]);
    let mut out = Vec::with_capacity(wire.len() + s.protocol.len() + 3);
    out.push(wire[0] + 1);
    out.push(b'_');
    out.extend_from_slice(&wire[1..=first]);
    out.push(s.protocol.len() as u8 + 1);
    out.push(b'_');
    out.extend_from_slice(s.protocol.as_bytes());
    out.extend_from_slice(&wire[1 + first..]);
    // The config limits names to 255 bytes; the two underscores and the protocol may not fit.
    (out.len() <= crate::dname::MAX_NAME).then_some(out)
}

/// Every configured service with its members in order: the `members` list first (each entry
/// in turn, a glob's matches by name), then tag and description matches by name; authorized
/// members only. `file_owners`: a service whose name the records file has is not served.
pub fn select(
    services: &[config::Service],
    entries: &[Named<'_>],
    inputs: &[Input<'_>],
    file_owners: &HashSet<Vec<u8>>,
) -> Vec<ServicePlan> {
    let tags: HashMap<NetworkId, &[TagDef]> = inputs
        .iter()
        .filter_map(|i| i.snapshot.map(|s| (s.id, s.tags.as_slice())))
        .collect();
    let domains: HashMap<NetworkId, Vec<u8>> = inputs
        .iter()
        .map(|i| (i.network.id, name_wire(&i.network.domain)))
        .collect();
    let mut plans = Vec::with_capacity(services.len());
    for s in services {
        let owner = name_wire(&s.name);
        let srv = srv_owner(s);
        let mut problems = Vec::new();
        if s.port.is_some() && srv.is_none() {
            problems.push(format!(
                "{} is too long for its SRV name: no SRV records",
                s.name
            ));
        }
        let taken: Vec<&[u8]> = std::iter::once(owner.as_slice())
            .chain(srv.as_deref())
            .filter(|o| file_owners.contains(*o))
            .collect();
        if !taken.is_empty() {
            let names: Vec<String> = taken.iter().map(|o| wire_to_text(o)).collect();
            problems.push(format!(
                "the records file defines {}: the service is not served; remove one of them",
                names.join(" and ")
            ));
            plans.push(ServicePlan {
                service: s.clone(),
                owner,
                srv_owner: None,
                members: Vec::new(),
                problems,
            });
            continue;
        }
        let candidates: Vec<&Named<'_>> = entries
            .iter()
            .filter(|e| e.member.authorized && s.network.is_none_or(|n| n == e.network))
            .collect();
        // The tag match, resolved per network: (tag id, value, default).
        let mut wanted: HashMap<NetworkId, Option<(u32, u32, Option<u32>)>> = HashMap::new();
        if let Some(t) = &s.tag {
            for i in inputs
                .iter()
                .filter(|i| s.network.is_none_or(|n| n == i.network.id))
            {
                let defs = tags.get(&i.network.id).copied().unwrap_or_default();
                let resolved = resolve_tag(t, defs);
                if resolved.is_none() {
                    problems.push(format!(
                        "network {}: its rules declare no {} (check the network's tagsByName, or use numbers like \"1000=1\")",
                        i.network.id,
                        tag_text(t)
                    ));
                }
                wanted.insert(i.network.id, resolved);
            }
        }
        let mut chosen: Vec<&Named<'_>> = Vec::new();
        let mut seen: HashSet<(NetworkId, NodeId)> = HashSet::default();
        fn take<'b, 'c>(
            list: Vec<&'b Named<'c>>,
            chosen: &mut Vec<&'b Named<'c>>,
            seen: &mut HashSet<(NetworkId, NodeId)>,
        ) {
            for e in list {
                if seen.insert((e.network, e.member.node)) {
                    chosen.push(e);
                }
            }
        }
        for pattern in &s.members {
            let mut matches: Vec<&Named<'_>> = candidates
                .iter()
                .copied()
                .filter(|e| pattern_matches(pattern, e, &domains))
                .collect();
            matches.sort_by(|a, b| a.name().cmp(b.name()));
            take(matches, &mut chosen, &mut seen);
        }
        let label = s.label.as_str();
        let only_description = s.tag.is_none() && s.members.is_empty();
        let mut rest: Vec<&Named<'_>> = candidates
            .iter()
            .copied()
            .filter(|e| {
                let hints = e.member.hints.as_deref();
                let by_description = hints.is_some_and(|h| h.services.iter().any(|x| x == label));
                let by_tag = !only_description
                    && wanted.get(&e.network).copied().flatten().is_some_and(
                        |(id, value, default)| {
                            hints.and_then(|h| h.tag(id)).or(default) == Some(value)
                        },
                    );
                by_description || by_tag
            })
            .collect();
        rest.sort_by(|a, b| a.name().cmp(b.name()));
        take(rest, &mut chosen, &mut seen);
        let members = chosen
            .into_iter()
            .map(|e| ServiceMember {
                network: e.network,
                node: e.member.node,
                target: e.name().to_vec(),
                addresses: e.addresses.clone(),
                last_seen: e.member.last_seen,
            })
            .collect();
        plans.push(ServicePlan {
            service: s.clone(),
            owner,
            srv_owner: srv,
            members,
            problems,
        });
    }
    plans
}

/// `role=pg` through the network's declarations -> (tag id, value, the tag's default).
fn resolve_tag(t: &config::TagMatch, defs: &[TagDef]) -> Option<(u32, u32, Option<u32>)> {
    let def = match &t.tag {
        TagKey::Name(n) => Some(defs.iter().find(|d| d.name.as_deref() == Some(n))?),
        TagKey::Number(id) => defs.iter().find(|d| d.id == *id),
    };
    let id = match (&t.tag, def) {
        (_, Some(d)) => d.id,
        (TagKey::Number(id), None) => *id,
        (TagKey::Name(_), None) => return None,
    };
    let value = match &t.value {
        TagKey::Number(v) => *v,
        TagKey::Name(n) => def?.enums.iter().find(|(e, _)| e == n)?.1,
    };
    Some((id, value, def.and_then(|d| d.default)))
}

fn tag_text(t: &config::TagMatch) -> String {
    let part = |k: &TagKey| match k {
        TagKey::Name(n) => n.clone(),
        TagKey::Number(n) => n.to_string(),
    };
    format!("{}={}", part(&t.tag), part(&t.value))
}

/// A node id matches that member; a glob matches the name it asks for (after the naming
/// rules, below its domain) or its zt- name.
fn pattern_matches(
    pattern: &MemberPattern,
    e: &Named<'_>,
    domains: &HashMap<NetworkId, Vec<u8>>,
) -> bool {
    match pattern {
        MemberPattern::Node(n) => e.member.node == *n,
        MemberPattern::Glob(g) => {
            let domain_len = domains.get(&e.network).map_or(0, Vec::len);
            let relative = |wire: &[u8]| -> String {
                let text = wire_to_text(&wire[..wire.len().saturating_sub(domain_len)]);
                text.trim_end_matches('.').to_owned()
            };
            e.custom_wire
                .as_deref()
                .is_some_and(|w| g.matches(&relative(w)))
                || g.matches(&relative(&e.zt_wire))
        }
    }
}

/// The zone's records of each service: every member (see the module comment), with the
/// service's TTL. `first` holds its first member; SRV lists them all in failover order
/// (priority 0, 1, ...) for `first`, equal for `all`.
pub fn push_records(records: &mut RecordList, plans: &[ServicePlan]) {
    for p in plans {
        for (ip, _) in live_addresses(p, &p.members) {
            records.push_address(&p.owner, ip, p.service.ttl);
        }
        if let (Some(srv), Some(port)) = (&p.srv_owner, p.service.port) {
            for rdata in srv_rdatas(p, &p.members, port) {
                records.push_with(
                    |b| b.extend_from_slice(srv),
                    u16::from(RecordType::SRV),
                    p.service.ttl,
                    &rdata,
                );
            }
        }
    }
}

/// The addresses a service name answers with when `up` are its up members (in service order):
/// all of theirs, or the first one's for `first`; with the member each belongs to.
pub fn live_addresses<'a>(
    p: &ServicePlan,
    up: impl IntoIterator<Item = &'a ServiceMember>,
) -> Vec<(IpAddr, NodeId)> {
    let mut out = Vec::new();
    for m in up {
        out.extend(m.addresses.iter().map(|ip| (*ip, m.node)));
        if p.service.policy == Policy::First {
            break;
        }
    }
    out
}

/// SRV RDATA (`priority weight port target`, target uncompressed) for `up` in service order.
pub fn srv_rdatas<'a>(
    p: &ServicePlan,
    up: impl IntoIterator<Item = &'a ServiceMember>,
    port: u16,
) -> Vec<Vec<u8>> {
    up.into_iter()
        .enumerate()
        .map(|(i, m)| {
            let priority = match p.service.policy {
                Policy::First => u16::try_from(i).unwrap_or(u16::MAX),
                Policy::All => 0,
            };
            let mut rdata = Vec::with_capacity(6 + m.target.len());
            rdata.extend_from_slice(&priority.to_be_bytes());
            rdata.extend_from_slice(&1u16.to_be_bytes());
            rdata.extend_from_slice(&port.to_be_bytes());
            rdata.extend_from_slice(&m.target);
            rdata
        })
        .collect()
}

/// A service name's records as the health checks have them now: what the live table answers
/// and what `backhaul-dns zone` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRecords {
    /// Lowercase wire form.
    pub owner: Vec<u8>,
    /// `(type, RDATAs)`, RDATAs in answer order.
    pub sets: Vec<(u16, Vec<Vec<u8>>)>,
    pub ttl: u32,
    /// Rotate the address records from answer to answer (`policy = "all"`).
    pub rotate: bool,
}

/// Replaces the zone's records of the service names in `live` with those (for printing the
/// zone as it is answered now; the serial is left alone).
pub fn replace_records(zones: &mut super::Zones, live: &[LiveRecords]) {
    for zone in &mut zones.zones {
        // The service names this zone holds (the build put each in its zone).
        let here: HashSet<&[u8]> = (zone.records.iter())
            .filter(|r| live.iter().any(|l| l.owner == r.owner))
            .map(|r| r.owner)
            .collect();
        if here.is_empty() {
            continue;
        }
        // In place: the records keep their order (SOA first), a service name's records are
        // put where its first record was.
        let mut list = RecordList::default();
        let mut done: HashSet<&[u8]> = HashSet::default();
        for r in zone.records.iter() {
            if !here.contains(r.owner) {
                list.push(r);
                continue;
            }
            if !done.insert(r.owner) {
                continue;
            }
            for l in live.iter().filter(|l| l.owner == r.owner) {
                for (rtype, rdatas) in &l.sets {
                    for rdata in rdatas {
                        list.push_with(|b| b.extend_from_slice(&l.owner), *rtype, l.ttl, rdata);
                    }
                }
            }
        }
        drop(here);
        drop(done);
        zone.records = list;
    }
}
