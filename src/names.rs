//! Where a member becomes a name: member name text -> DNS labels, reserved names, and the
//! collision rule between members (and with the records file).
//!
//! Pure functions; the rules are the README's "Names" section.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::net::IpAddr;

use foldhash::HashSet;

use hickory_proto::rr::Name;

use crate::dname::{name_wire, wire_name, wire_to_text, MAX_LABEL, MAX_NAME};
use crate::ids::{NetworkId, NodeId};
use crate::zerotier::Member;

/// The name every member gets, unique by construction: `zt-<nodeId>` under `domain` (wire
/// form), put together as bytes: no name parsing per member. The config
/// refuses domains too long for it.
pub fn zt_wire(node: NodeId, domain: &[u8]) -> Vec<u8> {
    let mut w = Vec::with_capacity(14 + domain.len());
    w.extend_from_slice(b"\x0dzt-");
    const HEX: &[u8; 16] = b"0123456789abcdef";
    w.extend(
        (0..10)
            .rev()
            .map(|i| HEX[(node.0 >> (4 * i) & 0xf) as usize]),
    );
    w.extend_from_slice(domain);
    w
}

/// Appends one label made of `part`, length byte first: lowercase; whitespace and `_` become
/// `-`; anything outside `[a-z0-9-]` is dropped; runs of `-` collapse; no leading or trailing
/// `-`; at most 63 bytes. Appends nothing if nothing is left.
fn push_label(out: &mut Vec<u8>, part: &str) {
    let start = out.len();
    out.push(0);
    for c in part.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_whitespace() || c == '_' {
            '-'
        } else {
            c
        };
        match c {
            'a'..='z' | '0'..='9' => out.push(c as u8),
            '-' if out.len() > start + 1 && out.last() != Some(&b'-') => out.push(b'-'),
            _ => {}
        }
    }
    out.truncate(start + 1 + MAX_LABEL);
    while out.len() > start + 1 && out.last() == Some(&b'-') {
        out.pop();
    }
    match out.len() - start - 1 {
        0 => out.truncate(start),
        len => out[start] = len as u8,
    }
}

/// The name a member asks for, as a full name under `domain`, in lowercase wire form (what the
/// zone build compares and stores); `None` if nothing usable is left. `domain` is the
/// lowercase wire form of the network's domain. The rules are [`member_name`]'s.
pub fn member_wire(raw: &str, domain: &[u8]) -> Option<Vec<u8>> {
    let mut wire = Vec::with_capacity(raw.len() + domain.len() + 2);
    for part in raw.split('.') {
        push_label(&mut wire, part);
    }
    // A name that already ends in the domain is not doubled: cut at the label where the
    // domain starts (label bytes can look like length bytes, so only label starts count).
    let domain_labels = &domain[..domain.len() - 1];
    let mut at = 0;
    while at < wire.len() {
        if wire[at..] == *domain_labels {
            wire.truncate(at);
            break;
        }
        at += 1 + usize::from(wire[at]);
    }
    if wire.is_empty() || wire.len() + domain.len() > MAX_NAME {
        return None;
    }
    wire.extend_from_slice(domain);
    Some(wire)
}

/// The name a member asks for, as a full name under `domain`; `None` if nothing usable is left.
///
/// Dots split labels (`web.prod` -> `web.prod.<domain>`), and a name that already ends in the
/// domain is not doubled (`db.backhaul` -> `db.backhaul.`). Each label is lowercased; spaces
/// and `_` become `-`; other characters outside `[a-z0-9-]` are dropped; at most 63 bytes.
///
/// ```
/// use backhaul_dns::names::member_name;
/// use hickory_proto::rr::Name;
///
/// let domain = Name::from_ascii("backhaul.").unwrap();
/// let name = |raw| member_name(raw, &domain).map(|n| n.to_ascii());
/// assert_eq!(name("Joe Sixpack's iMac").as_deref(), Some("joe-sixpacks-imac.backhaul."));
/// assert_eq!(name("web.prod").as_deref(), Some("web.prod.backhaul."));
/// assert_eq!(name("db.backhaul").as_deref(), Some("db.backhaul."));
/// assert_eq!(name("☕"), None);
/// ```
pub fn member_name(raw: &str, domain: &Name) -> Option<Name> {
    member_wire(raw, &name_wire(domain)).map(|w| wire_name(&w))
}

