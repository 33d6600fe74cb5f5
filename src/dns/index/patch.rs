//! An index with a few names of one zone changed (RFC 2136 updates), without compiling the
//! view again: a copy of the index in which each changed name gets a new node at the end of
//! the arena (the old one superseded), a name that is gone is superseded with nothing in its
//! place (its table slot stays as a tombstone, so probes for other names pass it), and the
//! zone's apex, SOA and serial move. The next full build compacts it all again.

use super::encode::{encode_rrsets, SetStore};
use super::{parent, Probe, ZoneIndex, SUPERSEDED, WILDCARD_CHILD, WILDCARD_LABEL};
use crate::dname::{is_at_or_below, name_wire};
use crate::zone::{RecordList, ZoneContent};

impl ZoneIndex {
    /// This index with `zone` (its records as they are now: SOA first, then sorted) taken at
    /// its apex and at `owners` (lowercase wire names in it: the names an update changed);
    /// `None` when the index has no zone of that apex (then compile instead).
    pub fn patched(&self, zone: &ZoneContent, owners: &[Vec<u8>]) -> Option<ZoneIndex> {
        let apex = name_wire(&zone.apex);
        let z = self.zones.iter().position(|m| *m.apex == *apex)? as u32;
        let mut index = ZoneIndex {
            arena: self.arena.clone(),
            table: self.table.clone(),
            zones: self.zones.clone(),
            hasher: self.hasher.clone(),
            live: self.live.clone(),
            scopes: self.scopes.clone(),
            subnets: self.subnets.clone(),
        };
        let meta = &mut index.zones[z as usize];
        meta.serial = zone.serial;
        meta.journal = zone.journal.clone();
        meta.expired = zone.expired;
        let mut names: Vec<&[u8]> = vec![&apex];
        names.extend(owners.iter().map(Vec::as_slice).filter(|o| **o != *apex));
        let (mut list, mut negative_soa) = (Vec::new(), Vec::new());
        let mut store = SetStore::default();
        for name in names {
            let held = records_at(&zone.records, name);
            if held.is_empty() {
                index.remove(name, z, &zone.records);
                continue;
            }
            let mut soa = Vec::new();
            encode_rrsets(&held, 0..held.len(), &mut list, &mut soa);
            if !soa.is_empty() {
                negative_soa = soa;
            }
            index.replace(name, z, &list, &mut store);
        }
        if !negative_soa.is_empty() {
            index.zones[z as usize].negative_soa = negative_soa.into_boxed_slice();
        }
        Some(index)
    }

    /// `name` with the RRset list `list` from now on, in place of what it had (if anything);
    /// a new name gets its missing ancestors as empty non-terminals.
    fn replace(&mut self, name: &[u8], zone: u32, list: &[u8], store: &mut SetStore) {
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, name);
        let (arena, zones) = (&self.arena, &self.zones);
        let probe = (self.table).probe(hash, |at| super::is_named(arena, zones, at, name));
        let (slot, flags) = match probe {
            Probe::Found { slot, offset } => (slot, self.supersede(offset)),
            Probe::Vacant { slot } => (slot, 0),
        };
        let scopes = self.scopes.clone();
        let at = self.append(name, zone, flags & !SUPERSEDED, &scopes);
        self.set_list(at, list, store);
        self.table.fill(slot, hash, at);
        let apex_len = self.zones[zone as usize].apex.len();
        if let Some(p) = parent(name).filter(|p| p.len() > apex_len) {
            let hash = std::hash::BuildHasher::hash_one(&self.hasher, p);
            self.add_ancestors(p, hash, zone, &scopes);
        }
        if let Some(p) = wildcard_parent(name) {
            self.set_flag(p, WILDCARD_CHILD, true);
        }
    }

    /// `name` has no records any more: an empty non-terminal if names below it remain in
    /// `records`, else gone, and with it the empty non-terminals above it that only it held.
    fn remove(&mut self, name: &[u8], zone: u32, records: &RecordList) {
        let apex_len = self.zones[zone as usize].apex.len();
        let below = |n: &[u8]| {
            records
                .iter()
                .any(|r| r.owner.len() > n.len() && is_at_or_below(r.owner, n))
        };
        if below(name) {
            let mut store = SetStore::default();
            self.replace(name, zone, &[0, 0], &mut store);
            return;
        }
        if let Some(at) = self.find(name) {
            self.supersede(at);
        }
        if let Some(p) = wildcard_parent(name) {
            self.set_flag(p, WILDCARD_CHILD, false);
        }
        let mut up = parent(name).filter(|p| p.len() > apex_len);
        while let Some(p) = up {
            let Some(at) = self.find(p) else { break };
            let node = super::Node::read(&self.arena, at as usize);
            if node.nsets > 0 || below(p) {
                break;
            }
            self.supersede(at);
            up = parent(p).filter(|p| p.len() > apex_len);
        }
    }

    /// Flags the node at `at` superseded (its slot, if it keeps one, no longer matches any
    /// name); returns its flags as they were.
    fn supersede(&mut self, at: u32) -> u8 {
        let key_end = at as usize + 1 + usize::from(self.arena[at as usize]);
        let flags = self.arena[key_end + 4];
        self.arena[key_end + 4] |= SUPERSEDED;
        flags
    }

    fn set_flag(&mut self, name: &[u8], flag: u8, on: bool) {
        if let Some(at) = self.find(name) {
            let key_end = at as usize + 1 + usize::from(self.arena[at as usize]);
            match on {
                true => self.arena[key_end + 4] |= flag,
                false => self.arena[key_end + 4] &= !flag,
            }
        }
    }
}

