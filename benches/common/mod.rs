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
    member_list(n, salt, 0)
}

/// [`members_json`] with member `i` tagged `env = v(i % values)` (tag id 2000, 1-based
/// values), in a network whose rules declare the tag and its values.
pub fn tagged_members_json(n: usize, values: usize) -> Vec<u8> {
    member_list(n, 0, values)
}

fn member_list(n: usize, salt: usize, tag_values: usize) -> Vec<u8> {
    let members: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let ip = i + 1 + salt;
            let mut m = serde_json::json!({
                "nodeId": format!("{:010x}", 0x1000000000u64 + i as u64),
                "name": format!("host{i}"),
                "networkId": NETWORK,
                "config": {
                    "authorized": true,
                    "creationTime": 1_600_000_000_000u64 + i as u64,
                    "ipAssignments": [format!("10.{}.{}.{}", 128 + (ip >> 16), (ip >> 8) & 0xff, ip & 0xff)],
                    "noAutoAssignIps": false,
                },
            });
            if tag_values > 0 {
                m["config"]["tags"] = serde_json::json!([[2000, 1 + i % tag_values]]);
            }
            m
        })
        .collect();
    let mut network = serde_json::json!({"id": NETWORK, "config": {
        "routes": [{"target": "10.128.0.0/9", "via": null}],
        "v6AssignMode": {"6plane": false, "rfc4193": true, "zt": false}}});
    if tag_values > 0 {
        let enums: serde_json::Map<String, serde_json::Value> = (0..tag_values)
            .map(|v| (format!("v{v}"), (v + 1).into()))
            .collect();
        network["tagsByName"] =
            serde_json::json!({"env": {"id": 2000, "default": 0, "enums": enums, "flags": {}}});
    }
    serde_json::to_vec(&serde_json::json!({"network": network, "members": members})).unwrap()
}

/// A query message as dnsperf sends it (no EDNS, RD clear).
pub fn query(id: u16, name: &str, rtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(12 + name.len() + 6);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&rtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

/// xorshift64*: the same pseudo-random names every run, without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// The middle sample (the upper one of an even count).
pub fn median<T: PartialOrd>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.swap_remove(v.len() / 2)
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
