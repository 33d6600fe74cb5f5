//! Response rate limiting (RRL) over UDP, the technique of NSD, Knot and BIND: per client
//! prefix and kind of response, a token bucket; over the rate, some responses "slip" out
//! empty with TC=1 (a real client retries over TCP) and the rest are dropped, so spoofed
//! sources cannot turn this server into a reflector or a free resolver.
//!
//! Only REFUSED, NXDOMAIN and error responses and forwarded queries are limited, and by
//! default only for clients outside the listening subnets: answers from our zones to our own
//! clients never take the lock below.

use crate::lock::lock;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use ipnet::IpNet;

use crate::config::RateLimit;

/// What a limited response is, for counting them apart: a flood of NXDOMAIN does not use up
/// a client's forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// REFUSED, FORMERR, NOTIMP and other errors.
    Error,
    NxDomain,
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

/// Buckets kept at most; beyond this the oldest idle ones go (a flood from many prefixes
/// must not grow the table without bound).
const MAX_BUCKETS: usize = 100_000;

struct Bucket {
    tokens: f64,
    last: Instant,
    /// Limited responses so far, for the slip rhythm.
    limited: u32,
}

pub struct Limiter {
    config: RateLimit,
    buckets: Mutex<HashMap<(IpNet, Kind), Bucket>>,
}

impl Limiter {
    pub fn new(config: RateLimit) -> Limiter {
        Limiter {
            config,
            buckets: Mutex::default(),
        }
    }

    pub fn config(&self) -> RateLimit {
        self.config
    }

    /// The verdict for one `kind` response to `client`, at `now`.
    pub fn check(&self, client: IpAddr, kind: Kind, now: Instant) -> Verdict {
        let rate = self.config.responses_per_second;
        if rate == 0 {
            return Verdict::Send;
        }
        let prefix = match client {
            IpAddr::V4(_) => self.config.ipv4_prefix,
            IpAddr::V6(_) => self.config.ipv6_prefix,
        };
        let key = (
            IpNet::new(client, prefix).map_or(IpNet::from(client), |n| n.trunc()),
            kind,
        );
        let mut buckets = lock(&self.buckets);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&key) {
            // Full buckets are idle ones: a second without traffic refills any bucket.
            buckets.retain(|_, b| now.duration_since(b.last).as_secs_f64() < 1.0);
            if buckets.len() >= MAX_BUCKETS {
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
                .entry(l.check(client, Kind::NxDomain, at))
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
            l.check("198.51.100.1".parse().unwrap(), Kind::NxDomain, end),
            Verdict::Send
        );
        assert_eq!(l.check(flood, Kind::Forward, end), Verdict::Send);
        // After a quiet second, the bucket is full again.
        let later = end + Duration::from_secs(2);
        assert_eq!(l.check(flood, Kind::NxDomain, later), Verdict::Send);
    }

    #[test]
    fn off_and_no_slip() {
        let off = limiter(0, 2);
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(
                off.check("192.0.2.1".parse().unwrap(), Kind::Error, now),
                Verdict::Send
            );
        }
        let no_slip = limiter(1, 0);
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(no_slip.check(ip, Kind::Error, now), Verdict::Send);
        for _ in 0..10 {
            assert_eq!(no_slip.check(ip, Kind::Error, now), Verdict::Drop);
        }
    }
}
