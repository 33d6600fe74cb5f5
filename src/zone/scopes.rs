//! Scopes (`[[scope]]`) worked out once per zone build: which scope each client address
//! belongs to, and which names do not exist for each scope. Pure, like the rest of the build;
//! the query path then pays one hash probe per client and per name it answers from.

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
}

impl ScopeMap {
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

/// The members selectors pick, as indexes into `entries`.
struct Picker<'e> {
    entries: &'e [Named<'e>],
    tags: StdHashMap<NetworkId, &'e [TagDef]>,
    /// Each member's names below its domain (zt- name, own name, aliases), as text.
    relative: Vec<Vec<String>>,
}

impl<'e> Picker<'e> {
    fn new(entries: &'e [Named<'e>], inputs: &[Input<'e>]) -> Picker<'e> {
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
        let relative = entries
            .iter()
            .map(|e| {
                let cut = domains.get(&e.network).copied().unwrap_or(1);
                e.owners()
                    .map(|w| relative_text(&w[..w.len().saturating_sub(cut)]))
                    .collect()
            })
            .collect();
        Picker {
            entries,
            tags,
            relative,
        }
    }

    /// Whether entry `i` is one of the members `selector` names; tags that a network does
    /// not declare go to `problems` (once per selector and network).
    fn picks(&self, selector: &Selector, i: usize, problems: &mut Vec<String>) -> bool {
        let e = &self.entries[i];
        match selector {
            Selector::Node(n) => e.member.node == *n,
            Selector::Glob(g) => self.relative[i].iter().any(|name| g.matches(name)),
            Selector::Tag(t) => {
                let defs = self.tags.get(&e.network).copied().unwrap_or_default();
                match resolve_tag(t, defs) {
                    Some((id, value, default)) => {
                        let has = e.member.hints.as_ref().and_then(|h| h.tag(id));
                        has.or(default) == Some(value)
                    }
                    None => {
                        let problem = format!(
                            "network {} declares no tag {}: check its rules (tagsByName) or use numbers like \"tag:1000=1\"",
                            e.network,
                            super::services::tag_text(t)
                        );
                        if !problems.contains(&problem) {
                            problems.push(problem);
                        }
                        false
                    }
                }
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
    if scopes.is_empty() {
        return out;
    }
    let picker = Picker::new(entries, inputs);
    let mut problems = Vec::new();
    // Clients: each member address takes the first scope that picks the member or whose
    // networks hold the address.
    for (bit, scope) in scopes.iter().enumerate() {
        for client in &scope.clients {
            if let ScopeClient::Net(net) = client {
                out.nets.push((*net, bit as u8));
            }
        }
    }
    for (i, e) in entries.iter().enumerate() {
        let by_member = scopes.iter().position(|s| {
            (s.clients.iter()).any(
                |c| matches!(c, ScopeClient::Members(sel) if picker.picks(sel, i, &mut problems)),
            )
        });
        for ip in &e.addresses {
            let by_net = out
                .nets
                .iter()
                .find(|(n, _)| n.contains(ip))
                .map(|(_, b)| *b);
            let scope = match (by_member.map(|b| b as u8), by_net) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(s) = scope {
                out.by_address.insert(*ip, s);
            }
        }
    }
    // Hidden names: members (every name and PTR), records-file owners and services by glob.
    let mut hidden: HashMap<Vec<u8>, u32> = HashMap::new();
    let services = owner_names(settings_services);
    for (bit, scope) in scopes.iter().enumerate() {
        let mask = 1u32 << bit;
        for (i, e) in entries.iter().enumerate() {
            if scope.hide.iter().any(|h| picker.picks(h, i, &mut problems)) {
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
        let service_owners = settings_services.iter().zip(&services);
        for (s, (owner, srv)) in service_owners {
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
    out.hidden_address_scopes = out.addresses_hidden.values().fold(0, |a, m| a | m);
    out.names_hidden = gone(&hidden, records, apexes, scopes.len());
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
    hidden: &HashMap<Vec<u8>, u32>,
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
    let mut out = HashMap::new();
    for (name, h) in hidden {
        let below = seen_below.get(name.as_slice()).copied().unwrap_or(0);
        out.insert(
            name.clone(),
            Masks {
                hidden: *h,
                gone: *h & !below,
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
