//! Scopes (`[[scope]]`) worked out once per zone build: which scope each client address
//! belongs to, and which names do not exist for each scope; also which member each member
//! address is (`_whoami`). Pure, like the rest of the build: the query path then pays one
//! hash probe per client, and reads each name's masks from its index node.

use std::collections::HashMap as StdHashMap;
use std::net::IpAddr;

use foldhash::{HashMap, HashMapExt};
use ipnet::IpNet;

use super::apexes::Apexes;
use super::list::RecordList;
use super::services::{owner_names, resolve_tag};
use super::Input;
use crate::config::{self, ScopeClient, Selector};
use crate::dname::{parent, wire_to_text};
use crate::ids::NetworkId;
use crate::names::Named;
use crate::reverse;
use crate::zerotier::TagDef;

/// What a scope's bits say about one name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Masks {
    /// Scopes for which the name holds no data (it may still exist, as the parent of names
    /// they see).
    pub hidden: u32,
    /// Scopes for which the name does not exist at all: hidden, and nothing they see below it.
    pub gone: u32,
}

/// The scopes of one build.
#[derive(Debug, Default)]
pub struct ScopeMap {
    /// The scopes' names; a scope's index is its bit.
    pub names: Vec<String>,
    /// Member addresses -> the scope that decides for them (the first that matches, its
    /// networks in `clients` included).
    by_address: HashMap<IpAddr, u8>,
    /// `clients` networks with their scope, in config order: for clients that are not members.
    nets: Vec<(IpNet, u8)>,
    /// Lowercase wire names that some scope does not see all of.
    pub names_hidden: HashMap<Vec<u8>, Masks>,
    /// Addresses of hidden members, with the scopes that do not see them: service names
    /// answer without them.
    pub addresses_hidden: HashMap<IpAddr, u32>,
    /// The scopes that hide some member's addresses.
    hidden_address_scopes: u32,
    /// Per scope, how many names it hides (the status page).
    pub counts: Vec<usize>,
    /// What did not resolve (a tag a network does not declare), for the log.
    pub problems: Vec<String>,
    /// Which member each member address is (`_whoami`): an index into `members`.
    member_at: HashMap<IpAddr, u32>,
    /// Each member's name (lowercase wire form) and node id.
    members: Vec<(Box<[u8]>, crate::ids::NodeId)>,
}

impl ScopeMap {
    /// Whether there are no scopes (members may still be known, for `_whoami`).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The scope of a client: the first whose `clients` match its address; `None` for a
    /// client in no scope (it sees everything).
    pub fn scope_of(&self, ip: IpAddr) -> Option<u8> {
        if let Some(s) = self.by_address.get(&ip) {
            return Some(*s);
        }
        self.nets
            .iter()
            .find(|(n, _)| n.contains(&ip))
            .map(|(_, s)| *s)
    }

    /// The member an address belongs to: its name (wire form) and node id.
    pub fn member_of(&self, ip: IpAddr) -> Option<(&[u8], crate::ids::NodeId)> {
        let (name, node) = self.members.get(*self.member_at.get(&ip)? as usize)?;
        Some((name, *node))
    }

    /// Whether some member's addresses are hidden from `scope` (service answers then drop them).
    pub fn hides_addresses(&self, scope: u8) -> bool {
        self.hidden_address_scopes & (1 << scope) != 0
    }

    /// Whether `ip` is an address of a member hidden from `scope`.
    pub fn address_hidden(&self, ip: IpAddr, scope: u8) -> bool {
        self.addresses_hidden
            .get(&ip)
            .is_some_and(|m| m & (1 << scope) != 0)
    }

    /// The masks of a name (lowercase wire form).
    pub fn masks(&self, name: &[u8]) -> Masks {
        self.names_hidden.get(name).copied().unwrap_or_default()
    }
}

/// The `tag:` selectors of `scopes` that name a tag or value no network declares, given each
/// network's declarations as last synced (`declared`; networks never synced are left out):
/// one line each, for `check`. Numbers are never wrong: a controller declares no names.
pub fn undeclared_tags(scopes: &[config::Scope], declared: &[Vec<TagDef>]) -> Vec<String> {
    let mut out = Vec::new();
    if declared.is_empty() {
        return out;
    }
    for (i, scope) in scopes.iter().enumerate() {
        let selectors = (scope.clients.iter())
            .filter_map(|c| match c {
                ScopeClient::Members(s) => Some(("clients", s)),
                ScopeClient::Net(_) => None,
            })
            .chain(scope.hide.iter().map(|s| ("hide", s)));
        for (key, selector) in selectors {
            let Selector::Tag(t) = selector else { continue };
            let known = declared.iter().any(|defs| resolve_tag(t, defs).is_some());
            if !known {
                out.push(format!(
                    "scope[{i}].{key}: no network's rules declare tag:{} (as last synced): check its spelling and the network's tagsByName, or use numbers like \"tag:1000=1\"",
                    super::services::tag_text(t)
                ));
            }
        }
    }
    out
}

