//! Encoding while compiling the index: RRset lists in their arena form, each distinct list
//! stored once ([`SetStore`]), and the arena's size guessed ahead.

use std::hash::BuildHasher;
use std::ops::Range;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use hickory_proto::rr::RecordType;

use super::{NODE_FIXED, POINTER_TO_QNAME, RRSET_HEADER};
use crate::dname::class;
use crate::zone::{RecordList, Zones};

/// Appends `TYPE | CLASS | TTL | RDLENGTH | RDATA`.
pub(super) fn push_tail(w: &mut Vec<u8>, rtype: u16, ttl: u32, rdata: &[u8]) {
    w.extend_from_slice(&rtype.to_be_bytes());
    w.extend_from_slice(&class::IN.to_be_bytes());
    w.extend_from_slice(&ttl.to_be_bytes());
    w.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    w.extend_from_slice(rdata);
}

/// Bytes [`push_tail`] writes before the RDATA.
const TAIL_FIXED: usize = 10;

/// The RRset list (`NSETS | RRSET...`) of one owner's records (`owned`, sorted) into `list`;
/// an SOA among them also goes into `negative_soa`, as negative answers carry it.
pub(super) fn encode_rrsets(
    records: &RecordList,
    owned: Range<usize>,
    list: &mut Vec<u8>,
    negative_soa: &mut Vec<u8>,
) {
    list.clear();
    list.extend_from_slice(&[0, 0]);
    let mut nsets = 0u16;
    for set in records.runs(owned, |a, b| a.rtype == b.rtype) {
        list.extend_from_slice(&records.get(set.start).rtype.to_le_bytes());
        list.extend_from_slice(&(set.len() as u16).to_le_bytes());
        let len_at = list.len();
        list.extend_from_slice(&[0; 4]);
        for r in set.map(|i| records.get(i)) {
            if r.record_type() == RecordType::SOA {
                // MINIMUM is the last field of SOA RDATA (RFC 1035 3.3.13).
                let minimum = (r.rdata.len().checked_sub(4))
                    .and_then(|i| r.rdata[i..].try_into().ok())
                    .map(u32::from_be_bytes)
                    .unwrap_or(r.ttl);
                negative_soa.clear();
                push_tail(negative_soa, r.rtype, r.ttl.min(minimum), r.rdata);
            }
            list.extend_from_slice(&POINTER_TO_QNAME);
            push_tail(list, r.rtype, r.ttl, r.rdata);
        }
        let len = (list.len() - len_at - 4) as u32;
        list[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        nsets += 1;
    }
    list[..2].copy_from_slice(&nsets.to_le_bytes());
}

/// Arena bytes for `zones`: a node per owner and a list of its records each. More than the
/// arena needs (lists that several names share are stored once; 1.5x at 100,000 members)
/// unless empty non-terminals are many, so it rarely grows by copying itself.
pub(super) fn arena_guess(
    zones: &Zones,
    apexes: &[Vec<u8>],
    owners: &[Vec<Range<usize>>],
) -> usize {
    let mut bytes = 0;
    for ((z, apex), owners) in zones.zones.iter().zip(apexes).zip(owners) {
        for owned in owners {
            let owner = z.records.get(owned.start).owner;
            bytes += 1 + owner.len() - apex.len() + NODE_FIXED + 2;
            bytes += (owned.clone().map(|i| z.records.get(i)))
                .map(|r| RRSET_HEADER + POINTER_TO_QNAME.len() + TAIL_FIXED + r.rdata.len())
                .sum::<usize>();
        }
    }
    bytes + zones.scopes.names_hidden.len() * super::MASKS_LEN
}

/// Stores each distinct RRset list once in the arena (only while compiling).
#[derive(Default)]
pub(super) struct SetStore {
    /// `(offset, length)` of every list stored, by hash of its bytes.
    seen: HashTable<(u32, u32)>,
}

impl SetStore {
    /// The offset of `list` (`NSETS | RRSET...`) in `sets`, appending it if it is new.
    pub(super) fn intern(&mut self, sets: &mut Vec<u8>, hasher: &RandomState, list: &[u8]) -> u32 {
        let hash = hasher.hash_one(list);
        let slice = |&(at, len): &(u32, u32)| (at as usize, at as usize + len as usize);
        let found = self.seen.find(hash, |e| {
            let (from, to) = slice(e);
            &sets[from..to] == list
        });
        if let Some(&(at, _)) = found {
            return at;
        }
        let at = u32::try_from(sets.len()).expect("RRsets under 4 GiB");
        sets.extend_from_slice(list);
        self.seen.insert_unique(hash, (at, list.len() as u32), |e| {
            let (from, to) = slice(e);
            hasher.hash_one(&sets[from..to])
        });
        at
    }
}