/// The records of `records` (SOA first, then sorted by owner) at `owner`, in a list of their
/// own in the same order.
fn records_at(records: &RecordList, owner: &[u8]) -> RecordList {
    let mut out = RecordList::default();
    if records.is_empty() {
        return out;
    }
    if records.get(0).owner == owner {
        out.push(records.get(0));
    }
    let (mut lo, mut hi) = (1, records.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if records.get(mid).owner < owner {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for i in lo..records.len() {
        let r = records.get(i);
        if r.owner != owner {
            break;
        }
        out.push(r);
    }
    out
}

/// The parent of a wildcard name (`*.k8s.backhaul.` -> `k8s.backhaul.`).
fn wildcard_parent(name: &[u8]) -> Option<&[u8]> {
    name.strip_prefix(WILDCARD_LABEL).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::index::Lookup;
    use crate::zone::Zones;
    use hickory_proto::rr::rdata::{A, SOA, TXT};
    use hickory_proto::rr::{Name, RData, Record};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// The zone `x.` holding `owners` (an A each, TXT for names starting with `_`) at serial
    /// `serial`, as a build would give it: SOA first, the rest sorted.
    fn zone(serial: u32, owners: &[&str]) -> ZoneContent {
        let mut list = RecordList::default();
        for o in owners {
            let data = match o.starts_with('_') {
                true => RData::TXT(TXT::new(vec![o.to_string()])),
                false => RData::A(A::new(10, 0, 0, o.len() as u8)),
            };
            list.push_record(&Record::from_rdata(name(o), 60, data));
        }
        let mut records = list.sorted();
        let soa = SOA::new(name("ns.x."), name("h.x."), serial, 60, 10, 600, 5);
        records.set_first(&Record::from_rdata(name("x."), 60, RData::SOA(soa)));
        ZoneContent::followed(name("x."), serial, records, false)
    }

    fn compiled(z: &ZoneContent) -> ZoneIndex {
        ZoneIndex::compile(&Zones {
            zones: vec![z.clone()],
            ..Zones::default()
        })
    }

    /// What a lookup finds, in words, with the RRsets' bytes.
    fn seen(index: &ZoneIndex, n: &str) -> String {
        let wire = name_wire(&name(n));
        match index.lookup(&wire) {
            Lookup::Found(node, meta) => {
                let sets: Vec<String> = node
                    .rrsets()
                    .map(|s| format!("{}:{:?}", s.rtype, s.wire))
                    .collect();
                format!(
                    "found {} {} serial {} {:?}",
                    node.prefix.len(),
                    sets.join(","),
                    meta.serial,
                    meta.negative_soa
                )
            }
            Lookup::NxDomain(meta) => format!("nx serial {} {:?}", meta.serial, meta.negative_soa),
            Lookup::NotOurs => "not ours".into(),
            _ => "other".into(),
        }
    }

    const ASKED: [&str; 14] = [
        "x.",
        "a.x.",
        "b.x.",
        "_t.a.x.",
        "c.b.x.",
        "n.m.new.x.",
        "m.new.x.",
        "new.x.",
        "q.w.x.",
        "w.x.",
        "*.w.x.",
        "gone.x.",
        "deep.gone.x.",
        "y.",
    ];

    /// Patching the names that changed answers exactly as compiling the new zone does.
    #[test]
    fn a_patched_index_answers_as_a_compiled_one() {
        let steps: [&[&str]; 5] = [
            &["a.x.", "b.x.", "c.b.x.", "deep.gone.x."],
            // A name below a member, a new name with new empty non-terminals, a wildcard.
            &[
                "a.x.",
                "b.x.",
                "c.b.x.",
                "deep.gone.x.",
                "_t.a.x.",
                "n.m.new.x.",
                "*.w.x.",
            ],
            // A name with a name below it removed (it stays, empty); the deep name removed
            // (its empty parents go with it); the wildcard removed.
            &["a.x.", "c.b.x.", "_t.a.x.", "n.m.new.x."],
            &["a.x.", "c.b.x.", "_t.a.x."],
            &["a.x."],
        ];
        let mut index = compiled(&zone(1, steps[0]));
        for (i, pair) in steps.windows(2).enumerate() {
            let (before, after) = (pair[0], pair[1]);
            let serial = i as u32 + 2;
            let new = zone(serial, after);
            let mut owners: Vec<Vec<u8>> = (before.iter().chain(after))
                .filter(|o| before.contains(o) != after.contains(o))
                .map(|o| name_wire(&name(o)))
                .collect();
            owners.sort();
            index = index.patched(&new, &owners).unwrap();
            let fresh = compiled(&new);
            for n in ASKED {
                assert_eq!(seen(&index, n), seen(&fresh, n), "step {i}: {n}");
            }
            // A walk (what AXFR reads) sees each name once, as compiled.
            let mut walked: Vec<Vec<u8>> =
                index.walk().map(|(_, node)| index.name_of(&node)).collect();
            let mut expected: Vec<Vec<u8>> =
                fresh.walk().map(|(_, node)| fresh.name_of(&node)).collect();
            walked.sort();
            expected.sort();
            assert_eq!(walked, expected, "step {i}");
        }
    }
}
