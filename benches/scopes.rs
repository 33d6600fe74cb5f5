//! Scopes benchmark (issue 29): 100,000 members tagged over 20 values of `env`, 20 scopes
//! (each a tag's members, hiding the next tag's members and a name glob). A client in the
//! first scope asks for random member names (one in 20 hidden from it, answered NXDOMAIN) and
//! for missing names, through the request path; the same queries against the same members
//! without scopes, the two taking turns. Prints both, their ratio, and the zone build time
//! scopes add.
//!
//!   cargo bench --bench scopes        (SCOPES_ROUNDS, default 9)

#![allow(clippy::unwrap_used)] // a benchmark: a failure should stop it loudly

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use backhaul_dns::config::Config;
use backhaul_dns::dns::answer::Transport;
use backhaul_dns::dns::context::Context;
use backhaul_dns::dns::index::ZoneIndex;
use backhaul_dns::dns::request::{self, Action};
use backhaul_dns::dns::rules::{Rules, Surroundings};
use backhaul_dns::records::FileRecords;
use backhaul_dns::sync::builder::Builder;
use backhaul_dns::sync::Views;
use backhaul_dns::view::View;
use backhaul_dns::zerotier::file;

mod common;
use common::{median, query, tagged_members_json, Rng, NETWORK};

const MEMBERS: usize = 100_000;
const SCOPES: usize = 20;
const QUERIES: usize = 100_000;

fn scopes_tables() -> String {
    (0..SCOPES)
        .map(|k| {
            format!(
                "[[scope]]\nname = \"s{k}\"\nclients = [\"tag:env=v{k}\"]\n\
                 hide = [\"tag:env=v{}\", \"host99{k}*\"]\n",
                (k + 1) % SCOPES
            )
        })
        .collect()
}

/// The zone, the median build time (ms) over 3 builds, and the request context.
fn setup(config: &Config, bytes: &[u8]) -> (Arc<ZoneIndex>, f64, Context) {
    let mut builder = Builder::new(config, FileRecords::default(), Arc::default());
    builder.set(file::parse(bytes, NETWORK.parse().unwrap()).unwrap());
    let views = Views::new();
    let mut times = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let built = builder.build();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        views.publish(&built);
    }
    builder
        .snapshot_writer()
        .flush(std::time::Duration::from_secs(10));
    let nets = ["10.128.0.0/9".parse().unwrap()];
    let around = Surroundings {
        nets: &nets,
        delegations: &[],
    };
    let rules = Rules::from_config(config, View::Backhaul, around, None).unwrap();
    (
        views.private.load_full(),
        median(times),
        Context::standalone(rules),
    )
}

/// Nanoseconds per query through the request path, as a UDP thread runs it.
fn handle_all(ctx: &Context, zone: &ZoneIndex, client: IpAddr, queries: &[Vec<u8>]) -> f64 {
    let mut out = Vec::with_capacity(1232);
    let start = Instant::now();
    for batch in queries.chunks(32) {
        let rules = ctx.rules();
        let from = request::Client::new(&rules, zone, client);
        for q in batch {
            let action = request::handle(ctx, &rules, zone, q, &from, Transport::Udp, &mut out);
            assert_eq!(action, Action::Reply);
        }
    }
    start.elapsed().as_nanos() as f64 / queries.len() as f64
}

fn main() {
    backhaul_dns::memory::configure();
    let _rt = tokio::runtime::Runtime::new().unwrap();
    let rounds: usize = std::env::var("SCOPES_ROUNDS")
        .map_or(9, |r| r.parse().expect("SCOPES_ROUNDS: a number of rounds"));
    let bytes = tagged_members_json(MEMBERS, SCOPES);
    let dir = tempfile::tempdir().unwrap();
    let plain = common::config_with(dir.path(), "");
    let scoped = common::config_with(dir.path(), &scopes_tables());
    let (plain_zone, plain_ms, plain_ctx) = setup(&plain, &bytes);
    let (scoped_zone, scoped_ms, scoped_ctx) = setup(&scoped, &bytes);
    // host0 (10.128.0.1) is tagged v0: in scope s0, which hides v1 (one member in 20).
    let client: IpAddr = "10.128.0.1".parse().unwrap();
    assert_eq!(scoped_zone.scope_of(client), Some(0));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let existing: Vec<Vec<u8>> = (0..QUERIES)
        .map(|i| query(i as u16, &format!("host{}.backhaul", rng.below(MEMBERS)), 1))
        .collect();
    let missing: Vec<Vec<u8>> = (0..QUERIES)
        .map(|i| {
            query(
                i as u16,
                &format!("nx{}.backhaul", rng.below(1_000_000_000)),
                1,
            )
        })
        .collect();
    for (name, queries) in [("member names", &existing), ("missing names", &missing)] {
        let (mut without, mut with) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            without.push(handle_all(&plain_ctx, &plain_zone, client, queries));
            with.push(handle_all(&scoped_ctx, &scoped_zone, client, queries));
        }
        let (a, b) = (median(without), median(with));
        println!(
            "{name:>13}: {a:5.0} ns per query without scopes, {b:5.0} with {SCOPES} scopes \
             (rate with / without: {:.3})",
            a / b
        );
    }
    println!(
        "zone build at {MEMBERS} members: {plain_ms:.0} ms without scopes, {scoped_ms:.0} ms \
         with {SCOPES} scopes (+{:.0} ms)",
        scoped_ms - plain_ms
    );
}
