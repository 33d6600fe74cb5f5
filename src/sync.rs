//! Where a sync happens: poll each network, rebuild the zone from complete fetches only, swap it.
//!
//! One poller task per network fetches on its interval (backing off on failure) and hands
//! whole snapshots to a single builder thread. The builder keeps the latest snapshot of every
//! network, rebuilds all zones when one changes, stamps serials, compiles the index and swaps
//! it in with one atomic store. A failed fetch sends nothing, so the last good zone keeps
//! answering; building off the async runtime keeps a large rebuild from delaying queries.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::collections::HashMap;

use rand::Rng;
use std::net::IpAddr;

use tokio::sync::{mpsc, watch, Notify};

use crate::config::{self, Config};
use crate::dns::{SharedZone, ZoneIndex};
use crate::snapshot;
use crate::zerotier::models::DnsSettings;
use crate::zerotier::{self, FetchError, NetworkId, NetworkSnapshot, Source};
use crate::zone::{self, SerialBook, Settings, Zones};

/// Longest wait between attempts while a network keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
const SERIALS_FILE: &str = "serials.json";

/// Rebuilds zones from the latest snapshot of every network.
pub struct Builder {
    networks: Vec<config::Network>,
    snapshots: Vec<Option<NetworkSnapshot>>,
    settings: Settings,
    book: SerialBook,
    state_dir: PathBuf,
    warned_state: bool,
    store: snapshot::Store,
}

impl Builder {
    pub fn new(config: &Config) -> Builder {
        Builder {
            networks: config.networks.clone(),
            snapshots: vec![None; config.networks.len()],
            settings: Settings::new(config),
            book: load_serials(&config.state_dir),
            state_dir: config.state_dir.clone(),
            warned_state: false,
            store: snapshot::Store::new(&config.state_dir),
        }
    }

    /// Starts every network from its last good snapshot, if one was saved: served at once,
    /// whether or not the API answers.
    pub fn load_snapshots(&mut self) {
        for (i, net) in self.networks.iter().enumerate() {
            if let Some(loaded) = self.store.load(net.id) {
                tracing::info!(network = %net.id, members = loaded.snapshot.members.len(),
                    age = %humantime::format_duration(Duration::from_secs(loaded.age.as_secs())),
                    "serving the last good snapshot until the first sync");
                self.snapshots[i] = Some(loaded.snapshot);
            } else {
                tracing::info!(network = %net.id, "no snapshot: names in this network get SERVFAIL until the first sync");
            }
        }
    }

    /// Records a successful sync's snapshot (and saves it); returns whether it changed.
    pub fn set(&mut self, index: usize, snapshot: NetworkSnapshot) -> bool {
        let changed = self.snapshots[index].as_ref() != Some(&snapshot);
        self.store.save(&snapshot, changed);
        if changed {
            self.snapshots[index] = Some(snapshot);
        }
        changed
    }

    /// Records the server's own addresses (the NS name's records); returns whether they changed.
    pub fn set_nameserver_addresses(&mut self, mut addresses: Vec<std::net::IpAddr>) -> bool {
        addresses.sort();
        if self.settings.nameserver_addresses == addresses {
            return false;
        }
        self.settings.nameserver_addresses = addresses;
        true
    }

    /// Builds every zone from what is held now, with serials stamped.
    pub fn build(&mut self) -> Zones {
        let inputs: Vec<zone::Input<'_>> = self
            .networks
            .iter()
            .zip(&self.snapshots)
            .map(|(network, snapshot)| zone::Input {
                network,
                snapshot: snapshot.as_ref(),
            })
            .collect();
        let mut zones = zone::build(&inputs, &self.settings);
        if self.book.stamp(&mut zones, unix_now(), &self.settings) {
            self.save_serials();
        }
        zones
    }

    fn save_serials(&mut self) {
        let result = serde_json::to_vec_pretty(&self.book)
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_atomically(&self.state_dir.join(SERIALS_FILE), &bytes));
        match result {
            Ok(()) => self.warned_state = false,
            // Serials still move forward in this process; only a restart could reuse one.
            Err(e) if !self.warned_state => {
                self.warned_state = true;
                tracing::warn!(state_dir = %self.state_dir.display(), error = %e,
                    "cannot save zone serials: make state_dir writable by this user");
            }
            Err(_) => {}
        }
    }
}

fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

fn load_serials(state_dir: &Path) -> SerialBook {
    let path = state_dir.join(SERIALS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(file = %path.display(), error = %e, "ignoring unreadable serials file");
            SerialBook::default()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => SerialBook::default(),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read serials file");
            SerialBook::default()
        }
    }
}

/// Temp file, fsync, rename: a crash leaves the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Compiles and publishes a zone; queries see the old one or this one, never a mix.
fn publish(zone: &SharedZone, zones: &Zones) {
    zone.store(Arc::new(ZoneIndex::compile(zones)));
}

/// What the builder is told.
enum Update {
    Snapshot(usize, NetworkSnapshot),
    /// The addresses this server answers on changed.
    Nameservers(Vec<std::net::IpAddr>),
}

