//! Service health flips at 100,000 members with 1,000 of them in a hundred services: what a flip
//! costs (CPU of taking the check results and swapping in the new live table), how long
//! until the answer changes, and the latency of queries while members flip.
//!
//!   cargo bench --bench services      (SERVICES_SECONDS per phase, default 3)
//!
//! The checks themselves are not run (they would connect to the members' addresses): check
//! results go in through `Services::take_results`, the same path the checks thread uses.
//! One thread answers queries the whole time, through the zone index as the UDP path does
//! (`respond`, one zone load per query); a second flips a member every millisecond in the
//! second phase.

#![allow(clippy::unwrap_used)] // a benchmark: a failure should stop it loudly

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backhaul_dns::config::Config;
use backhaul_dns::dns::answer::{respond, Outcome, Policy, Rcode, Transport};
use backhaul_dns::records::FileRecords;
use backhaul_dns::services::health::CheckKey;
use backhaul_dns::sync::builder::Builder;
use backhaul_dns::sync::Views;
use backhaul_dns::zerotier::file;

mod common;
use common::{members_json, query, NETWORK};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MEMBERS: usize = 100_000;
/// A hundred services of ten members each: `svcK` holds hostK0..hostK9 (K = 10..109), so
/// host100..host1099 are in services.
const SERVICES: usize = 100;

/// The bench network with its ten services.
fn config(dir: &std::path::Path) -> Config {
    let mut tables = String::new();
    for k in 10..10 + SERVICES {
        tables.push_str(&format!(
            "[[service]]\nname = \"svc{k}\"\nmembers = [\"host{k}?\"]\nport = 5432\ncheck = \"tcp\"\ninterval = \"1s\"\n"
        ));
    }
    common::config_with(dir, &tables)
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec that we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Answers the query mix until `stop`; returns each query's latency in ns.
fn answer_until(views: &Views, queries: &[Vec<u8>], stop: &AtomicBool) -> Vec<u64> {
    let policy = Policy {
        allowed: true,
        ..Policy::default()
    };
    let mut out = Vec::with_capacity(1232);
    let mut took = Vec::with_capacity(4_000_000);
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        for q in &queries[i..i + 64] {
            let start = Instant::now();
            let zone = views.private.load();
            match respond(&zone, q, Transport::Udp, policy, &mut out) {
                Outcome::Reply {
                    rcode: Rcode::NoError,
                    ..
                } => {}
                other => panic!("unexpected answer {other:?}"),
            }
            took.push(start.elapsed().as_nanos() as u64);
        }
        i = (i + 64) % (queries.len() - 64);
    }
    took
}

fn report(phase: &str, mut took: Vec<u64>) {
    took.sort_unstable();
    println!(
        "{phase}: {} queries, p50 {} ns, p99 {} ns, p99.9 {} ns, max {} us",
        took.len(),
        percentile(&took, 0.50),
        percentile(&took, 0.99),
        percentile(&took, 0.999),
        took.last().unwrap() / 1000
    );
}

