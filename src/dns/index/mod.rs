//! The compiled, immutable zone the query path reads: every name with its RRsets already
//! encoded, packed into byte arenas and found through a hash table of offsets.
//!
//! Built once per sync from [`crate::zone::Zones`] and swapped in whole. Every name between a
//! record's owner and its apex is present (empty non-terminals too), so the nearest existing
//! ancestor of a missing name tells both that the name does not exist and which zone's SOA
//! goes in the negative answer: a handful of hash probes at any zone size.
//!
//! Memory and cache misses are the point of the layout: a 100,000-member network has about
//! half a million names. A map of boxed names to boxed RRset lists cost ~220 bytes a name in
//! allocations and pointers; here a name costs its bytes below the zone apex, a 10-byte header
//! and an 8-byte table slot (the table is at most 70% full), and its RRsets are stored once
//! for all names that have the same ones: a member's `zt-` name shares its name's A and AAAA,
//! its IPv4 and IPv6 PTR names share one PTR set. A list is stored right behind the first name
//! that has it, so a query for a member's name reads one table slot and one stretch of the
//! arena.

mod build;
mod encode;
mod patch;
mod visibility;

use foldhash::fast::RandomState;
use std::hash::BuildHasher;

use super::live::{LiveTable, SharedLive};
pub use super::rrset::RrSet;
use super::table::{Probe, Table};
use crate::dname::{parent, rtype, MAX_NAME};
use crate::zone::{Masks, ScopeMap, Zones};
use std::sync::Arc;
pub use visibility::Visibility;

/// Class IN on the wire.
/// The `*` label in wire form.
const WILDCARD_LABEL: &[u8] = b"\x01*";
/// Compression pointer to the question name, which always sits at offset 12.
const POINTER_TO_QNAME: [u8; 2] = [0xc0, 0x0c];

/// Node flag: `*.<this name>` exists, so a miss right below this name is answered from it
/// (RFC 4592).
const WILDCARD_CHILD: u8 = 1;
/// Node flag: a later copy of this node (with more RRsets) replaced it; skipped when walking.
const SUPERSEDED: u8 = 2;
/// Node flag: a service name, answered from the live table when it has the name
/// ([`super::live`]).
const LIVE: u8 = 4;
/// Node flag: some `[[scope]]` does not see this name whole; its [`Masks`] (hidden, gone:
/// 4 bytes each) follow the fixed part, in the node's own cache line.
const MASKED: u8 = 8;
const MASKS_LEN: usize = 8;

/// A node in the arena: `KEYLEN(1) | KEY | ZONE(4) | FLAGS(1) | SETS(4) [| MASKS(8)]`, where the key is the
/// lowercase wire name without its zone's apex and SETS the arena offset of its RRset list:
/// `NSETS(2) | RRSET...`, each RRset `TYPE(2) | COUNT(2) | LEN(4) | WIRE`. The list follows
/// the first node that has it; later nodes with the same list point back to it. Integers are
/// little-endian, read unaligned.
const NODE_FIXED: usize = 4 + 1 + 4;
const RRSET_HEADER: usize = 8;
/// The empty RRset list (of every empty non-terminal) sits at offset 0 of the arena.
const NO_SETS: u32 = 0;
/// The first node comes after it.
const FIRST_NODE: usize = 2;

/// A name of the index, read in place from the arena.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    /// The name below its zone's apex (empty at the apex).
    pub prefix: &'a [u8],
    pub zone: u32,
    flags: u8,
    nsets: u16,
    sets: &'a [u8],
    /// What `[[scope]]`s miss of this name (none for most names).
    masks: Masks,
}