/// The members selectors pick, worked out once per selector (not once per member and
/// scope): tags resolved per network first, globs over the names sorted once, a glob with a
/// literal start looking at the names with that start only.
pub(super) struct Picker<'e> {
    entries: &'e [Named<'e>],
    tags: StdHashMap<NetworkId, &'e [TagDef]>,
    /// Every member's names below its domain (zt- name, own name, aliases) with its index,
    /// sorted; empty when no selector is a glob.
    names: Vec<(String, usize)>,
}

impl<'e> Picker<'e> {
    pub(super) fn new(entries: &'e [Named<'e>], inputs: &[Input<'e>], globs: bool) -> Picker<'e> {
        let mut domains: StdHashMap<NetworkId, usize> = StdHashMap::new();
        let mut tags = StdHashMap::new();
        for i in inputs {
            domains.insert(
                i.network.id,
                crate::dname::name_wire(&i.network.domain).len(),
            );
            if let Some(s) = i.snapshot {
                tags.insert(s.id, s.tags.as_slice());
            }
        }
        let mut names = Vec::new();
        if globs {
            for (i, e) in entries.iter().enumerate() {
                let cut = domains.get(&e.network).copied().unwrap_or(1);
                for w in e.owners() {
                    names.push((relative_text(&w[..w.len().saturating_sub(cut)]), i));
                }
            }
            names.sort_unstable();
        }
        Picker {
            entries,
            tags,
            names,
        }
    }

    /// The entries `selector` picks (each once, in no particular order); a tag a network
    /// does not declare goes to `problems` once.
    pub(super) fn picked(&self, selector: &Selector, problems: &mut Vec<String>) -> Vec<usize> {
        match selector {
            Selector::Node(n) => (0..self.entries.len())
                .filter(|i| self.entries[*i].member.node == *n)
                .collect(),
            Selector::Glob(g) => {
                let text = g.as_str();
                let literal = &text[..text.find(['*', '?', '[']).unwrap_or(text.len())];
                let from = self.names.partition_point(|(n, _)| n.as_str() < literal);
                let mut out: Vec<usize> = (self.names[from..].iter())
                    .take_while(|(n, _)| n.starts_with(literal))
                    .filter(|(n, _)| g.matches(n))
                    .map(|(_, i)| *i)
                    .collect();
                out.sort_unstable();
                out.dedup();
                out
            }
            Selector::Tag(t) => {
                let mut resolved: StdHashMap<NetworkId, Option<(u32, u32, Option<u32>)>> =
                    StdHashMap::new();
                for (network, defs) in &self.tags {
                    let r = resolve_tag(t, defs);
                    if r.is_none() {
                        let problem = format!(
                            "network {network} declares no tag {}: check its rules (tagsByName) or use numbers like \"tag:1000=1\"",
                            super::services::tag_text(t)
                        );
                        if !problems.contains(&problem) {
                            problems.push(problem);
                        }
                    }
                    resolved.insert(*network, r);
                }
                (0..self.entries.len())
                    .filter(|i| {
                        let e = &self.entries[*i];
                        let Some(Some((id, value, default))) = resolved.get(&e.network) else {
                            return false;
                        };
                        let has = e.member.hints.as_ref().and_then(|h| h.tag(*id));
                        has.or(*default) == Some(*value)
                    })
                    .collect()
            }
        }
    }
}

/// `db.prod` from the wire name below a domain (no trailing dot).
fn relative_text(wire_below: &[u8]) -> String {
    let mut text = wire_to_text(&[wire_below, &[0]].concat());
    text.pop();
    text.to_ascii_lowercase()
}

/// The scopes of a build: `records` is every record of the view (members, files, services,
/// apexes), `apexes` its zones.
pub(super) fn map(
    scopes: &[config::Scope],
    inputs: &[Input<'_>],
    entries: &[Named<'_>],
    settings_services: &[config::Service],
    file_owners: &[Vec<u8>],
    records: &RecordList,
    apexes: &Apexes,
) -> ScopeMap {
    let mut out = ScopeMap {
        names: scopes.iter().map(|s| s.name.clone()).collect(),
        counts: vec![0; scopes.len()],
        ..ScopeMap::default()
    };
    // Who each member address is, scopes or not.
    out.members.reserve(entries.len());
    for e in entries {
        let at = out.members.len() as u32;
        out.members.push((e.name().into(), e.member.node));
        for ip in &e.addresses {
            out.member_at.entry(*ip).or_insert(at);
        }
    }
    if scopes.is_empty() {
        return out;
    }
    let member_selectors = scopes.iter().flat_map(|s| {
        (s.clients.iter())
            .filter_map(|c| match c {
                ScopeClient::Members(sel) => Some(sel),
                ScopeClient::Net(_) => None,
            })
            .chain(&s.hide)
    });
    let globs = member_selectors
        .clone()
        .any(|sel| matches!(sel, Selector::Glob(_)));
    let picker = Picker::new(entries, inputs, globs);
    let mut problems = Vec::new();
    // Clients: each member's scope is the first that picks it (by member or by network).
    let mut scope_of = vec![u8::MAX; entries.len()];
    for (bit, scope) in scopes.iter().enumerate().rev() {
        for client in &scope.clients {
            match client {
                ScopeClient::Net(net) => out.nets.push((*net, bit as u8)),
                ScopeClient::Members(sel) => {
                    for i in picker.picked(sel, &mut problems) {
                        scope_of[i] = bit as u8;
                    }
                }
            }
        }
    }
    out.nets.reverse();
    out.nets.sort_by_key(|(_, bit)| *bit);
    for (e, by_member) in entries.iter().zip(&scope_of) {
        for ip in &e.addresses {
            let by_net = out
                .nets
                .iter()
                .find(|(n, _)| n.contains(ip))
                .map(|(_, b)| *b);
            let scope = (*by_member).min(by_net.unwrap_or(u8::MAX));
            if scope != u8::MAX {
                out.by_address.insert(*ip, scope);
            }
        }
    }
    // Hidden names: members (every name and PTR), records-file owners and services by glob.
    let mut hidden_members = vec![0u32; entries.len()];
    let mut hidden: HashMap<Vec<u8>, u32> = HashMap::new();
    let services = owner_names(settings_services);
    for (bit, scope) in scopes.iter().enumerate() {
        let mask = 1u32 << bit;
        for selector in &scope.hide {
            for i in picker.picked(selector, &mut problems) {
                hidden_members[i] |= mask;
            }
        }
        let globs: Vec<&glob::Pattern> = (scope.hide.iter())
            .filter_map(|h| match h {
                Selector::Glob(g) => Some(g),
                _ => None,
            })
            .collect();
        if globs.is_empty() {
            continue;
        }
        let below_apex = |wire: &[u8]| -> String {
            let apex_len = apexes.closest(wire).map_or(1, |s| apexes.names[s].0.len());
            relative_text(&wire[..wire.len().saturating_sub(apex_len)])
        };
        for (s, (owner, srv)) in settings_services.iter().zip(&services) {
            if globs
                .iter()
                .any(|g| g.matches(&s.label.to_ascii_lowercase()))
            {
                for o in std::iter::once(owner).chain(srv) {
                    *hidden.entry(o.clone()).or_default() |= mask;
                }
            }
        }
        for owner in file_owners {
            if globs.iter().any(|g| g.matches(&below_apex(owner))) {
                *hidden.entry(owner.clone()).or_default() |= mask;
            }
        }
    }
    for (e, mask) in entries
        .iter()
        .zip(&hidden_members)
        .filter(|(_, m)| **m != 0)
    {
        for owner in e.owners() {
            *hidden.entry(owner.to_vec()).or_default() |= mask;
        }
        for ip in &e.addresses {
            let mut ptr = Vec::with_capacity(74);
            reverse::push_ptr_wire(&mut ptr, *ip);
            *hidden.entry(ptr).or_default() |= mask;
            *out.addresses_hidden.entry(*ip).or_default() |= mask;
        }
    }
    out.hidden_address_scopes = out.addresses_hidden.values().fold(0, |a, m| a | m);
    out.names_hidden = gone(hidden, records, apexes, scopes.len());
    for masks in out.names_hidden.values() {
        for (bit, count) in out.counts.iter_mut().enumerate() {
            *count += usize::from(masks.gone & (1 << bit) != 0);
        }
    }
    out.problems = problems;
    out
}

/// The masks of every name some scope does not see whole: a hidden owner is gone for a scope
/// that sees nothing below it; a name that only exists as the parent of hidden names (an
/// empty non-terminal) is gone for the scopes that see none of them.
fn gone(
    hidden: HashMap<Vec<u8>, u32>,
    records: &RecordList,
    apexes: &Apexes,
    scopes: usize,
) -> HashMap<Vec<u8>, Masks> {
    let all = if scopes >= 32 {
        u32::MAX
    } else {
        (1u32 << scopes) - 1
    };
    // For each name above an owner (to its apex, not included): the scopes that see
    // something below it.
    let mut seen_below: HashMap<&[u8], u32> = HashMap::new();
    let mut owners: Vec<&[u8]> = records.iter().map(|r| r.owner).collect();
    owners.dedup();
    for owner in &owners {
        let visible = all & !hidden.get(*owner).copied().unwrap_or(0);

        let apex_len = apexes.closest(owner).map_or(1, |s| apexes.names[s].0.len());
        let mut up = parent(owner);
        while let Some(p) = up.filter(|p| p.len() > apex_len) {
            match seen_below.get_mut(p) {
                // Seen before with these bits: its ancestors have them too.
                Some(seen) if *seen & visible == visible => break,
                Some(seen) => *seen |= visible,
                None => {
                    seen_below.insert(p, visible);
                }
            }
            up = parent(p);
        }
    }
    let mut out = HashMap::with_capacity(hidden.len());
    for (name, h) in hidden {
        let below = seen_below.get(name.as_slice()).copied().unwrap_or(0);
        out.insert(
            name,
            Masks {
                hidden: h,
                gone: h & !below,
            },
        );
    }
    // Parents that are only parents (no records of their own) of names some scope misses.
    let is_owner: foldhash::HashSet<&[u8]> = owners.iter().copied().collect();
    for (name, seen) in &seen_below {
        if !is_owner.contains(name) && *seen != all {
            let missing = all & !seen;
            out.insert(
                name.to_vec(),
                Masks {
                    hidden: missing,
                    gone: missing,
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dname::name_wire;
    use hickory_proto::rr::Name;

    fn wire(name: &str) -> Vec<u8> {
        name_wire(&Name::from_ascii(name).unwrap())
    }

    /// A parent with a name every scope sees stays for all; one whose names scope 0 misses
    /// entirely is gone for scope 0 only; a hidden name with a seen name below it holds no
    /// data but exists.
    #[test]
    fn parents_exist_while_a_scope_sees_something_below() {
        let mut records = RecordList::default();
        for owner in [
            "a.p.backhaul.",
            "b.p.backhaul.",
            "c.q.backhaul.",
            "h.backhaul.",
            "x.h.backhaul.",
        ] {
            records.push_address(&wire(owner), "10.0.0.1".parse().unwrap(), 60);
        }
        let mut apexes = Apexes::default();
        apexes.insert(wire("backhaul."), Name::from_ascii("backhaul.").unwrap());
        let hidden: HashMap<Vec<u8>, u32> = [
            (wire("b.p.backhaul."), 0b01),
            (wire("c.q.backhaul."), 0b01),
            (wire("h.backhaul."), 0b10),
        ]
        .into_iter()
        .collect();
        let masks = gone(hidden, &records, &apexes, 2);
        let m = |n: &str| masks.get(&wire(n)).copied().unwrap_or_default();
        assert_eq!(m("p.backhaul."), Masks::default(), "a.p is seen by both");
        assert_eq!(m("b.p.backhaul."), Masks { hidden: 1, gone: 1 });
        assert_eq!(
            m("q.backhaul."),
            Masks { hidden: 1, gone: 1 },
            "only c.q below it"
        );
        assert_eq!(
            m("h.backhaul."),
            Masks { hidden: 2, gone: 0 },
            "x.h is seen below it"
        );
    }

    /// The names directory as a scope sees it: hidden names gone, a service without the
    /// addresses of hidden members, records without addresses kept.
    #[test]
    fn the_directory_a_scope_sees() {
        use crate::zone::directory::{Directory, Kind, Row};
        let row = |name: &str, kind, addresses: &[&str]| {
            let addresses = addresses.iter().map(|a| a.parse().unwrap()).collect();
            Row::name_only(name.into(), kind, addresses)
        };
        let d = Directory {
            names: vec![
                row("pg.prod.backhaul", Kind::Member, &["10.0.0.2"]),
                row("dev.backhaul", Kind::Member, &["10.0.0.1"]),
                row("all.backhaul", Kind::Service, &["10.0.0.1", "10.0.0.2"]),
                row("prod-only.backhaul", Kind::Service, &["10.0.0.2"]),
                row("txt.backhaul", Kind::Records, &[]),
            ],
        };
        let mut map = ScopeMap::default();
        let gone = Masks { hidden: 1, gone: 1 };
        map.names_hidden.insert(wire("pg.prod.backhaul."), gone);
        map.addresses_hidden.insert("10.0.0.2".parse().unwrap(), 1);
        let seen = d.seen_by(&map, 0);
        let names: Vec<(&str, usize)> = (seen.names.iter())
            .map(|r| (r.name.as_str(), r.addresses.len()))
            .collect();
        assert_eq!(
            names,
            [
                ("dev.backhaul", 1),
                ("all.backhaul", 1),
                ("txt.backhaul", 0)
            ]
        );
        // Another scope sees everything.
        assert_eq!(d.seen_by(&map, 1).names.len(), 5);
    }
}
