//! Sync benchmark: how long a sync of N members takes, stage by stage: parse the member list
//! (JSON), record it (compare, save the snapshot file), build both views (names, records,
//! serials), compile the index and swap it in. Targets (issue 7): < 100 ms at 10,000 members,
//! < 1 s at 100,000. The serials are written after the swap (not counted in the total, shown
//! apart). Each run starts with the memory of the last one handed back, as the server does
//! once syncs pause.
//!
//!   cargo bench --bench sync            (median of 5 runs per size; SYNC_SIZES, SYNC_RUNS)

#![allow(clippy::unwrap_used)] // a benchmark: a failure should stop it loudly

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backhaul_dns::records::FileRecords;
use backhaul_dns::sync::builder::Builder;
use backhaul_dns::sync::Views;
use backhaul_dns::zerotier::file;

mod common;
use common::{median, members_json, NETWORK};

/// The allocator the binary uses, wrapped to count live heap bytes.
#[global_allocator]
static ALLOCATOR: Counting = Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Counts the bytes the program holds (not what the allocator keeps around: RSS is higher).
struct Counting;

// SAFETY: every call is passed on unchanged to mimalloc, a correct allocator; only counters
// are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(live, Relaxed);
        // SAFETY: the caller's layout contract is passed on as is.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: `ptr` came from this allocator with this layout (the caller's contract).
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let live = LIVE.fetch_add(new_size, Relaxed) + new_size;
        LIVE.fetch_sub(layout.size(), Relaxed);
        PEAK.fetch_max(live, Relaxed);
        // SAFETY: as for dealloc, and `new_size` is the caller's valid new size.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

fn mb(bytes: usize) -> String {
    format!("{:6.1} MB", bytes as f64 / 1e6)
}

const RUNS: usize = 5;

/// Page faults of this thread so far: a sync that touches fresh memory pays one per 4 KiB page,
/// and on a virtual machine they are expensive.
fn minor_faults() -> i64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    usage.ru_minflt
}

fn ms(d: Duration) -> String {
    format!("{:8.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    backhaul_dns::memory::configure();
    let _rt = tokio::runtime::Runtime::new().unwrap();
    // SYNC_SIZES=10000 and SYNC_RUNS=50, say, to profile one size.
    let sizes: Vec<usize> = std::env::var("SYNC_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("SYNC_SIZES: member counts separated by commas")
        })
        .collect();
    let runs: usize = std::env::var("SYNC_RUNS")
        .map_or(RUNS, |r| r.parse().expect("SYNC_RUNS: a number of runs"));
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let config = common::config(dir.path());
        let mut builder = Builder::new(&config, FileRecords::default(), Arc::default());
        let views = Views::new();
        let mut stages: [Vec<Duration>; 6] = Default::default();
        let mut faults = Vec::new();
        for run in 0..runs {
            // A different address for every member each run: every record changes.
            let json = members_json(n, run);
            backhaul_dns::memory::release_freed();
            let faults_before = minor_faults();
            let t0 = Instant::now();
            let snapshot = file::parse(&json, NETWORK.parse().unwrap()).unwrap();
            let t1 = Instant::now();
            assert!(builder.set(snapshot));
            let t2 = Instant::now();
            let built = builder.build();
            let t3 = Instant::now();
            views.publish(&built);
            let t4 = Instant::now();
            faults.push(minor_faults() - faults_before);
            builder.save_serials();
            let t5 = Instant::now();
            for (s, d) in
                stages
                    .iter_mut()
                    .zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, t5 - t4])
            {
                s.push(d);
            }
        }
        // What a running server holds between syncs: the builder's member data and the
        // published views (the built zones are dropped after the swap). The snapshot writer
        // holds a member list only while saving it.
        builder.snapshot_writer().flush(Duration::from_secs(10));
        let held = LIVE.load(Relaxed);
        let json = members_json(n, runs);
        let snapshot = file::parse(&json, NETWORK.parse().unwrap()).unwrap();
        drop(json);
        let before = LIVE.load(Relaxed);
        PEAK.store(before, Relaxed);
        builder.set(snapshot);
        let built = builder.build();
        views.publish(&built);
        drop(built);
        builder.snapshot_writer().flush(Duration::from_secs(10));
        let peak = PEAK.load(Relaxed) - before;
        drop(views);
        let index = held - LIVE.load(Relaxed);
        drop(builder);
        let members = held - index - LIVE.load(Relaxed);
        let [parse, record, build, swap, total, serials] = stages.map(median);
        faults.sort();
        println!(
            "{n:>7} members: parse {} | record+save {} | build {} | compile+swap {} | total {} | page faults {} | then serials saved {}",
            ms(parse),
            ms(record),
            ms(build),
            ms(swap),
            ms(total),
            faults[faults.len() / 2],
            ms(serials)
        );
        println!(
            "{n:>7} members: heap held: index {} + member data {} | a sync adds up to {}",
            mb(index),
            mb(members),
            mb(peak)
        );
    }
}
