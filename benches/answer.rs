//! Answer benchmark: what one query costs in the server's own code (parse, look up, write the
//! response), without sockets, at 1,000 and 100,000 members. Issue 7 asks that the cost of a
//! query not grow with the zone: existing-name and NXDOMAIN query sets at 100,000 members
//! should reach at least 0.9x their 1,000-member rate. Over the network the kernel's share is
//! the same at both sizes, so what could make a large zone slower shows up here: cache misses
//! in the hash table and the arenas.
//!
//!   cargo bench --bench answer          (median of 9 rounds; ANSWER_ROUNDS)
//!
//! Sizes take turns within each round, so a slow spell of the machine hits both alike. Each
//! set is timed twice: the answer logic alone (`respond`) and the whole request path a UDP
//! thread runs (`request::handle`: policy, TSIG and transfer checks, the answer, rate
//! limiting), whose heap allocations per query are counted too (the UDP path must make none).

#![allow(clippy::unwrap_used)] // a benchmark: a failure should stop it loudly

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use backhaul_dns::dns::answer::{respond, Outcome, Policy, Rcode, Transport};
use backhaul_dns::dns::context::Context;
use backhaul_dns::dns::request::{self, Action};
use backhaul_dns::dns::rules::{Rules, Surroundings};
use backhaul_dns::dns::ZoneIndex;
use backhaul_dns::records::FileRecords;
use backhaul_dns::sync::builder::Builder;
use backhaul_dns::sync::Views;
use backhaul_dns::view::View;
use backhaul_dns::zerotier::file;

mod common;
use common::{median, members_json, query, Rng, NETWORK};

/// The allocator the binary uses (where the zone's arenas land matters here), counting the
/// allocations made.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on to mimalloc unchanged; counting has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SIZES: [usize; 2] = [1_000, 100_000];
/// Queries per set, as in bench/gen.py's query files.
const QUERIES: usize = 100_000;

/// The zone a server syncing `n` members would answer from.
fn zone(n: usize) -> Arc<ZoneIndex> {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path());
    let mut builder = Builder::new(&config, FileRecords::default(), Arc::default());
    let snapshot = file::parse(&members_json(n, 0), NETWORK.parse().unwrap()).unwrap();
    builder.set(snapshot);
    let views = Views::new();
    views.publish(&builder.build());
    builder
        .snapshot_writer()
        .flush(std::time::Duration::from_secs(10));
    views.private.load_full()
}

const TYPE_A: u16 = 1;

/// The query sets of bench/gen.py: existing names (A) and missing names (NXDOMAIN), with the
/// rcode every answer must have (so the bench cannot time the wrong path).
fn query_sets(n: usize) -> [(&'static str, Vec<Vec<u8>>, Rcode); 2] {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let existing = (0..QUERIES)
        .map(|i| query(i as u16, &format!("host{}.backhaul", rng.below(n)), TYPE_A))
        .collect();
    let missing = (0..QUERIES)
        .map(|i| {
            let name = format!("nx{}.backhaul", rng.below(1_000_000_000));
            query(i as u16, &name, TYPE_A)
        })
        .collect();
    [
        ("A, existing", existing, Rcode::NoError),
        ("NXDOMAIN", missing, Rcode::NxDomain),
    ]
}

/// Nanoseconds per query over the whole set.
fn answer_all(zone: &ZoneIndex, queries: &[Vec<u8>], expect: Rcode, out: &mut Vec<u8>) -> f64 {
    let policy = Policy {
        allowed: true,
        ..Policy::default()
    };
    let start = Instant::now();
    for q in queries {
        match respond(zone, q, Transport::Udp, policy, out) {
            Outcome::Reply { rcode, .. } if rcode == expect => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    start.elapsed().as_nanos() as f64 / queries.len() as f64
}

/// Nanoseconds per query over the whole set through the request path, as a UDP thread runs it
/// (one load of the rules per batch of 32), and the heap allocations made.
fn handle_all(
    ctx: &Context,
    zone: &ZoneIndex,
    queries: &[Vec<u8>],
    out: &mut Vec<u8>,
) -> (f64, u64) {
    let client = "127.0.0.1".parse().unwrap();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let start = Instant::now();
    for batch in queries.chunks(32) {
        let rules = ctx.rules();
        let from = request::Client::new(&rules, zone, client);
        for q in batch {
            let action = request::handle(ctx, &rules, zone, q, &from, Transport::Udp, out);
            assert_eq!(action, Action::Reply);
        }
    }
    let took = start.elapsed().as_nanos() as f64 / queries.len() as f64;
    (took, ALLOCATIONS.load(Ordering::Relaxed) - allocations)
}

/// The request path's context, with the rules a server listening on 127.0.0.1 has.
fn context() -> Context {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path());
    let nets = ["127.0.0.1/8".parse().unwrap()];
    let around = Surroundings {
        nets: &nets,
        delegations: &[],
    };
    Context::standalone(Rules::from_config(&config, View::Backhaul, around, None).unwrap())
}

fn main() {
    backhaul_dns::memory::configure();
    let _rt = tokio::runtime::Runtime::new().unwrap();
    let rounds: usize = std::env::var("ANSWER_ROUNDS")
        .map_or(9, |r| r.parse().expect("ANSWER_ROUNDS: a number of rounds"));
    let zones: Vec<_> = SIZES.iter().map(|&n| zone(n)).collect();
    let sets: Vec<_> = SIZES.iter().map(|&n| query_sets(n)).collect();
    let ctx = context();
    let mut out = Vec::with_capacity(1232);
    // ns[size][set]: one sample per round; the same through the request path.
    let mut ns = vec![vec![Vec::new(); 2]; SIZES.len()];
    let mut handled = vec![vec![Vec::new(); 2]; SIZES.len()];
    let mut allocations = 0;
    for _ in 0..rounds {
        for set in 0..2 {
            for (size, zone) in zones.iter().enumerate() {
                let (_, queries, expect) = &sets[size][set];
                ns[size][set].push(answer_all(zone, queries, *expect, &mut out));
                let (took, allocated) = handle_all(&ctx, zone, queries, &mut out);
                handled[size][set].push(took);
                allocations += allocated;
            }
        }
    }
    let queries = (rounds * 2 * SIZES.len() * QUERIES) as f64;
    for set in 0..2 {
        let name = sets[0][set].0;
        let medians: Vec<f64> = ns.iter().map(|s| median(s[set].clone())).collect();
        for (size, m) in SIZES.iter().zip(&medians) {
            println!("{name:>12} at {size:>7} members: {m:6.0} ns per query");
        }
        println!(
            "{name:>12}: rate at {} members / rate at {}: {:.2}",
            SIZES[1],
            SIZES[0],
            medians[0] / medians[1]
        );
        for (size, samples) in SIZES.iter().zip(&handled) {
            let m = median(samples[set].clone());
            println!(
                "{name:>12} at {size:>7} members: {m:6.0} ns per query through the request path"
            );
        }
    }
    println!(
        "heap allocations per query on the request path: {:.4} ({allocations} in {queries} queries)",
        allocations as f64 / queries
    );
}
