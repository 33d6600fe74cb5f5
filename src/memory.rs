//! How the server's allocator (mimalloc, see main.rs) hands memory back to the system.
//!
//! A sync of a large network builds the new zone next to the old one (100,000 members: about
//! 130 MB of short-lived buffers), then frees the old zone and the buffers. By default
//! mimalloc keeps freed pages for a while and the kernel backs its arena with transparent huge
//! pages, so the resident size stays near the sync's peak. Measured with 100,000 members: 72
//! MB resident by default, 48-52 MB with the settings below (the zone itself is about 33 MB).
//!
//! Freed pages go back to the system at once (purge delay 0) except while zones are being
//! built: with mimalloc's default delay (1 s) the pages a thread frees go back only when some
//! thread allocates after the delay, so buffers of TCP clients served by runtime threads that
//! then sat idle stayed resident (100,000 members after the benchmark's TCP runs: 75 MB
//! instead of 52). A build, though, frees big buffers (the record lists) and allocates the next
//! (the index) right after: purged at once, each reused page was faulted in again, 70,000
//! faults for a 100,000-member sync instead of 20,000, a quarter of its time on this VM. So
//! [`pause_purging`] keeps freed pages for reuse from the start of a build, and the zone builder
//! hands everything back with [`release_freed`] once syncs pause (see `sync::RELEASE_AFTER`).
//! Queries allocate nothing, so they feel neither.

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (the Rust bindings name no constant
/// for it): milliseconds before freed pages go back to the system (default 1000).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// While purging is paused: longer than any build, so nothing is purged until
/// [`release_freed`] purges it all.
const PAUSED_MS: std::ffi::c_long = 60_000;

/// Call first thing in `main`, before any thread starts.
pub fn configure() {
    set_purge_delay(0);
    // SAFETY: a prctl on this process; no pointers.
    unsafe {
        // No transparent huge pages: every touched 2 MiB region would stay resident however
        // little of it is in use (1,000 members: 50 MB resident with them, 8 MB without).
        // Failure (old kernels) leaves THP as it was.
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// The option is a plain word that mimalloc reads on every purge decision; setting it from
/// one thread while others allocate is what mimalloc's own option setters do.
fn set_purge_delay(ms: std::ffi::c_long) {
    // SAFETY: an option setter; no pointers.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms) };
}

/// Freed pages stay with the process, for the rest of this build and the next ones, until
/// [`release_freed`].
pub fn pause_purging() {
    set_purge_delay(PAUSED_MS);
}

/// Returns the pages freed so far to the system: this thread's, abandoned ones and every
/// arena's (all threads'), and purges at once again from then on.
pub fn release_freed() {
    // mimalloc skips the arenas' purge, even a forced one, while the delay is 0: collect
    // first, then go back to purging at once.
    set_purge_delay(PAUSED_MS);
    // SAFETY: mi_collect takes no pointers; with another global allocator it only sweeps
    // mimalloc's own (then empty) heaps.
    unsafe { libmimalloc_sys::mi_collect(true) };
    set_purge_delay(0);
}

#[cfg(test)]
mod tests {
    #[test]
    fn purge_delay_is_the_option_we_mean() {
        // Its default is 1000 ms in mimalloc 3 and 10 ms in mimalloc 2 (other tests may have
        // set it already); the neighbouring options (eager_commit_delay 14, use_numa_nodes 16)
        // default to 1 and 0.
        let get = |o| unsafe { libmimalloc_sys::mi_option_get(o) };
        let value = get(super::MI_OPTION_PURGE_DELAY);
        assert!([1000, 10, 0, super::PAUSED_MS].contains(&value), "{value}");
        assert_eq!((get(14), get(16)), (1, 0));
    }
}
