//! What the benches share: the configuration and the member lists they sync (the shape
//! bench/gen.py writes).

// Each bench compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::path::Path;

use backhaul_dns::config::Config;

/// The network every bench syncs.
pub const NETWORK: &str = "8056c2e21c000001";

/// The same shape bench/gen.py writes: named members with one IPv4 each, RFC4193 on.
pub fn members_json(n: usize, salt: usize) -> Vec<u8> {
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

/// One file-source network in `dir` (its members file holds an empty list; benches hand
/// their member lists to the builder directly).
pub fn config(dir: &Path) -> Config {
    config_with(dir, "")
}

/// [`config`] with more tables (`[[service]]`...) after the network's.
pub fn config_with(dir: &Path, tables: &str) -> Config {
    std::fs::write(dir.join("m.json"), "[]").unwrap();
    Config::parse(
        &dir.join("c.toml"),
        &format!(
            "state_dir = \"state\"\n[listen]\naddresses = [\"127.0.0.1\"]\n\
             [[network]]\nid = \"{NETWORK}\"\nsource = \"file\"\nmembers_file = \"m.json\"\n{tables}"
        ),
    )
    .unwrap()
}