impl<'a> Node<'a> {
    /// The node at `at` of the arena.
    #[inline(always)]
    fn read(arena: &'a [u8], at: usize) -> Node<'a> {
        Node::read_parts(arena, at).0
    }

    /// The node at `at` of the arena, the offset just past its fixed part and masks, and
    /// where its RRset list is (right there when stored with it).
    #[inline(always)]
    fn read_parts(arena: &'a [u8], at: usize) -> (Node<'a>, usize, usize) {
        let key_len = usize::from(arena[at]);
        let key_end = at + 1 + key_len;
        let fixed = &arena[key_end..key_end + NODE_FIXED];
        let zone = le32(fixed, 0);
        let flags = fixed[4];
        let sets_at = le32(fixed, 5) as usize;
        let mut end = key_end + NODE_FIXED;
        let masks = if flags & MASKED != 0 {
            end += MASKS_LEN;
            Masks {
                hidden: le32(arena, end - MASKS_LEN),
                gone: le32(arena, end - 4),
            }
        } else {
            Masks::default()
        };
        let sets = &arena[sets_at..];
        let node = Node {
            prefix: &arena[at + 1..key_end],
            zone,
            flags,
            nsets: u16::from_le_bytes([sets[0], sets[1]]),
            sets: &sets[2..],
            masks,
        };
        (node, end, sets_at)
    }

    /// The node at `at` and where the next one starts (behind its RRset list if that is
    /// stored with it): walking the arena, not answering.
    fn read_walking(arena: &'a [u8], at: usize) -> (Node<'a>, usize) {
        let (node, mut next, sets_at) = Node::read_parts(arena, at);
        if sets_at == next {
            next += 2 + node.sets_len();
        }
        (node, next)
    }

    /// Bytes of the RRsets after NSETS.
    fn sets_len(&self) -> usize {
        self.rrsets().map(|s| RRSET_HEADER + s.wire.len()).sum()
    }

    /// Empty for an empty non-terminal. Few per node: a linear scan beats hashing.
    pub fn rrsets(&self) -> impl Iterator<Item = RrSet<'a>> + use<'a> {
        let mut rest = self.sets;
        (0..self.nsets).map(move |_| {
            // Split, so that the header's bytes are read without a bounds check each.
            let (head, after) = rest.split_at(RRSET_HEADER);
            let rtype = u16::from_le_bytes([head[0], head[1]]);
            let count = u16::from_le_bytes([head[2], head[3]]);
            let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
            let (wire, next) = after.split_at(len);
            rest = next;
            RrSet { rtype, count, wire }
        })
    }

    pub fn rrset(&self, rtype: u16) -> Option<RrSet<'a>> {
        self.rrsets().find(|s| s.rtype == rtype)
    }

    fn wildcard_child(&self) -> bool {
        self.flags & WILDCARD_CHILD != 0
    }

    /// A service name: see [`ZoneIndex::live`].
    pub fn is_live(&self) -> bool {
        self.flags & LIVE != 0
    }
}

#[derive(Clone)]
pub struct ZoneMeta {
    /// The apex name in wire form.
    pub apex: Box<[u8]>,
    /// `TYPE | CLASS | TTL | RDLENGTH | RDATA` of the SOA with TTL = min(SOA TTL, MINIMUM)
    /// (RFC 2308 section 3), for the authority section of negative answers.
    pub negative_soa: Box<[u8]>,
    pub complete: bool,
    pub serial: u32,
    /// The zone has delegations (NS below its apex): lookups then look for a cut above the
    /// name. Zones without any pay nothing for them.
    pub cuts: bool,
    /// The zone has DNAMEs (RFC 6672): lookups then look for one above the name.
    pub dnames: bool,
    /// Differences from older serials, for IXFR (when transfers are configured).
    pub journal: Option<std::sync::Arc<crate::zone::Journal>>,
    /// A followed zone past its SOA expire: SERVFAIL for every name in it.
    pub expired: bool,
}

impl ZoneMeta {
    /// Length of the apex name in wire form, to point at it inside the question name.
    pub fn apex_len(&self) -> usize {
        self.apex.len()
    }
}

/// Where a name lands.
pub enum Lookup<'a> {
    /// The name exists (possibly as an empty non-terminal), or a wildcard covers it.
    Found(Node<'a>, &'a ZoneMeta),
    /// Inside one of our zones, but no such name.
    NxDomain(&'a ZoneMeta),
    /// At or below a delegation (NS below the apex): the cut's node, whose NS set is the
    /// referral, and the length of the cut's wire name (a suffix of the name asked).
    Referral(Node<'a>, &'a ZoneMeta, usize),
    /// Below a DNAME (RFC 6672): the DNAME's node, and the length of its owner's wire name
    /// (a suffix of the name asked).
    Redirect(Node<'a>, &'a ZoneMeta, usize),
    /// Not in any zone we serve.
    NotOurs,
}