/// Collision rule for two members that want the same name: oldest `creationTime` wins, then the
/// lowest node id. A member with an unknown creation time sorts after every known one.
pub fn precedence(a: &Member, b: &Member) -> Ordering {
    let key = |m: &Member| (m.creation_time.unwrap_or(i64::MAX), m.node);
    key(a).cmp(&key(b))
}

/// Two members wanted the same name; `winner` got it (oldest creationTime, then lowest id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub name: Name,
    pub winner: NodeId,
    pub loser: NodeId,
    pub network: NetworkId,
}

/// A member name that a records-file record took over: the member keeps its zt- name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Override {
    pub name: Name,
    pub member: NodeId,
    pub network: NetworkId,
}

/// A member that made it into the zone, with its names and addresses.
pub struct Named<'a> {
    pub network: NetworkId,
    pub member: &'a Member,
    pub addresses: Vec<IpAddr>,
    /// Lowercase wire forms of the zt- name and of the name the member asks for: compared and
    /// used as owners.
    pub zt_wire: Vec<u8>,
    pub custom_wire: Option<Vec<u8>>,
    /// Set by [`resolve`]: the member got the name it asks for.
    pub custom_won: bool,
    /// Set by [`resolve_aliases`]: the extra names (`dns:` in its description) it got.
    pub aliases: Vec<Vec<u8>>,
    /// `*.<its name>`, when it asks for one (`dns: *`, `[[network]] wildcard`): set by the
    /// zone build after the names are settled.
    pub wildcard_wire: Option<Vec<u8>>,
}

impl<'a> Named<'a> {
    /// A member of network `network` under `domain` (lowercase wire form), before [`resolve`].
    pub fn new(
        network: NetworkId,
        member: &'a Member,
        addresses: Vec<IpAddr>,
        domain: &[u8],
    ) -> Named<'a> {
        Named {
            network,
            member,
            addresses,
            zt_wire: zt_wire(member.node, domain),
            custom_wire: member_wire(&member.name, domain),
            custom_won: false,
            aliases: Vec::new(),
            wildcard_wire: None,
        }
    }

    /// Owners of the member's address records: its zt- name, its own name if it won it, the
    /// aliases it got, and its wildcard.
    pub fn owners(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.zt_wire.as_slice())
            .chain(self.won())
            .chain(self.aliases.iter().map(Vec::as_slice))
            .chain(self.wildcard_wire.as_deref())
    }

    /// The name it is known by: its own if it won it, else its zt- name (its PTR target).
    pub fn name(&self) -> &[u8] {
        self.ptr_target()
    }

    /// What its PTR records point at: its own name if it won it, else its zt- name.
    pub fn ptr_target(&self) -> &[u8] {
        self.won().unwrap_or(&self.zt_wire)
    }

    fn won(&self) -> Option<&[u8]> {
        self.custom_wire.as_deref().filter(|_| self.custom_won)
    }
}

/// Whether settling names logs what it finds: a zone build does, once per change; the names
/// directory (`/hosts`, `/api/v1/names`) reads the same data again and stays quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    Log,
    Quiet,
}

/// Applies the collision rule; returns the conflicts (one per losing member) and the member
/// names that a records-file name took over.
pub fn resolve(
    entries: &mut [Named<'_>],
    apexes: &BTreeSet<Name>,
    file_owners: &HashSet<Vec<u8>>,
    report: Report,
) -> (Vec<Conflict>, Vec<Override>) {
    let mut overridden = Vec::new();
    // Sorting the claims by name groups the claimants of each name without a map of lists.
    let mut claims: Vec<usize> = {
        let zt_names: HashSet<&[u8]> = entries.iter().map(|e| e.zt_wire.as_slice()).collect();
        let apexes: HashSet<Vec<u8>> = apexes.iter().map(name_wire).collect();
        let mut claims = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let Some(wire) = &e.custom_wire else {
                continue;
            };
            if zt_names.contains(wire.as_slice()) || apexes.contains(wire) {
                if report == Report::Log {
                    tracing::warn!(network = %e.network, member = %e.member.node, name = %wire_to_text(wire),
                        "name is reserved (a zt- name or a zone apex): zt- name only");
                }
                continue;
            }
            if file_owners.contains(wire) {
                overridden.push(Override {
                    name: wire_name(wire),
                    member: e.member.node,
                    network: e.network,
                });
                continue;
            }
            claims.push(i);
        }
        claims
    };
    claims.sort_by(|a, b| {
        let (ea, eb) = (&entries[*a], &entries[*b]);
        (ea.custom_wire.cmp(&eb.custom_wire)).then_with(|| precedence(ea.member, eb.member))
    });
    let mut conflicts = Vec::new();
    let groups: Vec<&[usize]> = claims
        .chunk_by(|a, b| entries[*a].custom_wire == entries[*b].custom_wire)
        .collect();
    for claimants in groups {
        let winner = entries[claimants[0]].member.node;
        for &i in claimants {
            let e = &mut entries[i];
            // The same node in two networks is one host, not a conflict.
            if e.member.node == winner {
                e.custom_won = true;
            } else {
                let name = wire_name(e.custom_wire.as_deref().unwrap_or_default());
                if report == Report::Log {
                    tracing::warn!(network = %e.network, name = %name, winner = %winner, loser = %e.member.node,
                        "name conflict: the older member keeps the name, the other keeps only its zt- name");
                }
                conflicts.push(Conflict {
                    name,
                    winner,
                    loser: e.member.node,
                    network: e.network,
                });
            }
        }
    }
    conflicts.sort_by(|a, b| (&a.name, a.loser).cmp(&(&b.name, b.loser)));
    overridden.sort_by(|a, b| (&a.name, a.member).cmp(&(&b.name, b.member)));
    (conflicts, overridden)
}

