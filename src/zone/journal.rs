//! The IXFR journal of a zone (RFC 1995): the differences between its recent versions, each
//! worked out when a build moves the serial, by one pass over the old and new records (both
//! sorted the same way), never by a second build. Bounded in changes and bytes; answering an
//! IXFR condenses the changes since the secondary's serial into one (RFC 1995 4).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use super::list::{RecordList, ZoneRecord};

/// One version step: the records deleted and added, each list led by its SOA (the old one,
/// the new one), as an IXFR carries them.
#[derive(Debug, Clone)]
pub struct Change {
    pub from: u32,
    pub to: u32,
    /// The SOA at `from`, then every record that version had and the next has not.
    pub deleted: RecordList,
    /// The SOA at `to`, then every record the next version has and the old had not.
    pub added: RecordList,
}

impl Change {
    /// Bytes of owners and RDATA: what the journal's size bound counts.
    pub fn bytes(&self) -> usize {
        let size = |l: &RecordList| -> usize {
            l.iter().map(|r| r.owner.len() + r.rdata.len() + 10).sum()
        };
        size(&self.deleted) + size(&self.added)
    }
}

/// The differences of one zone from older serials up to its current one.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    changes: VecDeque<Arc<Change>>,
    bytes: usize,
}

/// How much a journal keeps (`[transfer] journal_changes`, `journal_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub changes: usize,
    pub bytes: usize,
}

/// The records between a secondary's serial and ours, condensed: what an IXFR answers.
pub struct Condensed<'a> {
    /// The SOA at the secondary's serial.
    pub old_soa: ZoneRecord<'a>,
    pub deleted: Vec<ZoneRecord<'a>>,
    pub added: Vec<ZoneRecord<'a>>,
}

