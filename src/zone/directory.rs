//! Every name served, with where it comes from and what is wrong: the status page's table,
//! `/api/v1/names`, `/hosts` and `backhaul-dns hosts`.
//!
//! Worked out from the same data and the same steps as the zone ([`super::settle`]), on
//! demand: nothing of it is kept while nobody asks.

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::rr::{RData, RecordType};
use serde::Serialize;

use super::{settle, Input, RecordList, Settings, Settled};
use crate::dname::{name_wire, wire_to_text};
use crate::ids::{NetworkId, NodeId};
use crate::records::FileRecords;

/// Where a name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A member's own name or its `zt-` name.
    Member,
    /// A name from a `dns:` line of the member's description.
    Alias,
    /// A record of the records file.
    Records,
    /// A `[[service]]` name.
    Service,
    /// A name written by RFC 2136 updates.
    Updated,
}

/// One row: a name and its addresses, or a member that has no name served (`served` false).
/// The field names are the `/api/v1/names` contract (README "Status page and names API").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Without the trailing dot: `db.backhaul`.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub addresses: Vec<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorized: Option<bool>,
    /// The member's name as set in ZeroTier (any text), when it is not the DNS name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zerotier_name: Option<String>,
    /// Answered by this server now.
    pub served: bool,
    /// What is wrong, when something is (in words in the JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

impl Row {
    /// A served name that belongs to no member (the records file's, an update's, a test's).
    pub fn name_only(name: String, kind: Kind, addresses: Vec<IpAddr>) -> Row {
        Row {
            name,
            kind,
            addresses,
            node: None,
            network: None,
            authorized: None,
            zerotier_name: None,
            served: true,
            problem: None,
        }
    }
}

/// What is wrong with a row: its kind (what the status page counts) and the words for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Another member has the name it wants.
    Conflict,
    /// The records file or a service defines the name it wants.
    Taken,
    /// Its name gives no DNS label.
    NoLabel,
    Unauthorized,
    NoAddress,
    /// A service's definition (a tag no network declares...).
    Service,
}

impl Problem {
    fn new(kind: ProblemKind, text: impl Into<String>) -> Problem {
        Problem {
            kind,
            text: text.into(),
        }
    }
}

/// `/api/v1/names` gives the words.
impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Every row, sorted by name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Directory {
    pub names: Vec<Row>,
}

