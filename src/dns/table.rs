//! The zone index's hash table: arena offsets found by hash, one memory access per lookup.
//!
//! With hashbrown, a query for an existing name at 100,000 members read a control byte, then
//! the slot, far from it in 2.5 MB of table, before it reached the name itself: cache misses
//! that made a large zone answer slower than a small one. Here each slot holds the upper half
//! of the name's hash beside its offset, so one slot read both filters (a false match costs
//! one name comparison, about once in 8,000 probes at half a million slots) and locates;
//! linear probing keeps the rest of a probe in the same cache line.
//! The table has as many slots as its load needs, not the next power of two (100,000 members:
//! 4.7 MB instead of 8 MB): the tag picks the first slot by multiplying, not by masking.

/// Slots are `tag(32) | offset + 1 (32)`; 0 is empty.
const EMPTY: u64 = 0;

/// Slots at most 70% full: with linear probing a hit reads about 2 slots on average and a
/// miss about 6 (48 bytes, mostly one cache line).
const MAX_LOAD_PERCENT: usize = 70;

/// Where [`Table::probe`] ended.
pub enum Probe {
    Found { slot: usize, offset: u32 },
    Vacant { slot: usize },
}

#[derive(Clone)]
pub struct Table {
    slots: Box<[u64]>,
    len: usize,
}

impl Default for Table {
    fn default() -> Table {
        Table::with_capacity(0)
    }
}

/// The part of a hash stored in a slot, which also picks the first slot to probe.
fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

fn slot_count(entries: usize) -> usize {
    (entries * 100 / MAX_LOAD_PERCENT + 1).max(8)
}