impl<'a> Lookup<'a> {
    /// The zone the name landed in, if one of ours.
    pub fn meta(&self) -> Option<&'a ZoneMeta> {
        match self {
            Lookup::Found(_, m)
            | Lookup::NxDomain(m)
            | Lookup::Referral(_, m, _)
            | Lookup::Redirect(_, m, _) => Some(m),
            Lookup::NotOurs => None,
        }
    }
}

pub struct ZoneIndex {
    /// Every node back to back (superseded copies included, flagged), each distinct RRset
    /// list once, behind the first node that has it.
    arena: Vec<u8>,
    /// Arena offsets of the live nodes, by hash of the full lowercase wire name.
    table: Table,
    zones: Vec<ZoneMeta>,
    /// Seeded per process: query names are the lookup keys, and clients choose them.
    hasher: RandomState,
    /// The service names' current answers, shared by every index of the view.
    live: SharedLive,
    /// Who sees what (`[[scope]]`): the clients' scopes; each node carries its own masks.
    scopes: Arc<ScopeMap>,
    /// The networks' subnets, most specific first ([`ZoneIndex::home`]).
    subnets: crate::dns::access::Nets,
}

impl Default for ZoneIndex {
    fn default() -> ZoneIndex {
        ZoneIndex {
            arena: vec![0, 0], // NO_SETS
            table: Table::default(),
            zones: Vec::new(),
            hasher: RandomState::default(),
            live: SharedLive::default(),
            scopes: Arc::default(),
            subnets: Default::default(),
        }
    }
}

/// The little-endian u32 at `at` (the arena's offsets and zone numbers).
#[inline]
fn le32(bytes: &[u8], at: usize) -> u32 {
    // One bounds check for the four bytes, not four.
    let mut four = [0u8; 4];
    four.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(four)
}

/// Whether the node at `at` is named `name` (full wire form). A superseded node is named
/// nothing: a name an update removed keeps its table slot as a tombstone.
#[inline]
fn is_named(arena: &[u8], zones: &[ZoneMeta], at: u32, name: &[u8]) -> bool {
    let at = at as usize;
    let key_len = usize::from(arena[at]);
    let key = &arena[at + 1..at + 1 + key_len];
    let zone = le32(arena, at + 1 + key_len);
    let apex = &zones[zone as usize].apex;
    if name.len() != key_len + apex.len() {
        return false;
    }
    let (prefix, suffix) = name.split_at(key_len);
    same_bytes(prefix, key)
        && same_bytes(suffix, apex)
        && arena[at + 1 + key_len + 4] & SUPERSEDED == 0
}

/// `a == b`. Most name prefixes and apexes are 8 to 16 bytes long: two overlapping eight-byte
/// reads compare those inline, where `==` calls memcmp (two calls, about 35 instructions per
/// query).
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let ends = |s: &[u8]| Some((*s.first_chunk::<8>()?, *s.last_chunk::<8>()?));
    match (ends(a), ends(b)) {
        (Some(x), Some(y)) if a.len() <= 16 && a.len() == b.len() => x == y,
        _ => a == b,
    }
}

impl ZoneIndex {
    /// Answers service names from `live` (the view's table) from now on.
    pub fn with_live(mut self, live: SharedLive) -> ZoneIndex {
        self.live = live;
        self
    }

    /// The live answers of `name`, a node flagged [`Node::is_live`]; `None` (answer from the
    /// zone) until the health side has published the name.
    pub fn live(&self) -> arc_swap::Guard<std::sync::Arc<LiveTable>> {
        self.live.load()
    }

    /// Every live node (superseded copies skipped).
    fn nodes(&self) -> impl Iterator<Item = Node<'_>> + '_ {
        let mut at = FIRST_NODE;
        std::iter::from_fn(move || loop {
            if at >= self.arena.len() {
                return None;
            }
            let (node, end) = Node::read_walking(&self.arena, at);
            at = end;
            if node.flags & SUPERSEDED == 0 {
                return Some(node);
            }
        })
    }

    /// A node's whole name (wire form).
    fn name_of(&self, node: &Node<'_>) -> Vec<u8> {
        [node.prefix, &self.zones[node.zone as usize].apex].concat()
    }

