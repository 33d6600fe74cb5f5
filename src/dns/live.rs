//! The live answers of service names: small, and replaced on every health flip without
//! touching the zone index.
//!
//! The zone holds every service name with all its members (see `crate::zone::services`), and
//! its index flags those names. A query that lands on a flagged name is answered from this
//! table instead, when the table has the name; a health flip compiles a new table (a few
//! records per service) and swaps it in with one atomic store.

// foldhash, seeded per process: lookups are by names clients choose, inserts by ours only.
use foldhash::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::rrset::RrSet;
use crate::dname::{class, rtype};
use crate::zone::services::LiveRecords;

/// The table every zone index of the backhaul view points at; the health side swaps it.
pub type SharedLive = Arc<ArcSwap<LiveTable>>;

/// The current answers of every service name, by lowercase wire name. A flip makes a new
/// table from the last one: the entries are shared, only the changed service's are new.
#[derive(Default, Clone)]
pub struct LiveTable {
    names: HashMap<Arc<[u8]>, Arc<LiveName>>,
}

/// One name's RRsets, encoded as the zone index encodes them (owner = pointer to the question).
pub struct LiveName {
    sets: Vec<LiveSet>,
    /// Rotate the address records from answer to answer (`policy = "all"`).
    rotate: bool,
    /// Answers given so far: where the next rotation starts.
    turn: AtomicU32,
}

struct LiveSet {
    rtype: u16,
    count: u16,
    wire: Box<[u8]>,
}

impl LiveTable {
    /// The table answering with `records`.
    pub fn new<'a>(records: impl IntoIterator<Item = &'a LiveRecords>) -> LiveTable {
        let mut table = LiveTable::default();
        for r in records {
            table.insert(&r.owner, &r.sets, r.ttl, r.rotate);
        }
        table
    }

    /// This table with the names of `records` answered by those (the rest shared).
    pub fn updated<'a>(&self, records: impl IntoIterator<Item = &'a LiveRecords>) -> LiveTable {
        let mut table = self.clone();
        for r in records {
            table.insert(&r.owner, &r.sets, r.ttl, r.rotate);
        }
        table
    }

    /// Sets `owner`'s RRsets: `(type, RDATAs)` with one TTL; sets without records are left out
    /// (the name then has NODATA for that type).
    fn insert(&mut self, owner: &[u8], sets: &[(u16, Vec<Vec<u8>>)], ttl: u32, rotate: bool) {
        let sets = sets
            .iter()
            .filter(|(_, rdatas)| !rdatas.is_empty())
            .map(|(rtype, rdatas)| {
                let rtype = *rtype;
                let len: usize = rdatas.iter().map(|r| 12 + r.len()).sum();
                let mut wire = Vec::with_capacity(len);
                for rdata in rdatas {
                    wire.extend_from_slice(&[0xc0, 0x0c]);
                    wire.extend_from_slice(&rtype.to_be_bytes());
                    wire.extend_from_slice(&class::IN.to_be_bytes());
                    wire.extend_from_slice(&ttl.to_be_bytes());
                    wire.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                    wire.extend_from_slice(rdata);
                }
                LiveSet {
                    rtype,
                    count: u16::try_from(rdatas.len()).unwrap_or(u16::MAX),
                    wire: wire.into_boxed_slice(),
                }
            })
            .collect();
        let name = LiveName {
            sets,
            rotate,
            turn: AtomicU32::new(0),
        };
        self.names
            .insert(Arc::from(owner.to_ascii_lowercase()), Arc::new(name));
    }

    pub fn get(&self, name: &[u8]) -> Option<&LiveName> {
        self.names.get(name).map(Arc::as_ref)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

impl LiveName {
    /// The RRsets to answer `qtype` with (every set for ANY), each split in two at the
    /// rotation point: write the first part, then the second. A set that is not rotated has
    /// an empty second part.
    pub fn answer_sets(
        &self,
        qtype: u16,
        any: u16,
    ) -> impl Iterator<Item = (RrSet<'_>, RrSet<'_>)> {
        let turn = if self.rotate {
            self.turn.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        self.sets
            .iter()
            .filter(move |s| s.rtype == qtype || qtype == any)
            .map(move |s| s.rotated(turn))
    }
}

impl LiveSet {
    /// Records `turn % count` onward, then the ones before: the records of an address set are
    /// all the same length, so the split is a byte offset. Other types are not rotated.
    fn rotated(&self, turn: u32) -> (RrSet<'_>, RrSet<'_>) {
        let whole = |wire, count| RrSet {
            rtype: self.rtype,
            count,
            wire,
        };
        let len = self.wire.len() / usize::from(self.count.max(1));
        let addresses = matches!(self.rtype, rtype::A | rtype::AAAA);
        let k = if addresses && self.count > 1 {
            (turn % u32::from(self.count)) as u16
        } else {
            0
        };
        let at = usize::from(k) * len;
        (
            whole(&self.wire[at..], self.count - k),
            whole(&self.wire[..at], k),
        )
    }
}
