//! Records in wire form, back to back in one buffer: what a build produces per zone, and
//! what the index compiles and the content hash covers.
//!
//! One buffer per list, not one allocation per owner and RDATA: a 100,000-member build makes
//! 600,000 records, and boxing each one's bytes made the build spend its time in the
//! allocator and in page faults (10,000 members: 13 MB of short-lived heap in 120,000 blocks).

use std::net::IpAddr;

use hickory_proto::rr::{Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::dname::name_wire;
use crate::records;

/// One record, borrowed from a [`RecordList`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ZoneRecord<'a> {
    /// Lowercase, uncompressed wire form of the owner name.
    pub owner: &'a [u8],
    pub rtype: u16,
    pub ttl: u32,
    /// Uncompressed (names inside keep their case).
    pub rdata: &'a [u8],
}

impl ZoneRecord<'_> {
    pub fn record_type(&self) -> RecordType {
        RecordType::from(self.rtype)
    }

    /// The full record, decoded from the wire form (for master-file text); `None` for RDATA
    /// hickory encodes but cannot read back (then the RFC 3597 form is what can be printed).
    pub fn to_record(&self) -> Option<Record> {
        let mut wire = self.owner.to_vec();
        wire.extend_from_slice(&self.rtype.to_be_bytes());
        wire.extend_from_slice(&1u16.to_be_bytes());
        wire.extend_from_slice(&self.ttl.to_be_bytes());
        wire.extend_from_slice(&(self.rdata.len() as u16).to_be_bytes());
        wire.extend_from_slice(self.rdata);
        let mut decoder = BinDecoder::new(&wire);
        Record::read(&mut decoder).ok()
    }

    /// Same owner, type and RDATA (the TTL does not make a record different, RFC 2181 5.2).
    fn same(&self, other: &ZoneRecord<'_>) -> bool {
        self.owner == other.owner && self.rtype == other.rtype && self.rdata == other.rdata
    }
}

/// Where a record sits in the buffer: its owner, then its RDATA right after. 16 bytes.
#[derive(Debug, Clone, Copy)]
struct Slot {
    at: u32,
    ttl: u32,
    rdata_len: u16,
    rtype: u16,
    owner_len: u8,
}

/// What [`RecordList::sorted_subset`] sorts: the owner's first 24 bytes, zero-padded, hold
/// most owners whole (`zt-0123456789.backhaul.`, and a member's own name), so most
/// comparisons need not read the records, which sit at random places in tens of megabytes
/// at 100,000 members (comparing records in full, memcmp was a third of the sort, most of it
/// telling a name's A from its AAAA).
struct Key {
    head: [u64; 3],
    /// The owner's length, and its type: they order records only when `head` holds the owner
    /// whole.
    len: u8,
    rtype: u16,
    at: u32,
}

/// Bytes of the owner a [`Key`] holds.
const KEY_BYTES: usize = 24;

impl Key {
    fn new(list: &RecordList, at: u32) -> Key {
        let r = list.get(at as usize);
        let mut bytes = [0u8; KEY_BYTES];
        let n = r.owner.len().min(KEY_BYTES);
        bytes[..n].copy_from_slice(&r.owner[..n]);
        let word = |i: usize| u64::from_be_bytes(std::array::from_fn(|k| bytes[i * 8 + k]));
        Key {
            head: [word(0), word(1), word(2)],
            len: r.owner.len() as u8,
            rtype: r.rtype,
            at,
        }
    }

    fn whole(&self) -> bool {
        usize::from(self.len) <= KEY_BYTES
    }

    /// The order of (owner, type) as far as the keys tell it; `Equal` means the records must
    /// be compared. Agrees with comparing the bytes: zero padding sorts a shorter owner
    /// before a longer one that starts with it, as comparing bytes does.
    fn cmp_fast(&self, other: &Key) -> std::cmp::Ordering {
        let head = self.head.cmp(&other.head);
        if head.is_ne() || !self.whole() || !other.whole() {
            return head;
        }
        (self.len, self.rtype).cmp(&(other.len, other.rtype))
    }
}