/// Gives members the aliases their descriptions ask for (`dns: alias1 alias2`), after
/// [`resolve`]: an alias never takes a name that is already taken (`taken`: records-file
/// owners, service names and apexes; every member's zt- name and won name are added here),
/// and two members asking for one alias are settled by [`precedence`]. Returns the alias
/// conflicts; `domain_of` gives a network's domain (lowercase wire form).
pub fn resolve_aliases(
    entries: &mut [Named<'_>],
    domain_of: impl Fn(NetworkId) -> Vec<u8>,
    mut taken: HashSet<Vec<u8>>,
    report: Report,
) -> Vec<Conflict> {
    // Who holds each member-held name, for the conflict report.
    let mut holders: foldhash::HashMap<Vec<u8>, NodeId> = foldhash::HashMap::default();
    for e in entries.iter() {
        holders.insert(e.zt_wire.clone(), e.member.node);
        if let Some(w) = e.won() {
            holders.insert(w.to_vec(), e.member.node);
        }
    }
    let mut order: Vec<usize> = (0..entries.len())
        .filter(|i| {
            entries[*i]
                .member
                .hints
                .as_ref()
                .is_some_and(|h| !h.aliases.is_empty())
        })
        .collect();
    order.sort_by(|a, b| precedence(entries[*a].member, entries[*b].member));
    let mut conflicts = Vec::new();
    for i in order {
        let domain = domain_of(entries[i].network);
        let e = &mut entries[i];
        let hints = e
            .member
            .hints
            .as_deref()
            .map(|h| h.aliases.as_slice())
            .unwrap_or_default();
        for alias in hints {
            let Some(wire) = member_wire(alias, &domain) else {
                continue;
            };
            if e.owners().any(|o| o == wire.as_slice()) {
                continue;
            }
            if let Some(holder) = holders.get(&wire).copied().filter(|h| *h != e.member.node) {
                if report == Report::Log {
                    tracing::warn!(network = %e.network, name = %wire_to_text(&wire), holder = %holder, member = %e.member.node,
                        "alias conflict: the name is taken, the alias is not served");
                }
                conflicts.push(Conflict {
                    name: wire_name(&wire),
                    winner: holder,
                    loser: e.member.node,
                    network: e.network,
                });
                continue;
            }
            if taken.contains(&wire) {
                if report == Report::Log {
                    tracing::warn!(network = %e.network, name = %wire_to_text(&wire), member = %e.member.node,
                        "alias not served: the records file, a service or a zone apex has the name");
                }
                continue;
            }
            taken.insert(wire.clone());
            holders.insert(wire.clone(), e.member.node);
            e.aliases.push(wire);
        }
    }
    conflicts.sort_by(|a, b| (&a.name, a.loser).cmp(&(&b.name, b.loser)));
    conflicts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> Option<String> {
        member_name(raw, &Name::from_ascii("backhaul.").unwrap()).map(|n| n.to_ascii())
    }

    #[test]
    fn zt_wire_is_the_zt_name() {
        for (node, domain) in [
            (0xa45dc9d260u64, "backhaul."),
            (0, "a.b.example."),
            (0xffffffffff, "x."),
        ] {
            let domain = Name::from_ascii(domain).unwrap();
            let want = Name::from_ascii(format!("zt-{}.{domain}", NodeId(node))).unwrap();
            assert_eq!(
                zt_wire(NodeId(node), &crate::dname::name_wire(&domain)),
                crate::dname::name_wire(&want)
            );
        }
    }

    #[test]
    fn naming_rules() {
        assert_eq!(name("db").as_deref(), Some("db.backhaul."));
        assert_eq!(name("DB").as_deref(), Some("db.backhaul."));
        assert_eq!(
            name("Joe Sixpack's iMac").as_deref(),
            Some("joe-sixpacks-imac.backhaul.")
        );
        assert_eq!(
            name("my-chain_bootstrap").as_deref(),
            Some("my-chain-bootstrap.backhaul.")
        );
        assert_eq!(
            name("  lots   of\tspace ").as_deref(),
            Some("lots-of-space.backhaul.")
        );
        assert_eq!(name("--a--b--").as_deref(), Some("a-b.backhaul."));
        assert_eq!(name("web.prod").as_deref(), Some("web.prod.backhaul."));
        assert_eq!(name("db.backhaul").as_deref(), Some("db.backhaul."));
        assert_eq!(name("db.Backhaul.").as_deref(), Some("db.backhaul."));
        assert_eq!(name("abc.").as_deref(), Some("abc.backhaul."));
        assert_eq!(name("café☕").as_deref(), Some("caf.backhaul."));
        assert_eq!(name(""), None);
        assert_eq!(name("   "), None);
        assert_eq!(name("☕"), None);
        assert_eq!(name("backhaul"), None);
        assert_eq!(name("..."), None);
    }

    #[test]
    fn labels_are_cut_to_63_bytes() {
        let long = "a".repeat(70) + "-b";
        let n = name(&long).unwrap();
        assert_eq!(n, format!("{}.backhaul.", "a".repeat(63)));
        // a cut that ends on '-' does not leave a trailing '-'
        let long = "a".repeat(62) + "-bc";
        assert_eq!(
            name(&long).unwrap(),
            format!("{}.backhaul.", "a".repeat(62))
        );
    }

    #[test]
    fn over_long_names_are_unusable() {
        let raw = vec!["x".repeat(60); 5].join(".");
        assert_eq!(name(&raw), None);
    }

    #[test]
    fn names_fill_255_bytes_and_no_more() {
        // "backhaul." is 10 bytes in wire form; three 63-byte labels take 192 and one of 52
        // takes 53: exactly 255. One more byte is over the limit, which hickory enforces too.
        let raw = |last: usize| format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(last));
        let wire = crate::dname::name_wire(&Name::from_ascii(name(&raw(52)).unwrap()).unwrap());
        assert_eq!(wire.len(), 255);
        assert_eq!(name(&raw(53)), None);
        assert!(Name::from_ascii(format!("{}.backhaul.", raw(53))).is_err());
    }

    #[test]
    fn the_domain_is_cut_only_at_a_label_boundary() {
        // The domain's first length byte (48) is the byte '0': inside the member's label the
        // bytes match the domain's wire form, but no label starts there.
        let domain = Name::from_ascii(format!("{}.net.", "a".repeat(48))).unwrap();
        let raw = format!("q0{}.net", "a".repeat(48));
        assert_eq!(
            member_name(&raw, &domain).unwrap().to_ascii(),
            format!("{raw}.{domain}")
        );
        let raw = format!("q.{}.net", "a".repeat(48));
        assert_eq!(
            member_name(&raw, &domain).unwrap().to_ascii(),
            format!("q.{domain}")
        );
    }

    #[test]
    fn precedence_oldest_then_lowest_id() {
        let m = |node: u64, t: Option<i64>| Member {
            node: NodeId(node),
            name: String::new(),
            authorized: true,
            creation_time: t,
            ips: vec![],
            no_auto_assign_ips: false,
            hints: None,
            last_seen: None,
        };
        assert_eq!(precedence(&m(9, Some(1)), &m(1, Some(2))), Ordering::Less);
        assert_eq!(precedence(&m(1, Some(5)), &m(2, Some(5))), Ordering::Less);
        assert_eq!(precedence(&m(1, None), &m(2, Some(5))), Ordering::Greater);
    }
}