/// Works out the rows from what a build would use.
/// `updated`: the records updates wrote in the backhaul view, as the last build served them.
pub fn directory(
    inputs: &[Input<'_>],
    settings: &Settings,
    files: &FileRecords,
    updated: &RecordList,
) -> Directory {
    let Settled {
        entries,
        conflicts,
        overridden,
        plans,
        ..
    } = settle(inputs, settings, files, crate::names::Report::Quiet); // the build logged it
    let text = |wire: &[u8]| wire_to_text(wire).trim_end_matches('.').to_owned();
    let mut rows = Vec::with_capacity(entries.len() * 2);
    let lost: HashMap<(NetworkId, NodeId), Problem> = conflicts
        .iter()
        .filter(|c| c.loser != c.winner)
        .map(|c| {
            let why = format!(
                "wants {} but {} has it (older, or lower id)",
                c.name.to_ascii().trim_end_matches('.'),
                c.winner
            );
            (
                (c.network, c.loser),
                Problem::new(ProblemKind::Conflict, why),
            )
        })
        .collect();
    let taken: HashMap<(NetworkId, NodeId), Problem> = overridden
        .iter()
        .map(|o| {
            let why = format!(
                "wants {}, which the records file or a service defines",
                o.name.to_ascii().trim_end_matches('.')
            );
            ((o.network, o.member), Problem::new(ProblemKind::Taken, why))
        })
        .collect();
    let mut named: std::collections::HashSet<(NetworkId, NodeId)> = Default::default();
    for e in &entries {
        named.insert((e.network, e.member.node));
        let key = (e.network, e.member.node);
        let row = |name: &[u8], kind: Kind, problem: Option<Problem>| Row {
            name: text(name),
            kind,
            addresses: e.addresses.clone(),
            node: Some(e.member.node),
            network: Some(e.network),
            authorized: Some(e.member.authorized),
            zerotier_name: zerotier_name(&e.member.name, name),
            served: true,
            problem,
        };
        let mut problem = lost.get(&key).or_else(|| taken.get(&key)).cloned();
        if problem.is_none() && e.custom_wire.is_none() && !e.member.name.trim().is_empty() {
            problem = Some(Problem::new(
                ProblemKind::NoLabel,
                format!("its name \"{}\" gives no usable DNS label", e.member.name),
            ));
        }
        if !e.member.authorized {
            problem = Some(Problem::new(
                ProblemKind::Unauthorized,
                "not authorized (include_unauthorized = true serves it)",
            ));
        }
        rows.push(row(&e.zt_wire, Kind::Member, problem));
        if let Some(w) = e.custom_wire.as_deref().filter(|_| e.custom_won) {
            rows.push(row(w, Kind::Member, None));
        }
        for a in &e.aliases {
            rows.push(row(a, Kind::Alias, None));
        }
    }
    // Members without a name: not authorized, or nothing to answer with.
    for input in inputs {
        let Some(snap) = input.snapshot else { continue };
        for m in &snap.members {
            if named.contains(&(snap.id, m.node)) {
                continue;
            }
            let problem = if !m.authorized {
                Problem::new(
                    ProblemKind::Unauthorized,
                    "not authorized: waiting for approval",
                )
            } else {
                Problem::new(ProblemKind::NoAddress, "no address: nothing to answer with")
            };
            let wanted = crate::names::member_wire(&m.name, &name_wire(&input.network.domain));
            let name = match &wanted {
                Some(w) => text(w),
                None => text(&crate::names::zt_wire(
                    m.node,
                    &name_wire(&input.network.domain),
                )),
            };
            let zerotier_name = zerotier_name(&m.name, wanted.as_deref().unwrap_or_default());
            rows.push(Row {
                name,
                kind: Kind::Member,
                addresses: snap.addresses_of(m),
                node: Some(m.node),
                network: Some(snap.id),
                authorized: Some(m.authorized),
                zerotier_name,
                served: false,
                problem: Some(problem),
            });
        }
    }
    // The records file's names with addresses, and CNAMEs.
    let mut by_owner: std::collections::BTreeMap<String, Vec<IpAddr>> = Default::default();
    for r in &files.private {
        let owner = r.name.to_ascii().trim_end_matches('.').to_ascii_lowercase();
        let entry = by_owner.entry(owner).or_default();
        match &r.data {
            RData::A(a) => entry.push(IpAddr::V4(a.0)),
            RData::AAAA(a) => entry.push(IpAddr::V6(a.0)),
            _ => {}
        }
    }
    for r in files.private.iter().filter(|r| {
        matches!(
            r.record_type(),
            RecordType::A | RecordType::AAAA | RecordType::CNAME
        )
    }) {
        let owner = r.name.to_ascii().trim_end_matches('.').to_ascii_lowercase();
        if let Some(addresses) = by_owner.remove(&owner) {
            rows.push(Row::name_only(owner, Kind::Records, addresses));
        }
    }
    // Names written by updates: one row each, with its addresses if it has any.
    let mut by_owner: std::collections::BTreeMap<String, Vec<IpAddr>> = Default::default();
    for r in updated.iter() {
        let entry = by_owner.entry(text(r.owner)).or_default();
        match r.rdata.len() {
            4 if r.rtype == 1 => entry.extend(<[u8; 4]>::try_from(r.rdata).ok().map(IpAddr::from)),
            16 if r.rtype == 28 => {
                entry.extend(<[u8; 16]>::try_from(r.rdata).ok().map(IpAddr::from))
            }
            _ => {}
        }
    }
    for (name, addresses) in by_owner {
        rows.push(Row::name_only(name, Kind::Updated, addresses));
    }
    for p in &plans {
        let addresses = p
            .members
            .iter()
            .flat_map(|m| m.addresses.iter().copied())
            .collect();
        let problem = (!p.problems.is_empty())
            .then(|| Problem::new(ProblemKind::Service, p.problems.join("; ")));
        rows.push(Row {
            name: text(&p.owner),
            kind: Kind::Service,
            addresses,
            node: None,
            network: p.service.network,
            authorized: None,
            zerotier_name: None,
            // The name exists while it has members (the zone holds every one of them).
            served: !p.members.is_empty(),
            problem,
        });
    }
    rows.sort_by(|a, b| (&a.name, a.kind).cmp(&(&b.name, b.kind)));
    Directory { names: rows }
}

/// The member's ZeroTier name when the DNS name `wire` does not simply spell it.
fn zerotier_name(raw: &str, wire: &[u8]) -> Option<String> {
    let dns = wire_to_text(wire);
    let first = dns.split('.').next().unwrap_or("");
    (!raw.is_empty()
        && !raw.eq_ignore_ascii_case(first)
        && !dns.starts_with(&raw.to_ascii_lowercase()))
    .then(|| raw.to_owned())
}

impl Directory {
    /// The rows `scope` sees (`[[scope]]`): none whose name it does not see at all, and
    /// service names without the addresses of members it does not see.
    pub fn seen_by(&self, scopes: &super::ScopeMap, scope: u8) -> Directory {
        let bit = 1u32 << scope;
        let names = (self.names.iter())
            .filter(|r| {
                let mut wire = Vec::with_capacity(r.name.len() + 2);
                for label in r.name.trim_end_matches('.').split('.') {
                    wire.push(label.len().min(63) as u8);
                    wire.extend(label.bytes().take(63).map(|b| b.to_ascii_lowercase()));
                }
                wire.push(0);
                scopes.masks(&wire).gone & bit == 0
            })
            .map(|r| {
                let mut r = r.clone();
                r.addresses.retain(|ip| !scopes.address_hidden(*ip, scope));
                r
            })
            .filter(|r| !r.served || !r.addresses.is_empty() || r.kind == Kind::Records)
            .collect();
        Directory { names }
    }

    /// The hosts file of the served member names (`address name zt-name` lines, aliases after
    /// them), IPv4 and IPv6: for machines that cannot ask the server.
    pub fn hosts(&self) -> String {
        // Per member: its own name first, then the zt- name, then aliases.
        type Names<'a> = (Vec<(u8, &'a str)>, &'a [IpAddr]);
        let mut members: std::collections::BTreeMap<(NetworkId, NodeId), Names<'_>> =
            Default::default();
        for r in self.names.iter().filter(|r| r.served) {
            let (Some(node), Some(network)) = (r.node, r.network) else {
                continue;
            };
            // The member's own name, then its zt- name, then its aliases.
            let rank = match r.kind {
                Kind::Alias => 2,
                _ if r.name.starts_with(&format!("zt-{node}.")) => 1,
                _ => 0,
            };
            let entry = members
                .entry((network, node))
                .or_insert((Vec::new(), &r.addresses));
            entry.0.push((rank, &r.name));
        }
        let mut lines = Vec::new();
        for (_, (mut names, addresses)) in members {
            names.sort();
            let line: Vec<&str> = names.iter().map(|(_, n)| *n).collect();
            let line = line.join(" ");
            for ip in addresses {
                lines.push(format!("{ip}\t{line}"));
            }
        }
        let mut out =
            String::from("# Generated by backhaul-dns: the names of the members, as served.\n");
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }
}
