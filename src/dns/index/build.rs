//! Compiling zones into the index: every owner and its ancestors as nodes in the arena, each
//! distinct RRset list stored once, and the hash table of their offsets. Done once per build
//! (and, for the few names an update changes, by [`super::patch`]).

use std::hash::BuildHasher;

use super::encode::{arena_guess, encode_rrsets, SetStore};
use super::{
    is_named, parent, rtype, Masks, Node, ScopeMap, Table, ZoneIndex, ZoneMeta, Zones, LIVE,
    MASKED, NO_SETS, SUPERSEDED, WILDCARD_CHILD, WILDCARD_LABEL,
};
use crate::dname::name_wire;
use crate::dns::table::Probe;
use hickory_proto::rr::RecordType;
use std::ops::Range;

/// Owners hashed ahead of being added (see [`ZoneIndex::compile`]): enough to cover a
/// memory access's latency with the work on the owners in between.
const LOOKAHEAD: usize = 8;

/// An owner's hash, and its parent's if that is below the apex (to be added too).
struct Hashes {
    owner: u64,
    parent: Option<u64>,
}

impl ZoneIndex {
    pub fn compile(zones: &Zones) -> ZoneIndex {
        let mut index = ZoneIndex::default();
        // Records arrive sorted: an owner's records are contiguous, and so are its RRsets.
        let owners: Vec<Vec<Range<usize>>> = (zones.zones.iter())
            .map(|z| {
                z.records
                    .runs(0..z.records.len(), |a, b| a.owner == b.owner)
            })
            .map(Iterator::collect)
            .collect();
        // Every owner is a name; empty non-terminals come on top, few but for reverse zones
        // with few members (the table grows if they are more).
        let names: usize = owners.iter().map(Vec::len).sum();
        index.table = Table::with_capacity(names + names / 16);
        let apexes: Vec<Vec<u8>> = (zones.zones.iter()).map(|z| name_wire(&z.apex)).collect();
        index.arena.reserve(arena_guess(zones, &apexes, &owners));
        let mut store = SetStore::default();
        let mut list = Vec::new();
        for ((z, owners), apex) in zones.zones.iter().zip(&owners).zip(apexes) {
            let zone = index.zones.len() as u32;
            let apex_len = apex.len();
            let apex = apex.into_boxed_slice();
            let ns = u16::from(RecordType::NS);
            let cuts = (z.records.iter()).any(|r| r.rtype == ns && r.owner != &apex[..]);
            let dnames = (z.records.iter()).any(|r| r.rtype == rtype::DNAME);
            index.zones.push(ZoneMeta {
                apex,
                negative_soa: Box::new([]),
                complete: z.complete,
                serial: z.serial,
                cuts,
                dnames,
                journal: z.journal.clone(),
                expired: z.expired,
            });
            let mut negative_soa = Vec::new();
            let records = &z.records;
            // The names a few owners ahead are hashed now and their slots start loading, so
            // that adding them does not wait on memory (a 100,000-member table is 5 MB).
            let ahead = |index: &ZoneIndex, i: usize| {
                let owner = records.get(owners.get(i)?.start).owner;
                let parent = parent(owner).filter(|p| p.len() > apex_len);
                let hashes = Hashes {
                    owner: index.hasher.hash_one(owner),
                    parent: parent.map(|p| index.hasher.hash_one(p)),
                };
                index.table.prefetch(hashes.owner);
                if let Some(h) = hashes.parent {
                    index.table.prefetch(h);
                }
                Some(hashes)
            };
            let mut coming: std::collections::VecDeque<Hashes> =
                (0..LOOKAHEAD).map_while(|i| ahead(&index, i)).collect();
            for (i, owned) in owners.iter().enumerate() {
                let hashes = coming.pop_front().expect("hashed ahead");
                if let Some(h) = ahead(&index, i + LOOKAHEAD) {
                    coming.push_back(h);
                }
                encode_rrsets(records, owned.clone(), &mut list, &mut negative_soa);
                let owner = records.get(owned.start).owner;
                if let Some(hash) = hashes.parent {
                    let p = parent(owner).expect("hashed above");
                    index.add_ancestors(p, hash, zone, &zones.scopes);
                }
                index.add(owner, hashes.owner, zone, &list, &mut store, &zones.scopes);
            }
            index.zones[zone as usize].negative_soa = negative_soa.into_boxed_slice();
        }
        index.mark_wildcard_parents();
        for plan in &zones.services {
            for owner in plan.owners() {
                if let Some(at) = index.find(owner) {
                    let key_end = at as usize + 1 + usize::from(index.arena[at as usize]);
                    index.arena[key_end + 4] |= LIVE;
                }
            }
        }
        index.scopes = zones.scopes.clone();
        index.subnets = crate::dns::access::Nets::new(zones.subnets.iter().copied());
        // A copy, not shrink_to_fit: mimalloc shrinks a block by less than half in place,
        // keeping the whole capacity resident.
        if index.arena.capacity() > index.arena.len() + index.arena.len() / 16 {
            index.arena = index.arena.as_slice().to_vec();
        }
        index.table.shrink_to_fit();
        index
    }

