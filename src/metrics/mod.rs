//! What the server counts and knows about itself: query counters and latency (lock-free, on
//! the query path), sync, zone and reload state, and readiness. Exposed by [`crate::http`] in
//! the Prometheus text format, encoded by `prometheus-client`.
//!
//! Queries are counted in fixed arrays of atomics (a few nanoseconds each, no lock, no map
//! lookup) and turned into metric families only when scraped; everything else changes a few
//! times a minute and lives in `prometheus-client` families directly.

use crate::lock::lock;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::clock;
use crate::ids::NetworkId;
use crate::view::View;

mod queries;

pub use queries::rcode_name;
use queries::QueryStats;

type NetworkLabel = [(&'static str, String); 1];
type FailureLabels = [(&'static str, String); 2];
type ZoneLabels = [(&'static str, String); 2];
type ServiceLabel = [(&'static str, String); 1];
type ServiceStateLabels = [(&'static str, String); 2];
type TransferLabels = [(&'static str, &'static str); 1];
type ErrorLabel = [(&'static str, &'static str); 1];
type ZoneLabel = [(&'static str, String); 1];

/// One network as readiness sees it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct NetworkStatus {
    pub id: String,
    /// A zone is served for it: synced, or loaded from a snapshot.
    pub ready: bool,
    /// "sync", "snapshot" or "none".
    pub data: &'static str,
    /// Where members come from: "central", "controller" or "file".
    pub source: &'static str,
    /// Unix time of the last good snapshot in `state_dir` (written after each changed sync).
    pub snapshot_saved: Option<u64>,
    /// Unix time of the last successful sync by this process.
    pub last_sync: Option<u64>,
    pub members: usize,
    pub last_error: Option<String>,
    /// Its data is older than `[http] ready_max_age` (the server is then not ready).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

/// One service as operators see it (`/readyz`, `/metrics`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceStatus {
    pub name: String,
    pub check: &'static str,
    /// Members' names, in service order.
    pub up: Vec<String>,
    pub down: Vec<String>,
    /// No member is up: the name answers with every member (`first`: the first) anyway.
    pub fail_open: bool,
    /// Problems with the service's definition (a tag no network declares...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Everything the server reports about itself.
#[derive(Debug)]
pub struct Telemetry {
    registry: Registry,
    queries: std::sync::Arc<QueryStats>,
    forwarded: Counter,
    upstream_failures: Counter,
    rate_limited_dropped: Counter,
    rate_limited_slipped: Counter,
    syncs: Family<NetworkLabel, Counter>,
    sync_failures: Family<FailureLabels, Counter>,
    members: Family<NetworkLabel, Gauge>,
    records: Family<NetworkLabel, Gauge>,
    conflicts: Family<NetworkLabel, Gauge>,
    serials: Family<ZoneLabels, Gauge>,
    reloads: Counter,
    rejected_reloads: Counter,
    dnstap_sent: Counter,
    dnstap_dropped: Counter,
    ready: Gauge,
    service_members: Family<ServiceStateLabels, Gauge>,
    service_fail_open: Family<ServiceLabel, Gauge>,
    service_check_failures: Family<ServiceLabel, Counter>,
    service_flips: Family<ServiceLabel, Counter>,
    transfers: Family<TransferLabels, Counter>,
    transfer_bytes: Family<TransferLabels, Counter>,
    tsig_failures: Family<ErrorLabel, Counter>,
    journal_changes: Family<ZoneLabel, Gauge>,
    journal_bytes: Family<ZoneLabel, Gauge>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    listening: Vec<IpAddr>,
    networks: BTreeMap<NetworkId, NetworkStatus>,
    services: BTreeMap<String, ServiceStatus>,
    followed: Vec<FollowedStatus>,
    ready_max_age: Option<Duration>,
}

/// One zone a follower (`[follow]`) serves, as readiness sees it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FollowedStatus {
    pub zone: String,
    pub primary: String,
    /// The primary's serial held; `None` before the first transfer.
    pub serial: Option<u32>,
    /// Unix time the primary last vouched for the zone (a transfer, or "nothing newer").
    pub confirmed: Option<u64>,
    /// Past its SOA expire without the primary: answered SERVFAIL.
    pub expired: bool,
    pub last_error: Option<String>,
    /// Older than `[http] ready_max_age`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let mut registry = Registry::with_prefix("backhaul_dns");
        let queries = std::sync::Arc::new(QueryStats::new());
        registry.register_collector(Box::new(queries.clone()));
        let t = Telemetry {
            queries,
            forwarded: Counter::default(),
            upstream_failures: Counter::default(),
            rate_limited_dropped: Counter::default(),
            rate_limited_slipped: Counter::default(),
            syncs: Family::default(),
            sync_failures: Family::default(),
            members: Family::default(),
            records: Family::default(),
            conflicts: Family::default(),
            serials: Family::default(),
            reloads: Counter::default(),
            rejected_reloads: Counter::default(),
            dnstap_sent: Counter::default(),
            dnstap_dropped: Counter::default(),
            ready: Gauge::default(),
            service_members: Family::default(),
            service_fail_open: Family::default(),
            service_check_failures: Family::default(),
            service_flips: Family::default(),
            transfers: Family::default(),
            transfer_bytes: Family::default(),
            tsig_failures: Family::default(),
            journal_changes: Family::default(),
            journal_bytes: Family::default(),
            state: Mutex::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "forwarded_queries",
            "Queries resolved through the upstreams",
            t.forwarded.clone(),
        );
        r.register(
            "upstream_failures",
            "Forwarded queries answered SERVFAIL because no upstream answered",
            t.upstream_failures.clone(),
        );
        r.register(
            "rate_limited_dropped",
            "UDP responses and forwards dropped by response rate limiting",
            t.rate_limited_dropped.clone(),
        );
        r.register(
            "rate_limited_slipped",
            "UDP responses sent empty with TC=1 by response rate limiting",
            t.rate_limited_slipped.clone(),
        );
        r.register("syncs", "Successful member fetches", t.syncs.clone());
        r.register(
            "sync_failures",
            "Failed member fetches, by reason",
            t.sync_failures.clone(),
        );
        r.register("members", "Members with names", t.members.clone());
        r.register(
            "records",
            "Records derived from the network's members",
            t.records.clone(),
        );
        r.register(
            "name_conflicts",
            "Members that lost a name to another member",
            t.conflicts.clone(),
        );
        r.register("zone_serial", "SOA serial of each zone", t.serials.clone());
        r.register(
            "reloads",
            "Configuration reloads applied",
            t.reloads.clone(),
        );
        r.register(
            "rejected_reloads",
            "Configuration reloads rejected as invalid",
            t.rejected_reloads.clone(),
        );
        r.register(
            "dnstap_sent",
            "dnstap messages written to the reader",
            t.dnstap_sent.clone(),
        );
        r.register(
            "dnstap_dropped",
            "dnstap messages dropped (queue full, or no reader listening)",
            t.dnstap_dropped.clone(),
        );
        r.register(
            "ready",
            "1 when answering on an address with a zone for every network",
            t.ready.clone(),
        );
        r.register(
            "service_members",
            "Members of each service, up or down",
            t.service_members.clone(),
        );
        r.register(
            "service_fail_open",
            "1 while no member of the service is up and it answers with every member",
            t.service_fail_open.clone(),
        );
        r.register(
            "service_check_failures",
            "Health checks that failed, by service",
            t.service_check_failures.clone(),
        );
        r.register(
            "service_flips",
            "Members that went up or down, by service",
            t.service_flips.clone(),
        );
        r.register(
            "transfers",
            "Zone transfer requests answered, by what they got (axfr, ixfr, ixfr-whole-zone, soa-only, refused)",
            t.transfers.clone(),
        );
        r.register(
            "transfer_bytes",
            "Bytes of zone transfer replies, by what they were",
            t.transfer_bytes.clone(),
        );
        r.register(
            "tsig_failures",
            "Signed requests refused, by TSIG error (BADKEY, BADSIG, BADTIME, BADTRUNC)",
            t.tsig_failures.clone(),
        );
        r.register(
            "ixfr_journal_changes",
            "Changes held in each zone's IXFR journal",
            t.journal_changes.clone(),
        );
        r.register(
            "ixfr_journal_bytes",
            "Bytes held in each zone's IXFR journal",
            t.journal_bytes.clone(),
        );
        Telemetry { registry, ..t }
    }

    /// One transfer request answered: what it got and how many bytes.
    pub fn transfer(&self, kind: &'static str, bytes: usize) {
        self.transfers.get_or_create(&[("kind", kind)]).inc();
        (self.transfer_bytes.get_or_create(&[("kind", kind)])).inc_by(bytes as u64);
    }

    pub fn tsig_failure(&self, error: &'static str) {
        self.tsig_failures.get_or_create(&[("error", error)]).inc();
    }

    /// The IXFR journal of each zone now (zones not listed are dropped).
    pub fn journals(&self, zones: &[(String, usize, usize)]) {
        self.journal_changes.clear();
        self.journal_bytes.clear();
        for (zone, changes, bytes) in zones {
            let label = [("zone", zone.clone())];
            self.journal_changes
                .get_or_create(&label)
                .set(*changes as i64);
            self.journal_bytes.get_or_create(&label).set(*bytes as i64);
        }
    }

    /// One service as the live table now answers it (for /metrics and /readyz).
    pub fn service(&self, s: &ServiceStatus) {
        for (state, n) in [("up", s.up.len()), ("down", s.down.len())] {
            self.service_members
                .get_or_create(&[("service", s.name.clone()), ("state", state.to_owned())])
                .set(n as i64);
        }
        self.service_fail_open
            .get_or_create(&[("service", s.name.clone())])
            .set(i64::from(s.fail_open));
        let mut state = lock(&self.state);
        state.services.insert(s.name.clone(), s.clone());
    }

    /// The services configured now: the others are no longer reported.
    pub fn retain_services(&self, names: &[String]) {
        let mut state = lock(&self.state);
        let gone: Vec<String> = (state.services.keys())
            .filter(|n| !names.contains(n))
            .cloned()
            .collect();
        for name in gone {
            state.services.remove(&name);
            for st in ["up", "down"] {
                self.service_members
                    .remove(&[("service", name.clone()), ("state", st.to_owned())]);
            }
            self.service_fail_open.remove(&[("service", name.clone())]);
        }
    }

    pub fn service_check_failed(&self, service: &str) {
        self.service_check_failures
            .get_or_create(&[("service", service.to_owned())])
            .inc();
    }

    pub fn service_flip(&self, service: &str) {
        self.service_flips
            .get_or_create(&[("service", service.to_owned())])
            .inc();
    }

    /// One answered query (the hot path: a few relaxed atomic adds).
    pub fn query(&self, view: View, qtype: u16, rcode: u16, took: Duration) {
        self.queries.record(view, qtype, rcode, took);
    }

    /// Queries answered together, each `(qtype, rcode)`, all after `took`.
    pub fn queries(&self, view: View, took: Duration, answered: &[(u16, u16)]) {
        self.queries.record_batch(view, took, answered);
    }

    /// A response held back by rate limiting: sent truncated (`slipped`) or dropped.
    pub fn rate_limited(&self, slipped: bool) {
        if slipped {
            self.rate_limited_slipped.inc();
        } else {
            self.rate_limited_dropped.inc();
        }
    }

    pub fn forwarded(&self, upstream_ok: bool) {
        self.forwarded.inc();
        if !upstream_ok {
            self.upstream_failures.inc();
        }
    }

    /// dnstap messages written to the reader.
    pub fn dnstap_sent(&self, n: u64) {
        self.dnstap_sent.inc_by(n);
    }

    /// dnstap messages dropped: the queue was full, or no reader was there.
    pub fn dnstap_dropped(&self, n: u64) {
        self.dnstap_dropped.inc_by(n);
    }

    pub fn reload(&self, applied: bool) {
        if applied {
            self.reloads.inc();
        } else {
            self.rejected_reloads.inc();
        }
    }

    pub fn sync_ok(&self, network: NetworkId, members: usize) {
        self.syncs
            .get_or_create(&[("network", network.to_string())])
            .inc();
        let now = clock::unix_now();
        self.update(network, |s| {
            s.last_sync = Some(now);
            s.last_error = None;
            s.members = members;
        });
    }

    pub fn sync_failed(&self, network: NetworkId, reason: &'static str, message: String) {
        // The status first: whoever sees the counter move then also sees why.
        self.update(network, |s| s.last_error = Some(message));
        self.sync_failures
            .get_or_create(&[
                ("network", network.to_string()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    /// The networks configured now, with their source kinds (a reload may change them).
    pub fn set_networks(&self, networks: &[(NetworkId, &'static str)]) {
        let mut state = lock(&self.state);
        state
            .networks
            .retain(|id, _| networks.iter().any(|(n, _)| n == id));
        for (id, source) in networks {
            let status = state.networks.entry(*id).or_insert_with(|| NetworkStatus {
                id: id.to_string(),
                data: "none",
                ..NetworkStatus::default()
            });
            status.source = source;
        }
        drop(state);
        self.refresh_ready();
    }

    /// When the network's last good snapshot was written (or, at start-up, was found written).
    pub fn snapshot_saved(&self, network: NetworkId, unix_time: u64) {
        self.update(network, |s| s.snapshot_saved = Some(unix_time));
    }

    /// What the built zone holds for a network. `data`: "sync", "snapshot" or "none".
    pub fn network_zone(
        &self,
        network: NetworkId,
        data: &'static str,
        members: usize,
        records: usize,
        conflicts: usize,
    ) {
        let label = [("network", network.to_string())];
        self.members.get_or_create(&label).set(members as i64);
        self.records.get_or_create(&label).set(records as i64);
        self.conflicts.get_or_create(&label).set(conflicts as i64);
        self.update(network, |s| {
            s.data = data;
            s.ready = data != "none";
            s.members = members;
        });
    }

    /// Every zone's serial, per view; zones no longer served disappear.
    pub fn zone_serials(&self, serials: Vec<(&'static str, String, u32)>) {
        self.serials.clear();
        for (view, zone, serial) in serials {
            self.serials
                .get_or_create(&[("view", view.to_owned()), ("zone", zone)])
                .set(i64::from(serial));
        }
    }

    pub fn listening(&self, addresses: Vec<IpAddr>) {
        lock(&self.state).listening = addresses;
        self.refresh_ready();
    }

    fn update(&self, network: NetworkId, f: impl FnOnce(&mut NetworkStatus)) {
        let mut state = lock(&self.state);
        if let Some(s) = state.networks.get_mut(&network) {
            f(s);
        }
        drop(state);
        self.refresh_ready();
    }

    fn refresh_ready(&self) {
        let ready = self.readiness().ready;
        self.ready.set(i64::from(ready));
    }

    /// The zones a follower serves, as they are now.
    pub fn followed(&self, zones: Vec<FollowedStatus>) {
        lock(&self.state).followed = zones;
        self.refresh_ready();
    }

    /// `[http] ready_max_age`: data older than this makes the server not ready.
    pub fn set_ready_max_age(&self, max_age: Option<Duration>) {
        lock(&self.state).ready_max_age = max_age;
        self.refresh_ready();
    }

    /// Ready: answering on at least one address, and every network has a zone (fresh or
    /// from a snapshot) no older than `ready_max_age` when that is set (the age of the last
    /// successful sync, or of the snapshot served).
    pub fn readiness(&self) -> Readiness {
        let state = lock(&self.state);
        let now = clock::unix_now();
        let networks: Vec<NetworkStatus> = (state.networks.values())
            .map(|n| {
                let synced = n.last_sync.or(n.snapshot_saved);
                let stale = state.ready_max_age.is_some_and(|max| {
                    synced.is_none_or(|t| now.saturating_sub(t) > max.as_secs())
                });
                NetworkStatus { stale, ..n.clone() }
            })
            .collect();
        let followed: Vec<FollowedStatus> = (state.followed.iter())
            .map(|z| {
                let stale = state.ready_max_age.is_some_and(|max| {
                    (z.confirmed).is_none_or(|t| now.saturating_sub(t) > max.as_secs())
                });
                FollowedStatus { stale, ..z.clone() }
            })
            .collect();
        let zones_ready = followed
            .iter()
            .all(|z| z.serial.is_some() && !z.expired && !z.stale);
        Readiness {
            ready: !state.listening.is_empty()
                && networks.iter().all(|n| n.ready && !n.stale)
                && zones_ready,
            listening: state.listening.clone(),
            networks,
            services: state.services.values().cloned().collect(),
            followed,
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub fn encode(&self) -> String {
        // Readiness also changes with time alone (`ready_max_age`).
        self.refresh_ready();
        let mut out = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out
    }
}

impl Default for Telemetry {
    fn default() -> Telemetry {
        Telemetry::new()
    }
}

/// The body of `/readyz`.
#[derive(Debug, serde::Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub listening: Vec<IpAddr>,
    pub networks: Vec<NetworkStatus>,
    /// Each `[[service]]` with its up and down members.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceStatus>,
    /// A follower's zones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub followed: Vec<FollowedStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded_with_labels_and_a_histogram() {
        let t = Telemetry::new();
        t.query(View::Backhaul, 1, 0, Duration::from_micros(30));
        t.query(View::Backhaul, 1, 0, Duration::from_micros(30));
        t.query(View::Public, 999, 3, Duration::from_millis(2));
        let text = t.encode();
        assert!(
            text.contains(
                "backhaul_dns_queries_total{view=\"backhaul\",type=\"A\",rcode=\"NOERROR\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(
            "backhaul_dns_queries_total{view=\"public\",type=\"other\",rcode=\"NXDOMAIN\"} 1"
        ));
        assert!(
            text.contains("backhaul_dns_answer_latency_seconds_bucket{le=\"5e-05\"} 2"),
            "{text}"
        );
        assert!(text.contains("backhaul_dns_answer_latency_seconds_bucket{le=\"0.0025\"} 3"));
        assert!(text.contains("backhaul_dns_answer_latency_seconds_count 3"));
    }

    #[test]
    fn ready_needs_an_address_and_every_network() {
        let t = Telemetry::new();
        let a: NetworkId = "8056c2e21c000001".parse().unwrap();
        let b: NetworkId = "8056c2e21c000002".parse().unwrap();
        t.set_networks(&[(a, "file"), (b, "file")]);
        t.listening(vec!["127.0.0.1".parse().unwrap()]);
        assert!(!t.readiness().ready);
        t.network_zone(a, "sync", 2, 6, 0);
        assert!(!t.readiness().ready);
        t.network_zone(b, "snapshot", 1, 3, 0);
        assert!(t.readiness().ready);
        assert!(t.encode().contains("backhaul_dns_ready 1"));
        t.listening(vec![]);
        assert!(!t.readiness().ready);
    }
}