#[derive(Debug, Clone, Default)]
pub struct RecordList {
    bytes: Vec<u8>,
    slots: Vec<Slot>,
}

impl RecordList {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Heap bytes the list holds (for reporting what keeping it costs).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.slots.capacity() * std::mem::size_of::<Slot>()
    }

    /// Room for `records` more records of `bytes` bytes of owners and RDATA in all.
    pub fn reserve(&mut self, records: usize, bytes: usize) {
        self.slots.reserve_exact(records);
        self.bytes.reserve_exact(bytes);
    }

    pub fn get(&self, i: usize) -> ZoneRecord<'_> {
        let s = self.slots[i];
        let at = s.at as usize;
        let owner_end = at + usize::from(s.owner_len);
        ZoneRecord {
            owner: &self.bytes[at..owner_end],
            rtype: s.rtype,
            ttl: s.ttl,
            rdata: &self.bytes[owner_end..owner_end + usize::from(s.rdata_len)],
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = ZoneRecord<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Appends a record whose owner `write_owner` appends to the buffer it is given (in
    /// lowercase wire form): owners made from parts need no buffer of their own.
    pub fn push_with(
        &mut self,
        write_owner: impl FnOnce(&mut Vec<u8>),
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
    ) {
        let at = self.bytes.len();
        write_owner(&mut self.bytes);
        let owner_len = self.bytes.len() - at;
        self.bytes.extend_from_slice(rdata);
        self.slots.push(Slot {
            at: u32::try_from(at).expect("a zone's records under 4 GiB"),
            ttl,
            rdata_len: u16::try_from(rdata.len()).expect("RDATA fits in 65535 bytes"),
            rtype,
            owner_len: u8::try_from(owner_len).expect("a name fits in 255 bytes"),
        });
    }

    pub fn push(&mut self, r: ZoneRecord<'_>) {
        self.push_with(|b| b.extend_from_slice(r.owner), r.rtype, r.ttl, r.rdata);
    }

    /// An A or AAAA record at `owner` (wire form).
    pub fn push_address(&mut self, owner: &[u8], ip: IpAddr, ttl: u32) {
        match ip {
            IpAddr::V4(v4) => self.push_with(
                |b| b.extend_from_slice(owner),
                u16::from(RecordType::A),
                ttl,
                &v4.octets(),
            ),
            IpAddr::V6(v6) => self.push_with(
                |b| b.extend_from_slice(owner),
                u16::from(RecordType::AAAA),
                ttl,
                &v6.octets(),
            ),
        }
    }

    /// A full record (records files, SOA, NS), encoded. Records files are checked to encode
    /// when they are read ([`records::rdata_wire`]) and the server's own records always do, so
    /// a record that does not is a bug: it is left out and reported, never a panic.
    pub fn push_record(&mut self, record: &Record) {
        match records::rdata_wire(&record.data) {
            Ok(rdata) => self.push_with(
                |b| b.extend_from_slice(&name_wire(&record.name)),
                u16::from(record.record_type()),
                record.ttl,
                &rdata,
            ),
            Err(why) => tracing::error!(name = %record.name, rtype = %record.record_type(),
                "a record was left out: it cannot be encoded ({why}); a bug: please report it"),
        }
    }

    /// Puts `record` first, dropping the records of its type (the SOA of a zone).
    pub fn set_first(&mut self, record: &Record) {
        let rtype = u16::from(record.record_type());
        self.slots.retain(|s| s.rtype != rtype);
        let before = self.slots.len();
        self.push_record(record);
        if self.slots.len() > before {
            let slot = self.slots.remove(before);
            self.slots.insert(0, slot);
        }
    }

    /// Every record sorted by owner (wire bytes), type, RDATA, without duplicates.
    pub fn sorted(&self) -> RecordList {
        let all: Vec<u32> = (0..self.len() as u32).collect();
        self.sorted_subset(&all)
    }

    /// The records at `picked` (positions in this list) in a list of their own, sorted by
    /// owner (wire bytes), type, RDATA, without duplicates (the first TTL stays). Every
    /// owner's records end up together, which is all the index and the content hash need;
    /// canonical (DNSSEC) order costs a key per record and is only for people reading a
    /// master file. The order must not change: the content hashes that keep serials across
    /// upgrades cover the records in it.
    pub fn sorted_subset(&self, picked: &[u32]) -> RecordList {
        let mut keys: Vec<Key> = picked.iter().map(|&at| Key::new(self, at)).collect();
        keys.sort_unstable_by(|a, b| {
            a.cmp_fast(b)
                .then_with(|| {
                    let (x, y) = (self.get(a.at as usize), self.get(b.at as usize));
                    (x.owner, x.rtype, x.rdata).cmp(&(y.owner, y.rtype, y.rdata))
                })
                // Of two duplicates, the one pushed first stays (and with it its TTL).
                .then(a.at.cmp(&b.at))
        });
        let bytes: usize = (keys.iter())
            .map(|k| self.slots[k.at as usize])
            .map(|s| usize::from(s.owner_len) + usize::from(s.rdata_len))
            .sum();
        let mut out = RecordList {
            bytes: Vec::with_capacity(bytes),
            slots: Vec::with_capacity(keys.len()),
        };
        let mut last: Option<(&Key, ZoneRecord<'_>)> = None;
        for k in &keys {
            let r = self.get(k.at as usize);
            // Records whose keys differ are different: most need no byte comparison.
            let duplicate = last.is_some_and(|(lk, l)| lk.cmp_fast(k).is_eq() && l.same(&r));
            if !duplicate {
                out.push(r);
                last = Some((k, r));
            }
        }
        out
    }

    /// The list in a file's form: the count, then each record (owner length, owner, type,
    /// TTL, RDATA length, RDATA).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.len() as u32).to_be_bytes());
        for r in self.iter() {
            out.push(r.owner.len() as u8);
            out.extend_from_slice(r.owner);
            out.extend_from_slice(&r.rtype.to_be_bytes());
            out.extend_from_slice(&r.ttl.to_be_bytes());
            out.extend_from_slice(&(r.rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(r.rdata);
        }
    }

    /// A list read back from [`RecordList::write_to`]'s form at `bytes[*at..]`, moving `at`
    /// past it; `None` if the bytes end early.
    pub fn read_from(bytes: &[u8], at: &mut usize) -> Option<RecordList> {
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = bytes.get(*at..at.checked_add(n)?)?;
            *at += n;
            Some(s)
        };
        let be = |b: &[u8]| b.iter().fold(0u32, |v, &x| (v << 8) | u32::from(x));
        let count = be(take(4)?);
        let mut list = RecordList::default();
        for _ in 0..count {
            let owner_len = usize::from(take(1)?[0]);
            let owner = take(owner_len)?.to_vec();
            let rtype = be(take(2)?) as u16;
            let ttl = be(take(4)?);
            let rdata_len = be(take(2)?) as usize;
            let rdata = take(rdata_len)?;
            list.push(ZoneRecord {
                owner: &owner,
                rtype,
                ttl,
                rdata,
            });
        }
        Some(list)
    }

    /// Runs of consecutive records that `same` puts together, as index ranges (an owner's
    /// records in a sorted list, then each of its RRsets).
    pub fn runs<'a>(
        &'a self,
        range: std::ops::Range<usize>,
        same: impl Fn(&ZoneRecord<'_>, &ZoneRecord<'_>) -> bool + 'a,
    ) -> impl Iterator<Item = std::ops::Range<usize>> + 'a {
        let mut start = range.start;
        std::iter::from_fn(move || {
            if start >= range.end {
                return None;
            }
            let first = self.get(start);
            let end = (start + 1..range.end)
                .find(|&j| !same(&first, &self.get(j)))
                .unwrap_or(range.end);
            let run = start..end;
            start = end;
            Some(run)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(s: &str) -> Vec<u8> {
        name_wire(&hickory_proto::rr::Name::from_ascii(s).unwrap())
    }

    #[test]
    fn sorted_groups_owners_and_drops_duplicates() {
        let mut list = RecordList::default();
        let (b, a) = (owner("b.x."), owner("a.x."));
        list.push_address(&b, "10.0.0.2".parse().unwrap(), 60);
        list.push_address(&a, "fd00::1".parse().unwrap(), 60);
        list.push_address(&b, "10.0.0.1".parse().unwrap(), 60);
        list.push_address(&a, "10.0.0.3".parse().unwrap(), 60);
        list.push_address(&b, "10.0.0.2".parse().unwrap(), 30);
        let sorted = list.sorted();
        let got: Vec<(&[u8], u16, &[u8])> =
            sorted.iter().map(|r| (r.owner, r.rtype, r.rdata)).collect();
        assert_eq!(
            got,
            [
                (&a[..], 1, &[10, 0, 0, 3][..]),
                (
                    &a[..],
                    28,
                    &"fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets()[..]
                ),
                (&b[..], 1, &[10, 0, 0, 1][..]),
                (&b[..], 1, &[10, 0, 0, 2][..]),
            ]
        );
        assert_eq!(sorted.get(3).ttl, 60, "the first of two duplicates stays");
        let owners: Vec<_> = sorted
            .runs(0..sorted.len(), |x, y| x.owner == y.owner)
            .collect();
        assert_eq!(owners, [0..2, 2..4]);
        let types: Vec<_> = sorted.runs(0..2, |x, y| x.rtype == y.rtype).collect();
        assert_eq!(types, [0..1, 1..2]);
    }

    #[test]
    fn sorted_matches_comparing_records_in_full() {
        // Owners around the key's 24 bytes: short and long, sharing long starts, zero bytes
        // inside labels (which zero padding must not confuse with a shorter owner).
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let labels: [&[u8]; 4] = [b"a", b"\0", b"zt-0123456789", b"host-with-a-long-name"];
        for _ in 0..200 {
            let mut list = RecordList::default();
            for _ in 0..rng.random_range(1..60) {
                let mut owner = Vec::new();
                for _ in 0..rng.random_range(0..4) {
                    let label = labels[rng.random_range(0..4)];
                    owner.push(label.len() as u8);
                    owner.extend_from_slice(label);
                }
                owner.extend_from_slice(b"\x08backhaul\0");
                let rtype = [1u16, 28, 16][rng.random_range(0..3)];
                let rdata = [rng.random_range(0..3u8); 4];
                list.push_with(|b| b.extend_from_slice(&owner), rtype, rng.random(), &rdata);
            }
            let mut want: Vec<(ZoneRecord<'_>, usize)> = list.iter().zip(0..).collect();
            want.sort_by(|(x, i), (y, j)| {
                ((x.owner, x.rtype, x.rdata), i).cmp(&((y.owner, y.rtype, y.rdata), j))
            });
            want.dedup_by(|(later, _), (kept, _)| kept.same(later));
            let want: Vec<ZoneRecord<'_>> = want.into_iter().map(|(r, _)| r).collect();
            let sorted = list.sorted();
            assert_eq!(sorted.iter().collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn a_record_round_trips_and_set_first_replaces() {
        let mut list = RecordList::default();
        let ns: Record = Record::from_rdata(
            hickory_proto::rr::Name::from_ascii("X.").unwrap(),
            60,
            hickory_proto::rr::RData::NS(hickory_proto::rr::rdata::NS(
                hickory_proto::rr::Name::from_ascii("Ns.X.").unwrap(),
            )),
        );
        list.push_record(&ns);
        list.set_first(&ns);
        assert_eq!(list.len(), 1);
        let back = list.get(0).to_record().unwrap();
        assert_eq!(back.name.to_ascii(), "x.", "owners are lowercased");
        assert_eq!(back.data, ns.data, "names inside RDATA keep their case");
    }
}