/// Lets the rest of the server tell the builder about changes it sees, and wake a poller.
#[derive(Clone)]
pub struct SyncHandle {
    tx: mpsc::Sender<Update>,
    served: Arc<watch::Sender<Vec<IpAddr>>>,
    /// Notified to sync a network now instead of at its next interval (webhooks).
    pub triggers: HashMap<NetworkId, Arc<Notify>>,
}

impl SyncHandle {
    pub async fn nameserver_addresses(&self, addresses: Vec<IpAddr>) {
        self.served.send_replace(addresses.clone());
        let _ = self.tx.send(Update::Nameservers(addresses)).await;
    }
}

/// Builds the first zone (from snapshots, or empty and not yet complete), then starts the
/// pollers and the builder. `nameservers`: the addresses served right now.
pub fn start(
    config: &Config,
    zone: SharedZone,
    nameservers: Vec<IpAddr>,
) -> anyhow::Result<SyncHandle> {
    let mut builder = Builder::new(config);
    builder.load_snapshots();
    let served = Arc::new(watch::Sender::new(nameservers.clone()));
    builder.set_nameserver_addresses(nameservers);
    publish(&zone, &builder.build());

    let (tx, mut rx) = mpsc::channel::<Update>(16);
    let sources = zerotier::sources(&config.networks)
        .map_err(|(id, e)| anyhow::anyhow!("network {id}: {e}"))?;
    let mut triggers = HashMap::new();
    for (i, (net, source)) in config.networks.iter().zip(sources).enumerate() {
        let trigger = Arc::new(Notify::new());
        triggers.insert(net.id, trigger.clone());
        let poller = Poller {
            index: i,
            net: net.clone(),
            source,
            tx: tx.clone(),
            trigger,
            served: served.subscribe(),
        };
        tokio::spawn(poller.run());
    }
    let handle = SyncHandle {
        tx,
        served,
        triggers,
    };

    let notify_targets = config.transfer.notify.clone();
    let runtime = tokio::runtime::Handle::current();
    let mut serials: HashMap<String, u32> = HashMap::new();
    std::thread::Builder::new()
        .name("zone-builder".into())
        .spawn(move || {
            while let Some(update) = rx.blocking_recv() {
                let (cause, changed) = match update {
                    Update::Snapshot(i, snapshot) => {
                        let network = snapshot.id;
                        (format!("network {network}"), builder.set(i, snapshot))
                    }
                    Update::Nameservers(addresses) => (
                        "listen addresses".to_owned(),
                        builder.set_nameserver_addresses(addresses),
                    ),
                };
                if !changed {
                    tracing::debug!(cause, "sync: no change");
                    continue;
                }
                let started = std::time::Instant::now();
                let zones = builder.build();
                publish(&zone, &zones);
                // Tell secondaries about every complete zone whose serial moved.
                for z in zones.zones.iter().filter(|z| z.complete) {
                    let apex = z.apex.to_ascii();
                    if serials.insert(apex, z.serial) != Some(z.serial)
                        && !notify_targets.is_empty()
                    {
                        runtime.spawn(crate::dns::transfer::notify(
                            crate::dns::wire::name_wire(&z.apex),
                            notify_targets.clone(),
                        ));
                    }
                }
                let serial = zones.zones.iter().map(|z| z.serial).max().unwrap_or(0);
                tracing::info!(
                    cause,
                    names = zones.members.values().sum::<usize>(),
                    records = zones.record_count(),
                    conflicts = zones.conflicts.len(),
                    serial,
                    took_ms = started.elapsed().as_millis() as u64,
                    "zone updated"
                );
            }
        })?;
    Ok(handle)
}

/// One network's sync loop.
struct Poller {
    index: usize,
    net: config::Network,
    source: Source,
    tx: mpsc::Sender<Update>,
    /// Notified to sync now instead of at the next interval (webhooks).
    trigger: Arc<Notify>,
    /// The addresses this server answers on, for `push_dns`.
    served: watch::Receiver<Vec<IpAddr>>,
}

impl Poller {
    /// Fetches forever: on the interval when healthy, backing off when not, at once when
    /// triggered (except while the API asked us to wait).
    async fn run(self) {
        let mut failures: u32 = 0;
        let mut push_warned = false;
        loop {
            let mut rate_limited = false;
            let wait = match self.source.fetch().await {
                Ok(snapshot) => {
                    if failures > 0 {
                        tracing::info!(network = %self.net.id, after_failures = failures, "sync recovered");
                    }
                    failures = 0;
                    let wanted = self.net.push_dns.then(|| self.wanted_dns(&snapshot));
                    if self
                        .tx
                        .send(Update::Snapshot(self.index, snapshot))
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

/// Fetches every network once (the `zone` command). Fails if any network fails.
pub async fn fetch_all(config: &Config) -> anyhow::Result<Builder> {
    let mut builder = Builder::new(config);
    let sources = zerotier::sources(&config.networks)
        .map_err(|(id, e)| anyhow::anyhow!("network {id}: {e}"))?;
    for (i, (net, source)) in config.networks.iter().zip(sources).enumerate() {
        let snapshot = source
            .fetch()
            .await
            .map_err(|e| anyhow::anyhow!("network {}: {e}", net.id))?;
        builder.set(i, snapshot);
    }
    Ok(builder)
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