    /// `name` (hashed to `hash`, below its apex) and its ancestors down to the apex, as empty
    /// non-terminals where they are missing. Every name already in the index has its
    /// ancestors there too, so the walk stops at the first one found: a 34-label ip6.arpa
    /// owner costs a probe or two, not 34.
    pub(super) fn add_ancestors(&mut self, name: &[u8], hash: u64, zone: u32, scopes: &ScopeMap) {
        let apex_len = self.zones[zone as usize].apex.len();
        let (mut name, mut hash) = (name, hash);
        loop {
            let (arena, zones) = (&self.arena, &self.zones);
            let Probe::Vacant { slot } =
                (self.table).probe(hash, |at| is_named(arena, zones, at, name))
            else {
                return;
            };
            let at = self.append(name, zone, 0, scopes);
            self.table.fill(slot, hash, at);
            match parent(name).filter(|p| p.len() > apex_len) {
                Some(p) => (name, hash) = (p, self.hasher.hash_one(p)),
                None => return,
            }
        }
    }

    /// Adds `owner` (hashed to `hash`) with its RRset list (`NSETS | RRSET...`). A name
    /// already present (as an empty non-terminal, or from another zone's records) is copied
    /// to the end with the new RRsets after its own; the old copy is flagged and skipped.
    fn add(
        &mut self,
        owner: &[u8],
        hash: u64,
        zone: u32,
        list: &[u8],
        store: &mut SetStore,
        scopes: &ScopeMap,
    ) {
        let (arena, zones) = (&self.arena, &self.zones);
        let (slot, old_at) = match (self.table).probe(hash, |at| is_named(arena, zones, at, owner))
        {
            Probe::Vacant { slot } => {
                let at = self.append(owner, zone, 0, scopes);
                self.set_list(at, list, store);
                self.table.fill(slot, hash, at);
                return;
            }
            Probe::Found { slot, offset } => (slot, offset),
        };
        let old = Node::read(&self.arena, old_at as usize);
        let nsets = u16::from_le_bytes([list[0], list[1]]) + old.nsets;
        let mut merged = nsets.to_le_bytes().to_vec();
        merged.extend_from_slice(&old.sets[..old.sets_len()]);
        merged.extend_from_slice(&list[2..]);
        let (flags, zone) = (old.flags, old.zone);
        let key_end = old_at as usize + 1 + old.prefix.len();
        self.arena[key_end + 4] |= SUPERSEDED;
        let at = self.append(owner, zone, flags, scopes);
        self.set_list(at, &merged, store);
        self.table.fill(slot, hash, at);
    }

    /// Writes a node without RRsets at the end of the arena, with the masks `scopes` has for
    /// its name; returns its offset.
    pub(super) fn append(&mut self, name: &[u8], zone: u32, flags: u8, scopes: &ScopeMap) -> u32 {
        let at = u32::try_from(self.arena.len()).expect("a zone index under 4 GiB");
        let prefix = &name[..name.len() - self.zones[zone as usize].apex.len()];
        let masks = if scopes.names_hidden.is_empty() {
            Masks::default()
        } else {
            scopes.masks(name)
        };
        let masked = masks != Masks::default();
        self.arena.push(prefix.len() as u8);
        self.arena.extend_from_slice(prefix);
        self.arena.extend_from_slice(&zone.to_le_bytes());
        self.arena.push(if masked {
            flags | MASKED
        } else {
            flags & !MASKED
        });
        self.arena.extend_from_slice(&NO_SETS.to_le_bytes());
        if masked {
            self.arena.extend_from_slice(&masks.hidden.to_le_bytes());
            self.arena.extend_from_slice(&masks.gone.to_le_bytes());
        }
        at
    }

    /// Gives the node just appended at `at` its RRset list: stored right behind it if no
    /// node had it yet.
    pub(super) fn set_list(&mut self, at: u32, list: &[u8], store: &mut SetStore) {
        let sets = store.intern(&mut self.arena, &self.hasher, list);
        let key_end = at as usize + 1 + usize::from(self.arena[at as usize]);
        self.arena[key_end + 5..key_end + 9].copy_from_slice(&sets.to_le_bytes());
    }

    fn mark_wildcard_parents(&mut self) {
        // Only wildcard names are put together (a 100,000-member index has over a million
        // nodes, nearly none of them wildcards).
        let parents: Vec<Vec<u8>> = (self.nodes())
            .filter(|node| {
                let apex = &self.zones[node.zone as usize].apex;
                let first = if node.prefix.is_empty() {
                    apex
                } else {
                    node.prefix
                };
                first.starts_with(WILDCARD_LABEL)
            })
            .map(|node| self.name_of(&node)[WILDCARD_LABEL.len()..].to_vec())
            .filter(|p| !p.is_empty())
            .collect();
        for p in parents {
            if let Some(at) = self.find(&p) {
                let key_end = at as usize + 1 + usize::from(self.arena[at as usize]);
                self.arena[key_end + 4] |= WILDCARD_CHILD;
            }
        }
    }
}