impl Table {
    /// Room for `entries` without growing.
    pub fn with_capacity(entries: usize) -> Table {
        Table {
            slots: vec![EMPTY; slot_count(entries)].into_boxed_slice(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Where the probe for `tag` starts: the tag scaled to the table (multiply and shift,
    /// uniform for any table size).
    fn home(&self, tag: u32) -> usize {
        ((u64::from(tag) * self.slots.len() as u64) >> 32) as usize
    }

    /// The slot after `at`, wrapping at the end.
    fn next(&self, at: usize) -> usize {
        if at + 1 == self.slots.len() {
            0
        } else {
            at + 1
        }
    }

    /// The slot holding an offset whose hash is `hash` and for which `is` says yes, or the
    /// empty slot that ended the search (where such an entry would go).
    fn search(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Result<usize, usize> {
        let tag = tag(hash);
        let mut at = self.home(tag);
        loop {
            let slot = self.slots[at];
            if slot == EMPTY {
                return Err(at);
            }
            if (slot >> 32) as u32 == tag && is(offset_in(slot)) {
                return Ok(at);
            }
            at = self.next(at);
        }
    }

    /// Looks `hash` up to find an entry or, failing that, to add one with [`Table::fill`]:
    /// one probe, not two, for each name a build adds. Makes room for one more entry first,
    /// so the slot stays valid until then.
    pub fn probe(&mut self, hash: u64, is: impl FnMut(u32) -> bool) -> Probe {
        self.reserve_one();
        match self.search(hash, is) {
            Ok(slot) => Probe::Found {
                slot,
                offset: offset_in(self.slots[slot]),
            },
            Err(slot) => Probe::Vacant { slot },
        }
    }

    /// Stores `offset` under `hash` in a slot [`Table::probe`] just returned, replacing the
    /// entry found there, if any.
    pub fn fill(&mut self, slot: usize, hash: u64, offset: u32) {
        if self.slots[slot] == EMPTY {
            self.len += 1;
        }
        self.slots[slot] = make_slot(tag(hash), offset);
    }

    /// Starts loading the first slot a probe for `hash` reads: a build knows the names it
    /// adds next, and their slots are far apart in a table of megabytes.
    pub fn prefetch(&self, hash: u64) {
        let at = self.home(tag(hash));
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is only a hint; the address is inside the slots.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(self.slots.as_ptr().add(at).cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = at;
    }

    fn reserve_one(&mut self) {
        if (self.len + 1) * 100 > self.slots.len() * MAX_LOAD_PERCENT {
            self.resize(slot_count(self.len + 1).max(self.slots.len() * 2));
        }
    }

    /// The offset stored under `hash` for which `is` says yes.
    pub fn find(&self, hash: u64, is: impl FnMut(u32) -> bool) -> Option<u32> {
        (self.search(hash, is).ok()).map(|at| offset_in(self.slots[at]))
    }

    /// Gives back the slots beyond what the entries need (a table sized by a generous guess),
    /// unless they are few: moving every entry costs more than an eighth more slots.
    pub fn shrink_to_fit(&mut self) {
        let fit = slot_count(self.len);
        if fit + fit / 8 < self.slots.len() {
            self.resize(fit);
        }
    }

    fn place(&mut self, slot: u64) {
        let mut at = self.home((slot >> 32) as u32);
        while self.slots[at] != EMPTY {
            at = self.next(at);
        }
        self.slots[at] = slot;
    }

    /// Moves every entry into `count` slots: the tag says where each belongs, so no name is
    /// hashed again.
    fn resize(&mut self, count: usize) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; count].into_boxed_slice());
        for &s in old.iter().filter(|&&s| s != EMPTY) {
            self.place(s);
        }
    }
}

/// The offset a full slot holds.
fn offset_in(slot: u64) -> u32 {
    slot as u32 - 1
}

fn make_slot(tag: u32, offset: u32) -> u64 {
    let stored = offset.checked_add(1).expect("a zone index under 4 GiB");
    u64::from(tag) << 32 | u64::from(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds `offset` under `hash`, or points the entry with that offset at `new` instead.
    fn put(table: &mut Table, hash: u64, offset: u32, new: u32) -> bool {
        match table.probe(hash, |o| o == offset) {
            Probe::Found { slot, .. } => {
                table.fill(slot, hash, new);
                true
            }
            Probe::Vacant { slot } => {
                table.fill(slot, hash, offset);
                false
            }
        }
    }

    #[test]
    fn finds_what_was_inserted_through_growth_and_shrinking() {
        // Few distinct tags: many entries share a probe run and are told apart by `is`.
        let hash = |i: u32| u64::from(i % 7) << 32 | 0xdead;
        let mut table = Table::with_capacity(2);
        for i in 0..1000 {
            assert_eq!(table.find(hash(i), |o| o == i), None);
            assert!(!put(&mut table, hash(i), i, 0), "added");
        }
        assert_eq!(table.len(), 1000);
        for i in 0..1000 {
            assert_eq!(table.find(hash(i), |o| o == i), Some(i));
        }
        assert!(put(&mut table, hash(5), 5, 5000), "replaced");
        assert_eq!(table.len(), 1000);
        assert_eq!(table.find(hash(5), |o| o == 5), None);
        assert_eq!(table.find(hash(5), |o| o == 5000), Some(5000));

        let mut big = Table::with_capacity(100_000);
        put(&mut big, 1 << 32, 0, 0);
        put(&mut big, 2 << 32, u32::MAX - 1, 0);
        big.shrink_to_fit();
        assert_eq!(big.slots.len(), 8);
        assert_eq!(big.find(2 << 32, |_| true), Some(u32::MAX - 1));
        assert_eq!(big.find(3 << 32, |_| true), None);

        // A table a little larger than it needs is left as it is.
        let mut near = Table::with_capacity(105);
        for i in 0..100 {
            put(&mut near, u64::from(i) << 40, i, 0);
        }
        let slots = near.slots.len();
        near.shrink_to_fit();
        assert_eq!(near.slots.len(), slots);
    }

    #[test]
    fn probes_wrap_around_the_end() {
        // The highest tag starts at the last slot: the run continues at slot 0.
        let top = u64::from(u32::MAX) << 32;
        let mut table = Table::with_capacity(5);
        let slots = table.slots.len();
        for i in 0..5 {
            put(&mut table, top, i, 0);
        }
        assert_eq!(table.slots.len(), slots, "no growth within capacity");
        assert_ne!(table.slots[0], EMPTY, "the run wrapped");
        for i in 0..5 {
            assert_eq!(table.find(top, |o| o == i), Some(i));
        }
        assert_eq!(table.find(top, |o| o == 5), None);
    }

    #[test]
    fn stays_within_its_load() {
        let mut table = Table::default();
        for i in 0..10_000u64 {
            put(
                &mut table,
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                i as u32,
                0,
            );
            assert!(table.len() * 100 <= table.slots.len() * MAX_LOAD_PERCENT);
        }
    }
}
