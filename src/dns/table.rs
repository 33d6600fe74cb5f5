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

    /// The slot holding an offset whose hash is `hash` and for which `is` says yes.
    fn position(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<usize> {
        let tag = tag(hash);
        let mut at = self.home(tag);
        loop {
            let slot = self.slots[at];
            if slot == EMPTY {
                return None;
            }
            if (slot >> 32) as u32 == tag && is(slot as u32 - 1) {
                return Some(at);
            }
            at = self.next(at);
        }
    }

    /// The offset stored under `hash` for which `is` says yes.
    pub fn find(&self, hash: u64, is: impl FnMut(u32) -> bool) -> Option<u32> {
        self.position(hash, is).map(|at| self.slots[at] as u32 - 1)
    }

    /// Points the entry `is` picks at `offset` instead; false if there is none.
    pub fn replace(&mut self, hash: u64, is: impl FnMut(u32) -> bool, offset: u32) -> bool {
        match self.position(hash, is) {
            Some(at) => {
                self.slots[at] = slot(tag(hash), offset);
                true
            }
            None => false,
        }
    }

    /// Adds `offset` under `hash`; the caller knows no equal entry is present.
    pub fn insert_unique(&mut self, hash: u64, offset: u32) {
        if (self.len + 1) * 100 > self.slots.len() * MAX_LOAD_PERCENT {
            self.resize(slot_count(self.len + 1).max(self.slots.len() * 2));
        }
        self.place(slot(tag(hash), offset));
        self.len += 1;
    }

    /// Gives back the slots beyond what the entries need (a table sized by a generous guess).
    pub fn shrink_to_fit(&mut self) {
        let fit = slot_count(self.len);
        if fit < self.slots.len() {
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

fn slot(tag: u32, offset: u32) -> u64 {
    let stored = offset.checked_add(1).expect("a zone index under 4 GiB");
    u64::from(tag) << 32 | u64::from(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_was_inserted_through_growth_and_shrinking() {
        // Few distinct tags: many entries share a probe run and are told apart by `is`.
        let hash = |i: u32| u64::from(i % 7) << 32 | 0xdead;
        let mut table = Table::with_capacity(2);
        for i in 0..1000 {
            assert_eq!(table.find(hash(i), |o| o == i), None);
            table.insert_unique(hash(i), i);
        }
        assert_eq!(table.len(), 1000);
        for i in 0..1000 {
            assert_eq!(table.find(hash(i), |o| o == i), Some(i));
        }
        assert!(table.replace(hash(5), |o| o == 5, 5000));
        assert_eq!(table.find(hash(5), |o| o == 5), None);
        assert_eq!(table.find(hash(5), |o| o == 5000), Some(5000));
        assert!(!table.replace(hash(5), |o| o == 5, 1));

        let mut big = Table::with_capacity(100_000);
        big.insert_unique(1 << 32, 0);
        big.insert_unique(2 << 32, u32::MAX - 1);
        big.shrink_to_fit();
        assert_eq!(big.slots.len(), 8);
        assert_eq!(big.find(2 << 32, |_| true), Some(u32::MAX - 1));
        assert_eq!(big.find(3 << 32, |_| true), None);
    }

    #[test]
    fn probes_wrap_around_the_end() {
        // The highest tag starts at the last slot: the run continues at slot 0.
        let top = u64::from(u32::MAX) << 32;
        let mut table = Table::with_capacity(5);
        let slots = table.slots.len();
        for i in 0..5 {
            table.insert_unique(top, i);
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
            table.insert_unique(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i as u32);
            assert!(table.len() * 100 <= table.slots.len() * MAX_LOAD_PERCENT);
        }
    }
}
