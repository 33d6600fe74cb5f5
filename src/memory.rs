//! How the server's allocator (mimalloc, see main.rs) hands memory back to the system.
//!
//! A sync of a large network builds the new zone next to the old one (100,000 members: about
//! 130 MB of short-lived buffers), then frees the old zone and the buffers. By default
//! mimalloc keeps freed pages for a while and the kernel backs its arena with transparent huge
//! pages, so the resident size stays near the sync's peak. Measured with 100,000 members: 72
//! MB resident by default, 48-52 MB with the settings below (the zone itself is about 33 MB).
//!
//! The purge delay has to be zero for every thread: with mimalloc's default (1 s) the pages a
//! thread frees go back only when that same thread allocates again, so buffers of TCP clients
//! served by runtime threads that then sat idle stayed resident (100,000 members after the
//! benchmark's TCP runs: 75 MB instead of 52). The zone builder additionally sweeps once syncs
//! pause (see `sync::RELEASE_AFTER`). Queries allocate nothing, so they feel neither.

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (the Rust bindings name no constant
/// for it): milliseconds before freed pages go back to the system (default 1000).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Call first thing in `main`, before any thread starts.
pub fn configure() {
    // SAFETY: plain option setters and a prctl on this process; no pointers.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        // No transparent huge pages: every touched 2 MiB region would stay resident however
        // little of it is in use (1,000 members: 50 MB resident with them, 8 MB without).
        // Failure (old kernels) leaves THP as it was.
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Returns the pages freed so far to the system (all of this thread's, and abandoned ones).
pub fn release_freed() {
    // SAFETY: mi_collect takes no pointers; with another global allocator it only sweeps
    // mimalloc's own (then empty) heaps.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn purge_delay_is_the_option_we_mean() {
        // Its default is 1000 ms in mimalloc 3 and 10 ms in mimalloc 2; the neighbouring
        // options (eager_commit_delay 14, use_numa_nodes 16) default to 1 and 0.
        // SAFETY: reads an option by a valid index; no pointers involved.
        let value = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert!(value == 1000 || value == 10, "{value}");
    }
}
