//! Query counters by view, type and rcode, and the answer latency histogram: fixed arrays of
//! atomics written on the query path (no lock, no map lookup), turned into metric families
//! only when scraped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

use crate::view::View;

/// Query types counted by name; everything else is `other`.
const QTYPES: [(u16, &str); 13] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (65, "HTTPS"),
    (252, "AXFR"),
    (255, "ANY"),
    (0, "other"),
];
/// Response codes counted by name; everything else is `other`.
const RCODES: [&str; 13] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other", "BADVERS",
    "NOTAUTH", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTZONE",
];
const VIEWS: [&str; 2] = ["backhaul", "public"];
/// Upper bounds of the latency buckets, in microseconds.
const LATENCY_BUCKETS_US: [u64; 14] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 250_000, 1_000_000, 3_000_000,
];

/// Query counters by view, type and rcode, and the answer latency histogram.
#[derive(Debug)]
pub(super) struct QueryStats {
    counts: Vec<AtomicU64>,
    /// One count per bucket (not cumulative) plus the overflow bucket.
    latency: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    latency_sum_ns: AtomicU64,
}

/// Where the counter of queries of `qtype` answered with `rcode` in view number `view` sits.
fn series(view: usize, qtype: u16, rcode: u16) -> usize {
    (view * QTYPES.len() + qtype_index(qtype)) * RCODES.len() + rcode_index(rcode)
}

fn qtype_index(qtype: u16) -> usize {
    QTYPES
        .iter()
        .position(|(t, _)| *t == qtype)
        .unwrap_or(QTYPES.len() - 1)
}

/// The name a response code is counted and logged under.
pub fn rcode_name(rcode: u16) -> &'static str {
    RCODES[rcode_index(rcode)]
}

fn rcode_index(rcode: u16) -> usize {
    match rcode {
        0..=5 => usize::from(rcode),
        16 => 7,
        9 => 8,
        6..=8 => usize::from(rcode) + 3,
        10 => 12,
        _ => 6,
    }
}

impl QueryStats {
    pub(super) fn new() -> QueryStats {
        QueryStats {
            counts: (0..VIEWS.len() * QTYPES.len() * RCODES.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            latency: Default::default(),
            latency_sum_ns: AtomicU64::new(0),
        }
    }

    pub(super) fn record(&self, view: View, qtype: u16, rcode: u16, took: Duration) {
        self.record_batch(view, took, &[(qtype, rcode)]);
    }

    /// Queries answered together (a UDP batch, sent with one system call): each counted by
    /// type and rcode, their latency, the same for all, added once.
    pub(super) fn record_batch(&self, view: View, took: Duration, answered: &[(u16, u16)]) {
        let v = match view {
            View::Backhaul => 0,
            View::Public => 1,
        };
        // Summed here first: a batch holds few distinct series, and each atomic add is a
        // locked instruction, as costly as a dozen plain ones.
        const SUMS: usize = 8;
        let mut sums = [(0usize, 0u64); SUMS];
        let mut distinct = 0;
        for &(qtype, rcode) in answered {
            let i = series(v, qtype, rcode);
            match sums[..distinct].iter_mut().find(|(at, _)| *at == i) {
                Some((_, n)) => *n += 1,
                None if distinct < SUMS => {
                    sums[distinct] = (i, 1);
                    distinct += 1;
                }
                None => {
                    self.counts[i].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        for &(i, n) in &sums[..distinct] {
            self.counts[i].fetch_add(n, Ordering::Relaxed);
        }
        let n = answered.len() as u64;
        let us = took.as_micros() as u64;
        let b = LATENCY_BUCKETS_US
            .iter()
            .position(|le| us <= *le)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.latency[b].fetch_add(n, Ordering::Relaxed);
        self.latency_sum_ns
            .fetch_add(took.as_nanos() as u64 * n, Ordering::Relaxed);
    }
}

impl Collector for QueryStats {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let probe = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "queries",
            "DNS queries answered, by view, query type and response code",
            None,
            probe.metric_type(),
        )?;
        for (v, view) in VIEWS.iter().enumerate() {
            for (t, (_, qtype)) in QTYPES.iter().enumerate() {
                for (r, rcode) in RCODES.iter().enumerate() {
                    let n = self.counts[(v * QTYPES.len() + t) * RCODES.len() + r]
                        .load(Ordering::Relaxed);
                    if n == 0 {
                        continue;
                    }
                    let labels = [("view", *view), ("type", *qtype), ("rcode", *rcode)];
                    ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        // Per-bucket counts: the encoder makes them cumulative.
        let mut total = 0;
        let mut buckets = Vec::with_capacity(self.latency.len());
        for (i, count) in self.latency.iter().enumerate() {
            let n = count.load(Ordering::Relaxed);
            total += n;
            let le = LATENCY_BUCKETS_US
                .get(i)
                .map_or(f64::INFINITY, |us| *us as f64 / 1e6);
            buckets.push((le, n));
        }
        let sum = self.latency_sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let mut histogram = encoder.encode_descriptor(
            "answer_latency_seconds",
            "Time from receiving a query to its answer, ready to send",
            None,
            MetricType::Histogram,
        )?;
        histogram
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, total, &buckets, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_counts_every_query_however_many_series_it_holds() {
        let stats = QueryStats::new();
        // Twelve distinct series (more than are summed before adding), some repeated.
        let mut batch = Vec::new();
        for (k, qtype) in [1u16, 28, 15, 12, 16, 33].iter().enumerate() {
            for rcode in [0u16, 3] {
                for _ in 0..=k {
                    batch.push((*qtype, rcode));
                }
            }
        }
        stats.record_batch(View::Backhaul, Duration::from_micros(20), &batch);
        stats.record_batch(View::Public, Duration::from_micros(20), &batch[..3]);
        let count =
            |view, qtype, rcode| stats.counts[series(view, qtype, rcode)].load(Ordering::Relaxed);
        for (k, qtype) in [1u16, 28, 15, 12, 16, 33].iter().enumerate() {
            assert_eq!(count(0, *qtype, 0), k as u64 + 1, "type {qtype}");
            assert_eq!(count(0, *qtype, 3), k as u64 + 1, "type {qtype} NXDOMAIN");
        }
        assert_eq!(count(1, 1, 0), 1);
        assert_eq!(count(1, 1, 3), 1);
        assert_eq!(count(1, 28, 0), 1);
        let total: u64 = stats.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        assert_eq!(total, batch.len() as u64 + 3);
        let latency: u64 = stats
            .latency
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        assert_eq!(latency, batch.len() as u64 + 3);
    }
}