    /// Every live node with its full name.
    fn walk(&self) -> impl Iterator<Item = (Vec<u8>, Node<'_>)> + '_ {
        self.nodes().map(|node| (self.name_of(&node), node))
    }

    #[inline(always)]
    fn find(&self, name: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(name);
        let (arena, zones) = (&self.arena, &self.zones);
        self.table.find(hash, |at| is_named(arena, zones, at, name))
    }

    #[inline(always)]
    fn get(&self, name: &[u8]) -> Option<Node<'_>> {
        self.find(name)
            .map(|at| Node::read(&self.arena, at as usize))
    }

    /// `qname` is lowercase wire form (as [`super::wire::QName::lower`] gives it).
    // Inlined with `lookup_data`, `get` and `find` into the answer: returned through memory,
    // the node found (some 70 bytes) was copied up the calls, each copy read right after it
    // was written.
    #[inline]
    pub fn lookup(&self, qname: &[u8]) -> Lookup<'_> {
        let found = self.lookup_data(qname);
        let meta = match &found {
            Lookup::Found(_, meta) | Lookup::NxDomain(meta) => *meta,
            _ => return found,
        };
        if meta.cuts || meta.dnames {
            if let Some(found) = self.above(qname, meta) {
                return found;
            }
        }
        found
    }

    /// The delegation at or above `qname` in its zone (up to, not including, the apex), or
    /// the DNAME above it (up to and including the apex), if any. Nothing may be below a
    /// DNAME nor below a cut but glue, and names are checked for that when files are read, so
    /// the first one found is the only one.
    fn above<'a>(&'a self, qname: &[u8], meta: &'a ZoneMeta) -> Option<Lookup<'a>> {
        let mut at = Some(qname);
        while let Some(name) = at.filter(|n| n.len() >= meta.apex.len()) {
            if let Some(node) = self.get(name) {
                if meta.dnames && name.len() < qname.len() && node.rrset(rtype::DNAME).is_some() {
                    return Some(Lookup::Redirect(node, meta, name.len()));
                }
                let cut = name.len() > meta.apex.len() && node.rrset(rtype::NS).is_some();
                if meta.cuts && cut {
                    return Some(Lookup::Referral(node, meta, name.len()));
                }
            }
            at = parent(name);
        }
        None
    }

    /// The node named exactly `name`, cuts or not: glue below a delegation.
    pub fn exact(&self, name: &[u8]) -> Option<Node<'_>> {
        self.get(name)
    }

    /// [`lookup`](Self::lookup) without delegations: the data and wildcards of the zone.
    #[inline(always)]
    fn lookup_data(&self, qname: &[u8]) -> Lookup<'_> {
        if let Some(node) = self.get(qname) {
            return Lookup::Found(node, &self.zones[node.zone as usize]);
        }
        // The nearest existing ancestor is the closest encloser (RFC 4592 3.3.1): only its
        // wildcard child may answer; below an existing name no other wildcard applies.
        let mut up = parent(qname);
        while let Some(p) = up {
            if let Some(node) = self.get(p) {
                if node.wildcard_child() {
                    let mut key = [0u8; 2 + MAX_NAME];
                    key[..2].copy_from_slice(WILDCARD_LABEL);
                    key[2..2 + p.len()].copy_from_slice(p);
                    if let Some(source) = self.get(&key[..2 + p.len()]) {
                        return Lookup::Found(source, &self.zones[source.zone as usize]);
                    }
                }
                return Lookup::NxDomain(&self.zones[node.zone as usize]);
            }
            up = parent(p);
        }
        Lookup::NotOurs
    }

    /// The zone whose apex is exactly `qname`, if we serve one.
    pub fn zone_at_apex(&self, qname: &[u8]) -> Option<(u32, Node<'_>, &ZoneMeta)> {
        let node = self.get(qname)?;
        let meta = &self.zones[node.zone as usize];
        node.prefix.is_empty().then_some((node.zone, node, meta))
    }

    /// Every name of one zone, in no particular order (zone transfers).
    pub fn names_in(&self, zone: u32) -> impl Iterator<Item = Node<'_>> {
        self.walk()
            .map(|(_, node)| node)
            .filter(move |n| n.zone == zone)
    }

    pub fn names(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dname::name_wire;
    use crate::dname::wire_to_text;
    use crate::zone::{RecordList, ZoneContent};
    use hickory_proto::rr::Name;
    use hickory_proto::rr::RecordType;
    use std::net::IpAddr;
    use std::str::FromStr;

    /// An A or AAAA record before it goes into a zone.
    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
    struct Address {
        owner: Vec<u8>,
        ip: IpAddr,
    }

    impl Address {
        fn rtype(&self) -> u16 {
            u16::from(if self.ip.is_ipv4() {
                RecordType::A
            } else {
                RecordType::AAAA
            })
        }
    }

    fn a(owner: &str, ip: [u8; 4]) -> Address {
        let owner = name_wire(&Name::from_str(owner).unwrap());
        Address {
            owner,
            ip: IpAddr::from(ip),
        }
    }

    fn zone(apex: &str, records: Vec<Address>) -> ZoneContent {
        let mut list = RecordList::default();
        for r in records {
            list.push_address(&r.owner, r.ip, 60);
        }
        ZoneContent {
            apex: Name::from_str(apex).unwrap(),
            complete: true,
            hash: [0; 32],
            serial: 1,
            records: list.sorted(),
            journal: None,
            expired: false,
        }
    }

    fn wire(name: &str) -> Vec<u8> {
        name_wire(&Name::from_str(name).unwrap())
    }

    #[test]
    fn same_bytes_is_equality_at_every_length_and_position() {
        let base: Vec<u8> = (0..40u8).collect();
        for len in 0..=base.len() {
            let a = &base[..len];
            assert!(same_bytes(a, a), "length {len}");
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 0x20;
                assert!(!same_bytes(a, &b), "length {len}, byte {at} differs");
            }
            // One byte shorter.
            if len > 0 {
                assert!(
                    !same_bytes(a, &base[..len - 1]),
                    "lengths {len} and {}",
                    len - 1
                );
            }
        }
    }

    #[test]
    fn names_ancestors_and_merged_nodes() {
        let zones = Zones {
            zones: vec![
                zone(
                    "backhaul.",
                    vec![
                        a("x.y.backhaul.", [10, 0, 0, 1]),
                        a("backhaul.", [10, 0, 0, 9]),
                        // Sorted before its parent's records: `y` starts as an empty
                        // non-terminal, then gets an A record (a merged node).
                        a("y.backhaul.", [10, 0, 0, 2]),
                        a("*.w.backhaul.", [10, 0, 0, 3]),
                    ],
                ),
                zone("sub.backhaul.", vec![a("sub.backhaul.", [10, 0, 0, 4])]),
            ],
            ..Zones::default()
        };
        let index = ZoneIndex::compile(&zones);
        let found = |n: &str| match index.lookup(&wire(n)) {
            Lookup::Found(node, meta) => Some((
                node.rrsets()
                    .map(|s| (s.rtype, s.count, s.wire.len()))
                    .collect::<Vec<_>>(),
                meta.apex_len(),
            )),
            _ => None,
        };
        assert_eq!(found("x.y.backhaul."), Some((vec![(1, 1, 16)], 10)));
        assert_eq!(found("y.backhaul."), Some((vec![(1, 1, 16)], 10)));
        assert_eq!(
            found("w.backhaul."),
            Some((vec![], 10)),
            "empty non-terminal"
        );
        assert_eq!(
            found("q.w.backhaul."),
            Some((vec![(1, 1, 16)], 10)),
            "wildcard"
        );
        assert_eq!(found("sub.backhaul."), Some((vec![(1, 1, 16)], 14)));
        assert!(
            matches!(index.lookup(&wire("z.backhaul.")), Lookup::NxDomain(m) if m.apex_len() == 10)
        );
        assert!(matches!(
            index.lookup(&wire("q.x.y.backhaul.")),
            Lookup::NxDomain(_)
        ));
        assert_eq!(
            found("q.x.w.backhaul."),
            Some((vec![(1, 1, 16)], 10)),
            "wildcard, two labels"
        );
        assert!(matches!(index.lookup(&wire("example.")), Lookup::NotOurs));
        // A walk sees each live name once: the superseded copy of `y` is skipped.
        let mut names: Vec<Vec<u8>> = index.walk().map(|(n, _)| n).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before);
        assert_eq!(index.names(), before);
        assert_eq!(before, 6, "backhaul, x.y, y, w, *.w, sub: {names:?}");
        assert_eq!(index.names_in(1).count(), 1);
    }

    /// A lookup's outcome: (type and count of each RRset, apex length, found); None: not ours.
    type Seen = Option<(Vec<(u16, u16)>, usize, bool)>;

    /// What a lookup must find, worked out the slow way from the records alone.
    fn expected(zones: &[(Vec<u8>, Vec<Address>)], qname: &[u8]) -> Seen {
        // Every name: owners, and their ancestors down to the apex of their zone.
        let mut names: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        for (zi, (apex, records)) in zones.iter().enumerate() {
            for r in records {
                let mut name: &[u8] = &r.owner;
                loop {
                    names.entry(name.to_vec()).or_insert(zi);
                    if name == apex.as_slice() {
                        break;
                    }
                    name = parent(name).unwrap();
                }
            }
        }
        let sets_at = |name: &[u8]| {
            let mut sets: Vec<(u16, u16)> = Vec::new();
            for (_, records) in zones {
                for r in records.iter().filter(|r| &r.owner[..] == name) {
                    match sets.iter_mut().find(|(t, _)| *t == r.rtype()) {
                        Some((_, n)) => *n += 1,
                        None => sets.push((r.rtype(), 1)),
                    }
                }
            }
            sets
        };
        if let Some(&zi) = names.get(qname) {
            return Some((sets_at(qname), zones[zi].0.len(), true));
        }
        let mut up = parent(qname);
        while let Some(p) = up {
            if let Some(&zi) = names.get(p) {
                let wildcard = [WILDCARD_LABEL, p].concat();
                return Some(match names.get(&wildcard) {
                    Some(&wz) => (sets_at(&wildcard), zones[wz].0.len(), true),
                    None => (Vec::new(), zones[zi].0.len(), false),
                });
            }
            up = parent(p);
        }
        None
    }

    #[test]
    fn lookups_match_a_model_of_the_records() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let labels = ["a", "b", "c", "*"];
        let random_name = |rng: &mut rand::rngs::StdRng, apex: &str| {
            let depth = rng.random_range(0..4);
            let mut name = String::new();
            for _ in 0..depth {
                name.push_str(labels[rng.random_range(0..labels.len())]);
                name.push('.');
            }
            name + apex
        };
        for round in 0..50 {
            // As zone::build makes them: never nested, and every apex holds records (SOA, NS).
            let apexes = ["backhaul.", "c.example.", "d.example."];
            let mut zones = Vec::new();
            for apex in apexes.iter().take(1 + round % 3) {
                let mut records = vec![a(apex, [10, 0, 0, 53])];
                for _ in 0..rng.random_range(1..30) {
                    let owner = wire(&random_name(&mut rng, apex));
                    let ip: IpAddr = if rng.random_bool(0.7) {
                        std::net::Ipv4Addr::from(rng.random::<u32>() % 4).into()
                    } else {
                        std::net::Ipv6Addr::from(rng.random::<u128>() % 3).into()
                    };
                    records.push(Address { owner, ip });
                }
                records.sort();
                records.dedup();
                zones.push((wire(apex), records));
            }
            let compiled = ZoneIndex::compile(&Zones {
                zones: zones
                    .iter()
                    .enumerate()
                    .map(|(i, (_, records))| zone(apexes[i], records.clone()))
                    .collect(),
                ..Zones::default()
            });
            for _ in 0..200 {
                let apex = apexes[rng.random_range(0..apexes.len())];
                let q = wire(&random_name(&mut rng, apex));
                let got: Seen = match compiled.lookup(&q) {
                    Lookup::Found(node, meta) => Some((
                        node.rrsets().map(|s| (s.rtype, s.count)).collect(),
                        meta.apex_len(),
                        true,
                    )),
                    Lookup::NxDomain(meta) => Some((Vec::new(), meta.apex_len(), false)),
                    Lookup::NotOurs => None,
                    Lookup::Referral(..) | Lookup::Redirect(..) => {
                        panic!("the model has no delegations or DNAMEs")
                    }
                };
                assert_eq!(
                    got,
                    expected(&zones, &q),
                    "round {round}, {}",
                    wire_to_text(&q)
                );
            }
            // A transfer sees every name of each zone exactly once.
            for (zi, (apex, _)) in zones.iter().enumerate() {
                let mut prefixes: Vec<&[u8]> =
                    compiled.names_in(zi as u32).map(|n| n.prefix).collect();
                let total = prefixes.len();
                prefixes.sort();
                prefixes.dedup();
                assert_eq!(
                    prefixes.len(),
                    total,
                    "round {round}, zone {}",
                    wire_to_text(apex)
                );
            }
        }
    }
}
