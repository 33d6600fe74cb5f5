//! [`LogOnce`]: remembers what was logged, so that a condition that repeats (a secondary
//! retrying with a wrong key, a NOTIFY refused every sync) is logged once, not per request.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Mutex;

use crate::lock::lock;

/// The keys already logged. Bounded: past [`LogOnce::MAX`] keys it starts over, so a flood of
/// distinct sources costs a line now and then, never unbounded memory.
pub struct LogOnce<K>(Mutex<HashSet<K>>);

impl<K> Default for LogOnce<K> {
    fn default() -> Self {
        LogOnce(Mutex::new(HashSet::new()))
    }
}

impl<K: Eq + Hash> LogOnce<K> {
    pub const MAX: usize = 4096;

    /// Whether `key` is new: the caller logs it now.
    pub fn first(&self, key: K) -> bool {
        let mut seen = lock(&self.0);
        if seen.len() >= Self::MAX {
            seen.clear();
        }
        seen.insert(key)
    }

    /// Forgets `key`: the next [`LogOnce::first`] of it logs again (the condition went away).
    pub fn forget(&self, key: &K) {
        lock(&self.0).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_key_and_bounded() {
        let once = LogOnce::default();
        assert!(once.first(1u32));
        assert!(!once.first(1));
        assert!(once.first(2));
        once.forget(&1);
        assert!(once.first(1));
        for k in 3..LogOnce::<u32>::MAX as u32 + 10 {
            once.first(k);
        }
        assert!(lock(&once.0).len() <= LogOnce::<u32>::MAX);
    }
}
