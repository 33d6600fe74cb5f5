//! One network's sync loop: fetch on the interval, back off on failure, wake at once on a
//! trigger (webhook, members file), hand each complete snapshot to the builder, and keep the
//! network's DNS settings in Central when `push_dns` is on.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, watch, Notify};

use super::Update;
use crate::config;
use crate::ids::NetworkId;
use crate::metrics::Telemetry;
use crate::zerotier::models::DnsSettings;
use crate::zerotier::{self, api, central, controller, file, FetchError, NetworkSnapshot, Source};

/// Longest wait between attempts while a network keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Builds every network's source from its configuration; networks on the same Central URL
/// share one pacer.
pub fn sources(networks: &[config::Network]) -> Result<Vec<Source>, (NetworkId, FetchError)> {
    let mut pacers: HashMap<String, Arc<api::Pacer>> = HashMap::new();
    networks
        .iter()
        .map(|net| {
            let source = match &net.source {
                config::Source::Central {
                    api_url,
                    token,
                    timeout,
                } => {
                    let pacer = pacers
                        .entry(api_url.clone())
                        .or_insert_with(|| api::Pacer::new(zerotier::API_GAP))
                        .clone();
                    central::Client::new(api_url, token.clone(), net.id, *timeout, pacer)
                        .map(Source::Central)
                }
                config::Source::Controller {
                    api_url,
                    token,
                    timeout,
                } => controller::ControllerClient::new(api_url, token.clone(), net.id, *timeout)
                    .map(Source::Controller),
                config::Source::File { members_file } => Ok(Source::File(file::MembersFile::new(
                    members_file.clone(),
                    net.id,
                ))),
            };
            source.map_err(|e| (net.id, e))
        })
        .collect()
}

/// One network's sync loop.
pub(super) struct Poller {
    pub(super) telemetry: Arc<Telemetry>,
    pub(super) generation: u64,
    pub(super) net: config::Network,
    pub(super) source: Source,
    pub(super) tx: mpsc::Sender<Update>,
    /// Notified to sync now instead of at the next interval (webhooks).
    pub(super) trigger: Arc<Notify>,
    /// The addresses this server answers on, for `push_dns`.
    pub(super) served: watch::Receiver<Vec<IpAddr>>,
}

impl Poller {
    /// Fetches forever: on the interval when healthy, backing off when not, at once when
    /// triggered (except while the API asked us to wait).
    pub(super) async fn run(self) {
        let mut failures: u32 = 0;
        let mut push_warned = false;
        loop {
            let mut rate_limited = false;
            let wait = match self.source.fetch().await {
                Ok(snapshot) => {
                    self.telemetry.sync_ok(self.net.id, snapshot.members.len());
                    if failures > 0 {
                        tracing::info!(network = %self.net.id, after_failures = failures, "sync recovered");
                    }
                    failures = 0;
                    let wanted = self.net.push_dns.then(|| self.wanted_dns(&snapshot));
                    if self
                        .tx
                        .send(Update::Snapshot(self.generation, snapshot))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    if let Some(wanted) = wanted {
                        self.push_dns(wanted, &mut push_warned).await;
                    }
                    self.net.poll_interval
                }
                Err(e) => {
                    self.telemetry
                        .sync_failed(self.net.id, e.kind(), e.to_string());
                    failures += 1;
                    rate_limited = matches!(e, FetchError::RateLimited { .. });
                    let wait = retry_delay(self.net.poll_interval, failures, &e);
                    tracing::warn!(network = %self.net.id, reason = e.kind(), retry_in = ?wait,
                        "sync failed, still serving the last good zone: {e}");
                    wait
                }
            };
            if rate_limited {
                // The API asked us to wait: a webhook does not override that.
                tokio::time::sleep(wait).await;
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.trigger.notified() => {}
                }
            }
        }
    }

    /// `{domain, servers}` for ZeroTier clients: the addresses we answer on that belong to this
    /// network (inside its managed routes or its RFC4193 prefix), never loopback or public ones.
    fn wanted_dns(&self, snapshot: &NetworkSnapshot) -> Option<DnsSettings> {
        let mut nets = snapshot.routes.clone();
        if snapshot.rfc4193 {
            nets.push(zerotier::addresses::rfc4193_prefix(snapshot.id).into());
        }
        let servers: Vec<String> = self
            .served
            .borrow()
            .iter()
            .filter(|ip| nets.iter().any(|n| n.contains(*ip)))
            .map(|ip| ip.to_string())
            .collect();
        (!servers.is_empty()).then(|| DnsSettings {
            domain: self.net.domain.to_ascii().trim_end_matches('.').to_owned(),
            servers,
        })
    }

    async fn push_dns(&self, wanted: Option<DnsSettings>, warned: &mut bool) {
        let Source::Central(client) = &self.source else {
            return;
        };
        let Some(wanted) = wanted else {
            if !*warned {
                *warned = true;
                tracing::warn!(network = %self.net.id,
                    "push_dns: none of the addresses this server answers on is inside the network's routes; not pushing");
            }
            return;
        };
        *warned = false;
        match client.push_dns(&wanted).await {
            Ok(true) => tracing::info!(network = %self.net.id, domain = %wanted.domain,
                servers = ?wanted.servers, "pushed DNS settings to the network"),
            Ok(false) => {}
            Err(e) => tracing::warn!(network = %self.net.id, reason = e.kind(),
                "push_dns failed, will retry after the next sync: {e}"),
        }
    }
}

/// Exponential backoff from the poll interval, capped, with ±10% jitter so that several
/// servers (or networks) do not retry in step; a rate-limit hint is always respected.
fn retry_delay(interval: Duration, failures: u32, error: &FetchError) -> Duration {
    let exp = interval.saturating_mul(1 << failures.saturating_sub(1).min(16));
    let capped = exp.min(MAX_BACKOFF.max(interval));
    let jitter = rand::rng().random_range(0.9..1.1);
    let wait = capped.mul_f64(jitter);
    match error {
        FetchError::RateLimited { retry_after } => wait.max(*retry_after),
        _ => wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_honours_rate_limits() {
        let other = FetchError::Status {
            url: String::new(),
            status: 503,
        };
        let i = Duration::from_secs(10);
        let d1 = retry_delay(i, 1, &other);
        assert!(d1 >= Duration::from_secs(9) && d1 <= Duration::from_secs(11));
        let d3 = retry_delay(i, 3, &other);
        assert!(d3 >= Duration::from_secs(36) && d3 <= Duration::from_secs(44));
        let d20 = retry_delay(i, 20, &other);
        assert!(d20 <= Duration::from_secs(330));
        let limited = FetchError::RateLimited {
            retry_after: Duration::from_secs(60),
        };
        assert!(retry_delay(i, 1, &limited) >= Duration::from_secs(60));
    }
}
