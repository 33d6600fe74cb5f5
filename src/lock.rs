//! The one lock policy: a poisoned mutex or read-write lock is taken as it is, never a second
//! panic.
//!
//! A panic while a lock is held is already a bug, reported by the panic hook. Every critical
//! section in this crate leaves its data whole between statements (a counter, a set, a queue
//! flag), so the value behind a poisoned lock is still good; panicking again on it would take
//! a DNS thread or the sync down with it.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `m`, recovering the guard from a poisoned lock.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads `l`, recovering the guard from a poisoned lock.
pub fn read<T: ?Sized>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes `l`, recovering the guard from a poisoned lock.
pub fn write<T: ?Sized>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}
