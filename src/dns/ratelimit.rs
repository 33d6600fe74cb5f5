//! Response rate limiting (RRL) over UDP, the technique of NSD, Knot and BIND: every
//! response is counted in a token bucket per client prefix, response class and the name it is
//! about; over the rate, some responses "slip" out empty with TC=1 (a real client retries over
//! TCP, which is never limited) and the rest are dropped. Spoofed sources cannot turn this
//! server into a reflector (a TXT or ANY flood at one name), an NXDOMAIN cannon (random names
//! under one zone share the zone's bucket) or a free resolver, while other prefixes, and other
//! names for the same prefix, keep their own budget.
//!
//! By default only clients outside the listening subnets (and everyone on the public view)
//! are limited: answers to our own clients never reach the buckets (see
//! [`super::context::Context::rate_check`]).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use ipnet::IpNet;

use crate::config::RateLimit;
use crate::lock::lock;

/// The class of a response (BIND's and Knot's classes): each has its own budget, so a flood
/// of one kind does not use up the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Records in the answer section; counted per name and type asked.
    Answer,
    /// The name exists, the type does not; per name and type.
    NoData,
    /// The name does not exist; per zone (random names under one zone share it).
    NxDomain,
    /// A delegation; per delegated name.
    Referral,
    /// REFUSED, FORMERR, NOTIMP, NOTAUTH and other errors; per client prefix only.
    Error,
    /// A query handed to the upstreams.
    Forward,
}

/// What to do with one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Send,
    /// Send it empty with TC=1 instead.
    Slip,
    Drop,
}

/// Buckets kept at most; beyond this the oldest idle ones go (a flood from many prefixes or
/// names must not grow the table without bound).
const MAX_BUCKETS: usize = 200_000;
/// Buckets are split over this many locks, so that UDP threads do not wait on each other.
const SHARDS: usize = 16;

struct Bucket {
    tokens: f64,
    last: Instant,
    /// Limited responses so far, for the slip rhythm.
    limited: u32,
}

/// Which bucket a response is counted in.
type Key = (IpNet, Kind, u64);

pub struct Limiter {
    config: RateLimit,
    hasher: foldhash::fast::FixedState,
    shards: Vec<Mutex<HashMap<Key, Bucket>>>,
}

impl Limiter {
    pub fn new(config: RateLimit) -> Limiter {
        Limiter {
            config,
            hasher: foldhash::fast::FixedState::with_seed(rand::random()),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    pub fn config(&self) -> RateLimit {
        self.config
    }

    /// The name a response is about, as the limiter counts it (the imputed name with its
    /// type): a hash, so buckets hold no names.
    pub fn name_key(&self, name: &[u8], qtype: u16) -> u64 {
        self.hasher.hash_one((name, qtype))
    }

    /// The verdict for one `kind` response about `name` (from [`Limiter::name_key`], 0 for
    /// errors and forwards) to `client`, at `now`.
    pub fn check(&self, client: IpAddr, kind: Kind, name: u64, now: Instant) -> Verdict {
        let rate = self.config.responses_per_second;
        if rate == 0 {
            return Verdict::Send;
        }
        let client = client.to_canonical();
        let prefix = match client {
            IpAddr::V4(_) => self.config.ipv4_prefix,
            IpAddr::V6(_) => self.config.ipv6_prefix,
        };
        let net = IpNet::new(client, prefix).map_or(IpNet::from(client), |n| n.trunc());
        let key = (net, kind, name);
        let shard = self.hasher.hash_one(key) as usize % SHARDS;
        let mut buckets = lock(&self.shards[shard]);
        if buckets.len() >= MAX_BUCKETS / SHARDS && !buckets.contains_key(&key) {
            // Full buckets are idle ones: a second without traffic refills any bucket.
            buckets.retain(|_, b| now.duration_since(b.last).as_secs_f64() < 1.0);
            if buckets.len() >= MAX_BUCKETS / SHARDS {
                return Verdict::Drop;
            }
        }
        let rate = f64::from(rate);
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: rate,
            last: now,
            limited: 0,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(rate);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Verdict::Send;
        }
        b.limited = b.limited.wrapping_add(1);
        let slip = self.config.slip;
        if slip > 0 && b.limited % slip == 0 {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limiter(rate: u32, slip: u32) -> Limiter {
        Limiter::new(RateLimit {
            responses_per_second: rate,
            slip,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            inside: false,
        })
    }

    #[test]
    fn a_flood_is_cut_to_the_rate_with_slips_and_others_are_untouched() {
        let l = limiter(10, 2);
        let t0 = Instant::now();
        let flood: IpAddr = "192.0.2.7".parse().unwrap();
        let mut counts = HashMap::new();
        // 1,000 responses within one second from one /24 (two addresses of it).
        for i in 0..1000u32 {
            let client = if i % 2 == 0 {
                flood
            } else {
                "192.0.2.8".parse().unwrap()
            };
            let at = t0 + Duration::from_micros(u64::from(i) * 1000);
            *counts
                .entry(l.check(client, Kind::NxDomain, 0, at))
                .or_insert(0u32) += 1;
        }
        let sent = counts[&Verdict::Send];
        assert!((10..=21).contains(&sent), "{counts:?}"); // the burst, then 10/s
        let slipped = counts[&Verdict::Slip];
        assert!(
            slipped.abs_diff(counts[&Verdict::Drop]) <= 1,
            "every 2nd slips: {counts:?}"
        );
        // Another prefix, and another kind for the same prefix, have their own budget.
        let end = t0 + Duration::from_secs(1);
        assert_eq!(
            l.check("198.51.100.1".parse().unwrap(), Kind::NxDomain, 0, end),
            Verdict::Send
        );
        assert_eq!(l.check(flood, Kind::Forward, 0, end), Verdict::Send);
        // Another name for the same prefix and class has its own budget too.
        let other_name = l.name_key(b"\x05other\x00", 16);
        assert_eq!(
            l.check(flood, Kind::NxDomain, other_name, end),
            Verdict::Send
        );
        // After a quiet second, the bucket is full again.
        let later = end + Duration::from_secs(2);
        assert_eq!(l.check(flood, Kind::NxDomain, 0, later), Verdict::Send);
    }

    #[test]
    fn off_and_no_slip() {
        let off = limiter(0, 2);
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(
                off.check("192.0.2.1".parse().unwrap(), Kind::Error, 0, now),
                Verdict::Send
            );
        }
        let no_slip = limiter(1, 0);
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(no_slip.check(ip, Kind::Error, 0, now), Verdict::Send);
        for _ in 0..10 {
            assert_eq!(no_slip.check(ip, Kind::Error, 0, now), Verdict::Drop);
        }
    }
}
