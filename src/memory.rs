//! How the server's allocator (mimalloc, see main.rs) hands memory back to the system.
//!
//! A sync of a large network builds the new zone next to the old one (100,000 members: about
//! 130 MB of short-lived buffers), then frees the old zone and the buffers. Two things kept
//! the resident size near that peak: the kernel backing mimalloc's arena with transparent huge
//! pages (turned off here), and freed pages kept for reuse (returned by [`release_freed`],
//! which the zone builder calls once syncs pause for a second). Measured with 100,000
//! members: 72 MB resident with neither, 48-50 MB with both (the zone itself is about 33 MB).
//!
//! Returning pages after every build instead (or at once on every free) made each build of a
//! busy network fault all its memory back in: 10,000 members synced every 100 ms took ~10,000
//! page faults per build and a third more time. Queries allocate nothing, so they feel
//! neither setting.

/// Call first thing in `main`, before any thread starts.
pub fn configure() {
    // No transparent huge pages: every touched 2 MiB region would stay resident however
    // little of it is in use (1,000 members: 50 MB resident with them, 8 MB without).
    // Failure (old kernels) leaves THP as it was.
    // SAFETY: a plain prctl on this process, no pointers.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

/// Returns the pages freed so far to the system (all of this thread's, and abandoned ones).
pub fn release_freed() {
    // SAFETY: mi_collect takes no pointers; with another global allocator it only sweeps
    // mimalloc's own (then empty) heaps.
    unsafe { libmimalloc_sys::mi_collect(true) };
}
