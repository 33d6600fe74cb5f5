//! Sync benchmark: how long a sync of N members takes, stage by stage: parse the member list
//! (JSON), record it (compare, save the snapshot file), build both views (names, records,
//! serials), compile the index and swap it in. Targets (issue 7): < 100 ms at 10,000 members,
//! < 1 s at 100,000.
//!
//!   cargo bench --bench sync            (median of 5 runs per size)

use std::sync::Arc;
use std::time::{Duration, Instant};

use backhaul_dns::config::Config;
use backhaul_dns::sync::{Builder, Views};
use backhaul_dns::zerotier::file;
use backhaul_dns::zone::FileRecords;

/// The allocator the binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NETWORK: &str = "8056c2e21c000001";
const RUNS: usize = 5;

/// The same shape bench/gen.py writes: named members with one IPv4 each, RFC4193 on.
fn members_json(n: usize, salt: usize) -> Vec<u8> {
    let members: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let ip = i + 1 + salt;
            serde_json::json!({
                "nodeId": format!("{:010x}", 0x1000000000u64 + i as u64),
                "name": format!("host{i}"),
                "networkId": NETWORK,
                "config": {
                    "authorized": true,
                    "creationTime": 1_600_000_000_000u64 + i as u64,
                    "ipAssignments": [format!("10.{}.{}.{}", 128 + (ip >> 16), (ip >> 8) & 0xff, ip & 0xff)],
                    "noAutoAssignIps": false,
                },
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "network": {"id": NETWORK, "config": {
            "routes": [{"target": "10.128.0.0/9", "via": null}],
            "v6AssignMode": {"6plane": false, "rfc4193": true, "zt": false}}},
        "members": members,
    }))
    .unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:8.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let _rt = tokio::runtime::Runtime::new().unwrap();
    for n in [10_000, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.json"), "[]").unwrap();
        let config = Config::parse(
            &dir.path().join("c.toml"),
            &format!(
                "state_dir = \"state\"\n[listen]\naddresses = [\"127.0.0.1\"]\n\
                 [[network]]\nid = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"m.json\"\n"
            ),
        )
        .unwrap();
        let mut builder = Builder::new(&config, FileRecords::default(), Arc::default());
        let views = Views::new();
        let mut stages: [Vec<Duration>; 5] = Default::default();
        for run in 0..RUNS {
            // A different address for every member each run: every record changes.
            let json = members_json(n, run);
            let t0 = Instant::now();
            let snapshot = file::parse(&json, NETWORK.parse().unwrap()).unwrap();
            let t1 = Instant::now();
            assert!(builder.set(snapshot));
            let t2 = Instant::now();
            let built = builder.build();
            let t3 = Instant::now();
            views.publish(&built);
            let t4 = Instant::now();
            for (s, d) in stages
                .iter_mut()
                .zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0])
            {
                s.push(d);
            }
        }
        let [parse, record, build, swap, total] = stages.map(median);
        println!(
            "{n:>7} members: parse {} | record+save {} | build {} | compile+swap {} | total {}",
            ms(parse),
            ms(record),
            ms(build),
            ms(swap),
            ms(total)
        );
    }
}