fn main() {
    backhaul_dns::memory::configure();
    let seconds: u64 = std::env::var("SERVICES_SECONDS").map_or(3, |s| s.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let mut builder = Builder::new(&config, FileRecords::default(), Arc::default());
    builder.set(file::parse(&members_json(MEMBERS, 0), NETWORK.parse().unwrap()).unwrap());
    // What choosing the services' members adds to a zone build: the same members built
    // without services and with them, taking turns.
    let plain_dir = tempfile::tempdir().unwrap();
    let mut plain = Builder::new(
        &common::config(plain_dir.path()),
        FileRecords::default(),
        Arc::default(),
    );
    plain.set(file::parse(&members_json(MEMBERS, 0), NETWORK.parse().unwrap()).unwrap());
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let started = Instant::now();
        drop(plain.build());
        without.push(started.elapsed().as_millis());
        let started = Instant::now();
        drop(builder.build());
        with.push(started.elapsed().as_millis());
    }
    with.sort_unstable();
    without.sort_unstable();
    println!(
        "zone build (median of 3): {} ms without services, {} ms with them",
        without[1], with[1]
    );
    let built = builder.build();
    let views = Views::new();
    views.publish(&built);
    let checks: Vec<CheckKey> = views.services.checks();
    let statuses = views.services.statuses();
    let in_services: usize = statuses.iter().map(|s| s.up.len()).sum();
    println!(
        "{MEMBERS} members, {} services, {in_services} members in them, {} checks",
        statuses.len(),
        checks.len()
    );
    // Every check passes once: all known up.
    views
        .services
        .take_results(checks.iter().map(|k| (*k, true)).collect());
    // The service each checked address is in: an A query for its name.
    let owner_of: std::collections::HashMap<std::net::IpAddr, Vec<u8>> = (views.services.records())
        .into_iter()
        .flat_map(|r| {
            let q = wire_query(&r.owner);
            (r.sets.into_iter())
                .filter(|(t, _)| *t == 1)
                .flat_map(|(_, rdatas)| rdatas)
                .map(move |rd| {
                    let ip = std::net::Ipv4Addr::new(rd[0], rd[1], rd[2], rd[3]);
                    (std::net::IpAddr::V4(ip), q.clone())
                })
        })
        .collect();
    // The members' IPv4 checks are flipped (their A records are what the answers are
    // checked for).
    let flippable: Vec<CheckKey> = checks.iter().copied().filter(|k| k.ip.is_ipv4()).collect();
    // Half the queries ask service names, half member names.
    let queries: Vec<Vec<u8>> = (0..100_000)
        .map(|i| {
            if i % 2 == 0 {
                query(i as u16, &format!("svc{}.backhaul", 10 + i % SERVICES), 1)
            } else {
                query(
                    i as u16,
                    &format!("host{}.backhaul", (i * 7919) % MEMBERS),
                    1,
                )
            }
        })
        .collect();
    let policy = Policy {
        allowed: true,
        ..Policy::default()
    };
    for (phase, flipping) in [("no flips", false), ("a flip every 1 ms", true)] {
        let stop = AtomicBool::new(false);
        let (took, flips) = std::thread::scope(|s| {
            let answering = s.spawn(|| answer_until(&views, &queries, &stop));
            // Stops the answering thread however this one ends (a failed check included).
            struct StopOnDrop<'a>(&'a AtomicBool);
            impl Drop for StopOnDrop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
            let stopping = StopOnDrop(&stop);
            let mut flips: Vec<(Duration, Duration)> = Vec::new();
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut n = 0usize;
            let mut out = Vec::new();
            while Instant::now() < end {
                if flipping {
                    // Down (fall = 2 failures), then up again (rise = 2) on the next turn.
                    let key = flippable[(n / 2 * 37) % flippable.len()];
                    let ok = n % 2 == 1;
                    views.services.take_results(vec![(key, ok)]);
                    let (cpu, wall) = (thread_cpu(), Instant::now());
                    assert!(views.services.take_results(vec![(key, ok)]), "a flip");
                    flips.push((thread_cpu() - cpu, wall.elapsed()));
                    // The answer has changed when the call returns.
                    let zone = views.private.load();
                    respond(&zone, &owner_of[&key.ip], Transport::Udp, policy, &mut out);
                    let listed = out.windows(4).any(|w| w == ip_octets(&key));
                    assert_eq!(listed, ok, "the answer follows the flip");
                    n += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            drop(stopping);
            (answering.join().unwrap(), flips)
        });
        report(phase, took);
        if !flips.is_empty() {
            let mut cpu: Vec<u64> = flips.iter().map(|f| f.0.as_micros() as u64).collect();
            let mut wall: Vec<u64> = flips.iter().map(|f| f.1.as_micros() as u64).collect();
            cpu.sort_unstable();
            wall.sort_unstable();
            println!(
                "{} flips: CPU per flip p50 {} us, p99 {} us; flip to answer (results in -> new table served) p50 {} us, p99 {} us",
                flips.len(),
                percentile(&cpu, 0.5),
                percentile(&cpu, 0.99),
                percentile(&wall, 0.5),
                percentile(&wall, 0.99)
            );
        }
    }
}

fn ip_octets(key: &CheckKey) -> Vec<u8> {
    match key.ip {
        std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
        std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// An A query for a name in wire form.
fn wire_query(owner: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(owner);
    m.extend_from_slice(&[0, 1, 0, 1]);
    m
}
