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
use crate::dname::{labels, name_wire, wire_to_text};
use crate::ids::{NetworkId, NodeId};
use crate::names::Named;
use crate::zerotier::{NetworkSnapshot, TagDef};

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
    if services.is_empty() {
        return Vec::new();
    }
    let tags: HashMap<NetworkId, &[TagDef]> = inputs
        .iter()
        .filter_map(|i| i.snapshot.map(|s| (s.id, s.tags.as_slice())))
        .collect();
    let snapshots: HashMap<NetworkId, &NetworkSnapshot> = (inputs.iter())
        .filter_map(|i| i.snapshot.map(|s| (s.id, s)))
        .collect();
    // Health checks connect to these addresses, and the service answers with them: only
    // addresses on the member's own network, never one its entry merely names.
    let on_network = |e: &Named<'_>| -> Vec<IpAddr> {
        let snapshot = snapshots.get(&e.network);
        (e.addresses.iter())
            .filter(|ip| snapshot.is_none_or(|s| s.on_network(ip)))
            .copied()
            .collect()
    };
    let domains: HashMap<NetworkId, Vec<u8>> = inputs
        .iter()
        .map(|i| (i.network.id, name_wire(&i.network.domain)))
        .collect();
    let globs = services.iter().any(|s| {
        s.members
            .iter()
            .any(|p| matches!(p, MemberPattern::Glob(_)))
    });
    let index = Index::new(entries, &domains, globs);
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
        let eligible =
            |e: &Named<'_>| e.member.authorized && s.network.is_none_or(|n| n == e.network);
        // The tag match, resolved per network: (tag id, value, default).
        let mut wanted: HashMap<NetworkId, (u32, u32, Option<u32>)> = HashMap::new();
        if let Some(t) = &s.tag {
            // Networks not synced yet have no declarations to read: nothing to report.
            for i in inputs
                .iter()
                .filter(|i| s.network.is_none_or(|n| n == i.network.id))
                .filter(|i| i.snapshot.is_some())
            {
                let defs = tags.get(&i.network.id).copied().unwrap_or_default();
                match resolve_tag(t, defs) {
                    Some(resolved) => {
                        wanted.insert(i.network.id, resolved);
                    }
                    None => problems.push(format!(
                        "network {}: its rules declare no {} (check the network's tagsByName, or use numbers like \"1000=1\")",
                        i.network.id,
                        tag_text(t)
                    )),
                }
            }
        }
        let mut chosen: Vec<usize> = Vec::new();
        let mut seen: HashSet<usize> = HashSet::default();
        let mut take = |mut found: Vec<usize>, chosen: &mut Vec<usize>| {
            // By name as written (label by label), not by wire bytes, whose length octets
            // would put "zeta" before "alpha".
            found.sort_by(|a, b| labels(entries[*a].name()).cmp(labels(entries[*b].name())));
            chosen.extend(found.into_iter().filter(|i| seen.insert(*i)));
        };
        for pattern in &s.members {
            let found = index
                .matching(pattern)
                .filter(|i| eligible(&entries[*i]))
                .collect();
            take(found, &mut chosen);
        }
        // Tag and description matches, by name.
        let mut found: Vec<usize> = index
            .by_description
            .get(s.label.as_str())
            .into_iter()
            .flatten()
            .copied()
            .collect();
        for (network, (id, value, default)) in &wanted {
            let has = |i: &usize| {
                let e = &entries[*i];
                e.network == *network
                    && e.member
                        .hints
                        .as_ref()
                        .and_then(|h| h.tag(*id))
                        .or(*default)
                        == Some(*value)
            };
            // A member without the tag has its default: when that is the value asked for,
            // every member may match; otherwise only members with tags can.
            if *default == Some(*value) {
                found.extend((0..entries.len()).filter(has));
            } else {
                found.extend(index.tagged.iter().copied().filter(has));
            }
        }
        found.retain(|i| eligible(&entries[*i]));
        take(found, &mut chosen);
        let chosen: Vec<&Named<'_>> = chosen.into_iter().map(|i| &entries[i]).collect();
        let members = chosen
            .into_iter()
            .map(|e| ServiceMember {
                network: e.network,
                node: e.member.node,
                target: e.name().to_vec(),
                addresses: on_network(e),
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
pub(super) fn resolve_tag(
    t: &config::TagMatch,
    defs: &[TagDef],
) -> Option<(u32, u32, Option<u32>)> {
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

pub(super) fn tag_text(t: &config::TagMatch) -> String {
    let part = |k: &TagKey| match k {
        TagKey::Name(n) => n.clone(),
        TagKey::Number(n) => n.to_string(),
    };
    format!("{}={}", part(&t.tag), part(&t.value))
}

/// The members looked up by what services choose them by, built once per zone build: a
/// service costs its matches, not a pass over 100,000 members.
struct Index<'e> {
    entries: &'e [Named<'e>],
    /// Every member's name below its domain, the one it asks for and its zt- name, sorted:
    /// a glob with a literal start looks at the names with that start only. Empty when no
    /// service has a glob.
    names: Vec<(String, usize)>,
    /// Members by the services their description names.
    by_description: HashMap<&'e str, Vec<usize>>,
    /// Members that have tags.
    tagged: Vec<usize>,
}

impl<'e> Index<'e> {
    fn new(
        entries: &'e [Named<'e>],
        domains: &HashMap<NetworkId, Vec<u8>>,
        globs: bool,
    ) -> Index<'e> {
        let mut names = Vec::new();
        if globs {
            names.reserve(entries.len() * 2);
            for (i, e) in entries.iter().enumerate() {
                let domain_len = domains.get(&e.network).map_or(0, Vec::len);
                let relative = |wire: &[u8]| {
                    let text = wire_to_text(&wire[..wire.len().saturating_sub(domain_len)]);
                    text.trim_end_matches('.').to_owned()
                };
                names.push((relative(&e.zt_wire), i));
                if let Some(w) = &e.custom_wire {
                    names.push((relative(w), i));
                }
            }
            names.sort_unstable();
        }
        let mut by_description: HashMap<&'e str, Vec<usize>> = HashMap::new();
        let mut tagged = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let Some(h) = e.member.hints.as_deref() else {
                continue;
            };
            for label in &h.services {
                by_description.entry(label.as_str()).or_default().push(i);
            }
            if !h.tags.is_empty() {
                tagged.push(i);
            }
        }
        Index {
            entries,
            names,
            by_description,
            tagged,
        }
    }

    /// The members a `members` entry names: a node id that member; a glob the members whose
    /// name (after the naming rules, below the domain) or zt- name it matches. Each once.
    fn matching(&self, pattern: &MemberPattern) -> impl Iterator<Item = usize> + '_ {
        let mut found: Vec<usize> = match pattern {
            MemberPattern::Node(n) => (self.entries.iter().enumerate())
                .filter(|(_, e)| e.member.node == *n)
                .map(|(i, _)| i)
                .collect(),
            MemberPattern::Glob(g) => {
                let text = g.as_str();
                let literal = &text[..text.find(['*', '?', '[', '\\']).unwrap_or(text.len())];
                let from = self.names.partition_point(|(n, _)| n.as_str() < literal);
                (self.names[from..].iter())
                    .take_while(|(n, _)| n.starts_with(literal))
                    .filter(|(n, _)| g.matches(n))
                    .map(|(_, i)| *i)
                    .collect()
            }
        };
        found.sort_unstable();
        found.dedup();
        found.into_iter()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Check, Service, TagMatch};
    use crate::names::Named;
    use crate::zerotier::{Hints, Member, NetworkSnapshot};
    use hickory_proto::rr::Name;
    use std::time::Duration;

    const DOMAIN: &[u8] = b"\x08backhaul\x00";

    fn member(
        node: u64,
        name: &str,
        created: i64,
        tags: Vec<(u32, u32)>,
        description: &str,
    ) -> Member {
        Member {
            node: NodeId(node),
            name: name.into(),
            authorized: true,
            creation_time: Some(created),
            ips: vec![format!("10.0.0.{node}").parse().unwrap()],
            no_auto_assign_ips: true,
            hints: Hints::new(tags, description),
            last_seen: None,
        }
    }

    fn service(name: &str, tag: Option<TagMatch>, members: &[&str], policy: Policy) -> Service {
        Service {
            label: name.into(),
            name: Name::from_ascii(format!("{name}.backhaul.")).unwrap(),
            network: None,
            tag,
            members: members
                .iter()
                .map(|m| match m.parse() {
                    Ok(node) => MemberPattern::Node(node),
                    Err(()) => MemberPattern::Glob(glob::Pattern::new(m).unwrap()),
                })
                .collect(),
            policy,
            port: Some(5432),
            protocol: "tcp".into(),
            check: Check::None,
            interval: Duration::from_secs(5),
            fall: 2,
            rise: 2,
            max_age: Duration::from_secs(120),
            ttl: 5,
        }
    }

    /// The members of each service (their node numbers, in service order).
    fn chosen(services: &[Service], members: Vec<Member>, tags: Vec<TagDef>) -> Vec<Vec<u64>> {
        let net = config::Network {
            id: NetworkId(1),
            domain: Name::from_ascii("backhaul.").unwrap(),
            source: config::Source::File {
                members_file: "/dev/null".into(),
            },
            poll_interval: Duration::from_secs(30),
            include_unauthorized: false,
            push_dns: false,
            wildcard: Vec::new(),
        };
        let snapshot = NetworkSnapshot {
            id: NetworkId(1),
            rfc4193: false,
            sixplane: false,
            routes: Vec::new(),
            members,
            tags,
        };
        let mut entries: Vec<Named<'_>> = (snapshot.members.iter())
            .map(|m| Named::new(NetworkId(1), m, snapshot.addresses_of(m), DOMAIN))
            .collect();
        for e in &mut entries {
            e.custom_won = e.custom_wire.is_some();
        }
        let inputs = [Input {
            network: &net,
            snapshot: Some(&snapshot),
        }];
        select(services, &entries, &inputs, &HashSet::default())
            .iter()
            .map(|p| p.members.iter().map(|m| m.node.0).collect())
            .collect()
    }

    #[test]
    fn members_list_order_then_tag_and_description_matches_by_name() {
        let members = vec![
            member(1, "db-b", 1, vec![(1000, 1)], ""),
            member(2, "db-a", 2, vec![], ""),
            member(3, "zeta", 3, vec![(1000, 1)], ""),
            member(4, "alpha", 4, vec![], "note: x\nServices: pg, cache"),
            member(5, "web", 5, vec![(1000, 2)], ""),
        ];
        let role = TagDef {
            id: 1000,
            name: Some("role".into()),
            default: Some(0),
            enums: vec![("pg".into(), 1), ("web".into(), 2)],
        };
        let tag = |t: &str, v: &str| TagMatch {
            tag: TagKey::Name(t.into()),
            value: TagKey::Name(v.into()),
        };
        let services = [
            service(
                "pg",
                Some(tag("role", "pg")),
                &["0000000005", "db-*"],
                Policy::First,
            ),
            service("cache", None, &[], Policy::All),
            service("none", Some(tag("role", "nosuch")), &[], Policy::All),
            service(
                "untagged",
                Some(TagMatch {
                    tag: TagKey::Number(1000),
                    value: TagKey::Number(0),
                }),
                &[],
                Policy::All,
            ),
        ];
        let got = chosen(&services, members, vec![role]);
        // The node id first, the glob's matches by name, then tag and description by name.
        assert_eq!(got[0], [5, 2, 1, 4, 3]);
        assert_eq!(got[1], [4]);
        assert!(got[2].is_empty());
        // Members without the tag have its default (0).
        assert_eq!(got[3], [4, 2]);
    }

    #[test]
    fn srv_owner_names() {
        let s = service("pg", None, &[], Policy::All);
        assert_eq!(
            srv_owner(&s).map(|w| wire_to_text(&w)),
            Some("_pg._tcp.backhaul.".to_owned())
        );
        let mut nested = service("pg", None, &[], Policy::All);
        nested.name = Name::from_ascii("pg.prod.backhaul.").unwrap();
        assert_eq!(
            srv_owner(&nested).map(|w| wire_to_text(&w)),
            Some("_pg._tcp.prod.backhaul.".to_owned())
        );
        nested.port = None;
        assert_eq!(srv_owner(&nested), None);
    }
}