impl Journal {
    /// The changes held, oldest first.
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().map(Arc::as_ref)
    }

    /// The serial the last change leads to.
    pub fn last_serial(&self) -> Option<u32> {
        self.changes.back().map(|c| c.to)
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Bytes held (see [`Change::bytes`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds the newest change (it must start where the last one ended, or the journal starts
    /// over with it), then drops the oldest past the limits. A change larger than the size
    /// bound leaves the journal empty: secondaries behind it get the whole zone.
    pub fn push(&mut self, change: Change, limits: Limits) {
        if self.last_serial().is_some_and(|s| s != change.from) {
            self.clear();
        }
        self.bytes += change.bytes();
        self.changes.push_back(Arc::new(change));
        while !self.changes.is_empty()
            && (self.changes.len() > limits.changes || self.bytes > limits.bytes)
        {
            self.drop_oldest();
        }
    }

    /// Keeps the changes within `limits` (after a reload lowered them).
    pub fn trim(&mut self, limits: Limits) {
        while self.changes.len() > limits.changes || self.bytes > limits.bytes {
            self.drop_oldest();
        }
    }

    fn drop_oldest(&mut self) {
        if let Some(c) = self.changes.pop_front() {
            self.bytes -= c.bytes();
        }
    }

    pub fn clear(&mut self) {
        self.changes.clear();
        self.bytes = 0;
    }

    /// Whether the changes, walked back from `current` (the zone's records at the journal's
    /// last serial), hold together: every record a change added is there after it, every
    /// record it deleted is not. A journal read back from disk must pass before it is served:
    /// one edited there (its checksum recomputed) could otherwise make IXFR hand out records
    /// the zone does not have.
    pub fn leads_to(&self, current: &RecordList) -> bool {
        let soa = u16::from(hickory_proto::rr::RecordType::SOA);
        let mut state: HashSet<ZoneRecord<'_>> =
            current.iter().filter(|r| r.rtype != soa).collect();
        for c in self.changes.iter().rev() {
            for r in c.added.iter().skip(1) {
                if !state.remove(&r) {
                    return false;
                }
            }
            for r in c.deleted.iter().skip(1) {
                if r.rtype == soa || !state.insert(r) {
                    return false;
                }
            }
        }
        true
    }

    /// The changes since `serial`, condensed into one (RFC 1995 4: a record added then
    /// deleted is neither; deleted then added back is neither). `None` when the journal
    /// does not reach back to `serial`: the secondary gets the whole zone.
    pub fn since(&self, serial: u32) -> Option<Condensed<'_>> {
        let start = self.changes.iter().position(|c| c.from == serial)?;
        // Net effect: a record is deleted if it was there at `serial` and is not now, added
        // if it was not and is now. Within one change a record is never both.
        let mut deleted: HashSet<ZoneRecord<'_>> = HashSet::new();
        let mut added: HashSet<ZoneRecord<'_>> = HashSet::new();
        for c in self.changes.range(start..) {
            for r in c.deleted.iter().skip(1) {
                if !added.remove(&r) {
                    deleted.insert(r);
                }
            }
            for r in c.added.iter().skip(1) {
                if !deleted.remove(&r) {
                    added.insert(r);
                }
            }
        }
        fn order<'a>(r: &ZoneRecord<'a>) -> (&'a [u8], u16, &'a [u8], u32) {
            (r.owner, r.rtype, r.rdata, r.ttl)
        }
        let mut deleted: Vec<_> = deleted.into_iter().collect();
        let mut added: Vec<_> = added.into_iter().collect();
        deleted.sort_unstable_by(|a, b| order(a).cmp(&order(b)));
        added.sort_unstable_by(|a, b| order(a).cmp(&order(b)));
        Some(Condensed {
            old_soa: self.changes[start].deleted.get(0),
            deleted,
            added,
        })
    }
}

/// The first bytes of a saved journal (and its version).
const MAGIC: &[u8] = b"backhaul-dns ixfr journal 1\n";

impl Journal {
    /// The journal in a file's form: the changes, then a SHA-256 of everything before it (a
    /// file damaged on disk is refused, not served).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAGIC.len() + self.bytes + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.changes.len() as u32).to_be_bytes());
        for c in &self.changes {
            out.extend_from_slice(&c.from.to_be_bytes());
            out.extend_from_slice(&c.to.to_be_bytes());
            c.deleted.write_to(&mut out);
            c.added.write_to(&mut out);
        }
        let sum = <sha2::Sha256 as sha2::Digest>::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// A journal read back from [`Journal::to_bytes`]; `None` if the bytes are not one whole
    /// (a damaged or foreign file).
    pub fn from_bytes(bytes: &[u8]) -> Option<Journal> {
        let body = bytes.get(..bytes.len().checked_sub(32)?)?;
        let sum = <sha2::Sha256 as sha2::Digest>::digest(body);
        if sum.as_slice() != &bytes[body.len()..] || !body.starts_with(MAGIC) {
            return None;
        }
        let mut at = MAGIC.len();
        let u32_at = |at: &mut usize| -> Option<u32> {
            let b = body.get(*at..*at + 4)?;
            *at += 4;
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let mut journal = Journal::default();
        for _ in 0..u32_at(&mut at)? {
            let (from, to) = (u32_at(&mut at)?, u32_at(&mut at)?);
            let deleted = RecordList::read_from(body, &mut at)?;
            let added = RecordList::read_from(body, &mut at)?;
            if deleted.is_empty() || added.is_empty() {
                return None; // every list starts with its SOA
            }
            let change = Change {
                from,
                to,
                deleted,
                added,
            };
            if journal.last_serial().is_some_and(|s| s != from) {
                return None;
            }
            journal.bytes += change.bytes();
            journal.changes.push_back(Arc::new(change));
        }
        (at == body.len()).then_some(journal)
    }
}

/// `old` (SOA first, then the records in [`RecordList::sorted_subset`] order) with `change`
/// applied, the inverse of [`diff`]: what a follower does with an IXFR. `None` when the
/// change does not fit `old` (another starting serial, or a record to delete that is not
/// there): the caller then transfers the whole zone rather than serve a guess.
pub fn patch(old: &RecordList, change: &Change) -> Option<RecordList> {
    let (from_soa, to_soa) = (change.deleted.get(0), change.added.get(0));
    if old.is_empty() || old.get(0).rdata != from_soa.rdata {
        return None;
    }
    let rest = |list: &RecordList| -> RecordList {
        let picked: Vec<u32> = (1..list.len() as u32).collect();
        list.sorted_subset(&picked)
    };
    let (deleted, added) = (rest(&change.deleted), rest(&change.added));
    fn key<'a>(r: &ZoneRecord<'a>) -> (&'a [u8], u16, &'a [u8]) {
        (r.owner, r.rtype, r.rdata)
    }
    let mut out = RecordList::default();
    out.reserve(old.len() + added.len(), 0);
    out.push(to_soa);
    let (mut i, mut d, mut a) = (1, 0, 0);
    loop {
        let o = (i < old.len()).then(|| old.get(i));
        let del = (d < deleted.len()).then(|| deleted.get(d));
        let add = (a < added.len()).then(|| added.get(a));
        if let Some(x) = del {
            match o.map(|o| key(&o).cmp(&key(&x))) {
                // A record to delete that `old` does not hold.
                None | Some(std::cmp::Ordering::Greater) => return None,
                Some(std::cmp::Ordering::Equal) => {
                    (i, d) = (i + 1, d + 1);
                    continue;
                }
                Some(std::cmp::Ordering::Less) => {}
            }
        }
        match (o, add) {
            (None, None) => break,
            (Some(o), Some(x)) if key(&o) < key(&x) => {
                out.push(o);
                i += 1;
            }
            // The same record added again: the added one (its TTL) stands.
            (Some(o), Some(x)) if key(&o) == key(&x) => {
                out.push(x);
                (i, a) = (i + 1, a + 1);
            }
            (_, Some(x)) => {
                out.push(x);
                a += 1;
            }
            (Some(o), None) => {
                out.push(o);
                i += 1;
            }
        }
    }
    Some(out)
}

/// The change from `old` to `new`, two versions of one zone (SOA first, then the records in
/// [`RecordList::sorted_subset`] order): one merge pass. A record whose TTL changed is
/// deleted and added. `None` if either list is out of order (a bug; the caller then starts
/// the journal over rather than serve a wrong difference).
pub fn diff(old: &RecordList, new: &RecordList, from: u32, to: u32) -> Option<Change> {
    if old.is_empty() || new.is_empty() {
        return None;
    }
    fn key<'a>(r: &ZoneRecord<'a>) -> (&'a [u8], u16, &'a [u8]) {
        (r.owner, r.rtype, r.rdata)
    }
    let mut deleted = RecordList::default();
    let mut added = RecordList::default();
    deleted.push(old.get(0));
    added.push(new.get(0));
    let (mut i, mut j) = (1, 1);
    let mut last_old: Option<ZoneRecord<'_>> = None;
    let mut last_new: Option<ZoneRecord<'_>> = None;
    let mut in_order = true;
    while i < old.len() || j < new.len() {
        let a = (i < old.len()).then(|| old.get(i));
        let b = (j < new.len()).then(|| new.get(j));
        let step = match (a, b) {
            (Some(a), Some(b)) => key(&a).cmp(&key(&b)),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        if step.is_le() {
            let a = a.expect("present when not greater");
            in_order &= last_old.is_none_or(|l| key(&l) < key(&a));
            last_old = Some(a);
            i += 1;
        }
        if step.is_ge() {
            let b = b.expect("present when not less");
            in_order &= last_new.is_none_or(|l| key(&l) < key(&b));
            last_new = Some(b);
            j += 1;
        }
        match (step, a, b) {
            (std::cmp::Ordering::Less, Some(a), _) => deleted.push(a),
            (std::cmp::Ordering::Greater, _, Some(b)) => added.push(b),
            (_, Some(a), Some(b)) if a.ttl != b.ttl => {
                deleted.push(a);
                added.push(b);
            }
            _ => {}
        }
    }
    in_order.then_some(Change {
        from,
        to,
        deleted,
        added,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(serial: u8, records: &[(&str, u8)]) -> RecordList {
        let mut list = RecordList::default();
        for (name, last) in records {
            let owner =
                crate::dname::name_wire(&hickory_proto::rr::Name::from_ascii(name).unwrap());
            list.push_with(|b| b.extend_from_slice(&owner), 1, 60, &[10, 0, 0, *last]);
        }
        let mut sorted = list.sorted();
        // A stand-in SOA first: only its place matters here.
        let soa = hickory_proto::rr::Record::from_rdata(
            hickory_proto::rr::Name::from_ascii("x.").unwrap(),
            60,
            hickory_proto::rr::RData::SOA(hickory_proto::rr::rdata::SOA::new(
                hickory_proto::rr::Name::from_ascii("ns.x.").unwrap(),
                hickory_proto::rr::Name::from_ascii("h.x.").unwrap(),
                u32::from(serial),
                1,
                1,
                1,
                1,
            )),
        );
        sorted.set_first(&soa);
        sorted
    }

    fn names(rs: &[ZoneRecord<'_>]) -> Vec<String> {
        rs.iter()
            .map(|r| format!("{}={}", crate::dname::wire_to_text(r.owner), r.rdata[3]))
            .collect()
    }

    const LIMITS: Limits = Limits {
        changes: 10,
        bytes: 1 << 20,
    };

    #[test]
    fn one_pass_diff_and_condensed_chains() {
        let v1 = zone(1, &[("a.x.", 1), ("b.x.", 2), ("c.x.", 3)]);
        let v2 = zone(2, &[("a.x.", 1), ("b.x.", 9), ("d.x.", 4)]);
        let v3 = zone(3, &[("a.x.", 1), ("b.x.", 2), ("d.x.", 4), ("e.x.", 5)]);
        let c12 = diff(&v1, &v2, 1, 2).unwrap();
        let del: Vec<_> = c12.deleted.iter().skip(1).collect();
        let add: Vec<_> = c12.added.iter().skip(1).collect();
        assert_eq!(names(&del), ["b.x.=2", "c.x.=3"]);
        assert_eq!(names(&add), ["b.x.=9", "d.x.=4"]);
        let mut j = Journal::default();
        j.push(c12, LIMITS);
        j.push(diff(&v2, &v3, 2, 3).unwrap(), LIMITS);
        // From 1: b went to 9 and back (neither), c deleted, d and e added.
        let from1 = j.since(1).unwrap();
        assert_eq!(names(&from1.deleted), ["c.x.=3"]);
        assert_eq!(names(&from1.added), ["d.x.=4", "e.x.=5"]);
        let from2 = j.since(2).unwrap();
        assert_eq!(names(&from2.deleted), ["b.x.=9"]);
        assert_eq!(names(&from2.added), ["b.x.=2", "e.x.=5"]);
        assert!(j.since(0).is_none(), "older than the journal: AXFR");
    }

    #[test]
    fn a_patch_undoes_a_diff_and_refuses_what_does_not_fit() {
        let v1 = zone(1, &[("a.x.", 1), ("b.x.", 2), ("c.x.", 3)]);
        let v2 = zone(2, &[("a.x.", 1), ("b.x.", 9), ("d.x.", 4), ("e.x.", 5)]);
        let v3 = zone(3, &[("b.x.", 9)]);
        let all = |l: &RecordList| {
            l.iter()
                .map(|r| (r.owner.to_vec(), r.rtype, r.rdata.to_vec()))
                .collect::<Vec<_>>()
        };
        for ((from, f), (to, t)) in [
            ((&v1, 1), (&v2, 2)),
            ((&v2, 2), (&v3, 3)),
            ((&v3, 3), (&v1, 1)),
            ((&v1, 1), (&v1, 1)),
        ] {
            let change = diff(from, to, f, t).unwrap();
            assert_eq!(all(&patch(from, &change).unwrap()), all(to));
        }
        // Applied to the wrong version: the SOA differs, or a record to delete is missing.
        let change = diff(&v1, &v2, 1, 2).unwrap();
        assert!(patch(&v2, &change).is_none());
        let mut other = zone(1, &[("a.x.", 1), ("c.x.", 3)]);
        assert!(patch(&other, &change).is_none());
        other = zone(1, &[("a.x.", 1), ("b.x.", 2), ("c.x.", 3), ("z.x.", 7)]);
        let patched = patch(&other, &change).unwrap();
        assert_eq!(
            names(&patched.iter().skip(1).collect::<Vec<_>>()),
            ["a.x.=1", "b.x.=9", "d.x.=4", "e.x.=5", "z.x.=7"]
        );
    }

    #[test]
    fn a_journal_must_lead_to_the_zone_it_is_served_with() {
        let v1 = zone(1, &[("a.x.", 1), ("b.x.", 2)]);
        let v2 = zone(2, &[("a.x.", 1), ("b.x.", 3)]);
        let v3 = zone(3, &[("a.x.", 4), ("b.x.", 3)]);
        let mut j = Journal::default();
        j.push(diff(&v1, &v2, 1, 2).unwrap(), LIMITS);
        j.push(diff(&v2, &v3, 2, 3).unwrap(), LIMITS);
        assert!(j.leads_to(&v3));
        // The same serial, other records (the zone changed while the journal was edited, or
        // the journal says a.x. is 6.6.6.6): refused.
        let other = zone(3, &[("a.x.", 6), ("b.x.", 3)]);
        assert!(!j.leads_to(&other));
        // A journal edited on disk (a.x. ends at 6.6.6.6), saved with a fresh checksum: it
        // reads back, and is refused against the zone as served.
        let mut edited = Journal::default();
        edited.push(diff(&v1, &v2, 1, 2).unwrap(), LIMITS);
        edited.push(diff(&v2, &other, 2, 3).unwrap(), LIMITS);
        let back = Journal::from_bytes(&edited.to_bytes()).expect("a well-formed file");
        assert!(!back.leads_to(&v3));
    }

    #[test]
    fn limits_and_broken_chains() {
        let v: Vec<RecordList> = (0..6u8).map(|s| zone(s, &[("a.x.", s)])).collect();
        let mut j = Journal::default();
        for s in 0..5 {
            let limits = Limits {
                changes: 3,
                bytes: 1 << 20,
            };
            j.push(
                diff(&v[s], &v[s + 1], s as u32, s as u32 + 1).unwrap(),
                limits,
            );
        }
        assert_eq!(j.len(), 3);
        assert!(j.since(1).is_none() && j.since(2).is_some());
        // A change that does not start at the last serial starts the journal over.
        j.push(diff(&v[0], &v[1], 0, 1).unwrap(), LIMITS);
        assert_eq!(j.len(), 1);
        // A change over the size bound empties it.
        let tight = Limits {
            changes: 10,
            bytes: 10,
        };
        j.push(diff(&v[1], &v[2], 1, 2).unwrap(), tight);
        assert!(j.is_empty() && j.bytes() == 0);
    }

    #[test]
    fn saved_journals_read_back_and_damage_is_refused() {
        let v: Vec<RecordList> = (0..4u8)
            .map(|s| zone(s, &[("a.x.", s), ("b.x.", 1)]))
            .collect();
        let mut j = Journal::default();
        for s in 0..3 {
            j.push(
                diff(&v[s], &v[s + 1], s as u32, s as u32 + 1).unwrap(),
                LIMITS,
            );
        }
        let bytes = j.to_bytes();
        let back = Journal::from_bytes(&bytes).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back.bytes(), j.bytes());
        assert_eq!(
            names(&back.since(0).unwrap().added),
            names(&j.since(0).unwrap().added)
        );
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(Journal::from_bytes(&bytes[..cut]).is_none());
        }
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert!(Journal::from_bytes(&flipped).is_none());
    }
}
