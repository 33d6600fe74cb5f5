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

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use rand::Rng;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use crate::config::{self, Config};
use crate::dns::{SharedZone, ZoneIndex};
use crate::metrics::Telemetry;
use crate::records::{self, RecordsError};
use crate::snapshot;
use crate::zerotier::models::DnsSettings;
use crate::zerotier::{self, FetchError, NetworkId, NetworkSnapshot, Source};
use crate::zone::{self, FileRecords, SerialBook, Settings, Zones};

/// How long the builder waits for another sync before sweeping the memory freed by the last
/// one back to the system: once syncs pause, not between syncs in quick succession (webhooks,
/// a members file rewritten in bursts), whose next build would only take it again.
const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// Longest wait between attempts while a network keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
const SERIALS_FILE: &str = "serials.json";
/// The public view has zones of the same names: its serials are kept apart.
const PUBLIC_SERIALS_FILE: &str = "serials-public.json";

/// Rebuilds zones from the latest snapshot of every network and the records files.
pub struct Builder {
    networks: Vec<config::Network>,
    snapshots: HashMap<NetworkId, Arc<NetworkSnapshot>>,
    settings: Settings,
    files: FileRecords,
    /// The public view's addresses (its NS name's records), when it is configured.
    public_addresses: Vec<IpAddr>,
    book: SerialBook,
    public_book: SerialBook,
    state_dir: PathBuf,
    /// Serial books stamped since they were last written (private, public).
    unsaved: (bool, bool),
    warned_state: bool,
    store: snapshot::Store,
    writer: snapshot::Writer,
    /// Member names already reported as taken over by a records file (logged once each).
    overrides_seen: HashSet<zone::Override>,
    /// Networks synced by this process (the others, if held, come from a snapshot).
    fresh: HashSet<NetworkId>,
    telemetry: Arc<Telemetry>,
}

/// Both views, built together from the same data.
pub struct Built {
    pub private: Zones,
    pub public: Option<Zones>,
}

impl Builder {
    pub fn new(config: &Config, files: FileRecords, telemetry: Arc<Telemetry>) -> Builder {
        Builder {
            networks: config.networks.clone(),
            snapshots: HashMap::new(),
            settings: Settings::new(config),
            files,
            public_addresses: public_addresses(config),
            book: load_serials(&config.state_dir, SERIALS_FILE),
            public_book: load_serials(&config.state_dir, PUBLIC_SERIALS_FILE),
            state_dir: config.state_dir.clone(),
            unsaved: (false, false),
            warned_state: false,
            store: snapshot::Store::new(&config.state_dir),
            writer: snapshot::Writer::new(&config.state_dir),
            overrides_seen: HashSet::new(),
            fresh: HashSet::new(),
            telemetry,
        }
    }

    /// Starts every network from its last good snapshot, if one was saved: served at once,
    /// whether or not the API answers.
    pub fn load_snapshots(&mut self) {
        let ids: Vec<NetworkId> = self.networks.iter().map(|n| n.id).collect();
        self.load_snapshots_of(&ids);
    }

    fn load_snapshots_of(&mut self, ids: &[NetworkId]) {
        for id in ids {
            if self.snapshots.contains_key(id) {
                continue;
            }
            if let Some(loaded) = self.store.load(*id) {
                tracing::info!(network = %id, members = loaded.snapshot.members.len(),
                    age = %humantime::format_duration(Duration::from_secs(loaded.age.as_secs())),
                    "serving the last good snapshot until the first sync");
                self.snapshots.insert(*id, Arc::new(loaded.snapshot));
            } else {
                tracing::info!(network = %id, "no snapshot: names in this network get SERVFAIL until the first sync");
            }
        }
    }

    /// Records a successful sync's snapshot (the writer saves it); returns whether it changed.
    pub fn set(&mut self, snapshot: NetworkSnapshot) -> bool {
        if !self.networks.iter().any(|n| n.id == snapshot.id) {
            return false; // removed from the config while it was being fetched
        }
        let held = self.snapshots.get(&snapshot.id);
        let changed = held.is_none_or(|h| **h != snapshot);
        // The first sync after a snapshot changes where the data comes from, if not the data.
        let first = self.fresh.insert(snapshot.id);
        let snapshot = match held {
            Some(h) if !changed => h.clone(),
            _ => Arc::new(snapshot),
        };
        self.writer.save(&snapshot, changed);
        self.snapshots.insert(snapshot.id, snapshot);
        changed || first
    }

    /// The thread that saves snapshots (for waiting on it at shutdown).
    pub fn snapshot_writer(&self) -> snapshot::Writer {
        self.writer.clone()
    }

    /// Takes a reloaded configuration and records files; snapshots of networks still
    /// configured are kept, so nothing disappears while the pollers start again.
    pub fn reconfigure(&mut self, config: &Config, files: FileRecords) {
        let added: Vec<NetworkId> = (config.networks.iter())
            .filter(|n| !self.networks.iter().any(|o| o.id == n.id))
            .map(|n| n.id)
            .collect();
        self.networks = config.networks.clone();
        let ids: HashSet<NetworkId> = self.networks.iter().map(|n| n.id).collect();
        self.snapshots.retain(|id, _| ids.contains(id));
        self.fresh.retain(|id| ids.contains(id));
        self.load_snapshots_of(&added);
        let addresses = std::mem::take(&mut self.settings.nameserver_addresses);
        self.settings = Settings::new(config);
        self.settings.nameserver_addresses = addresses;
        self.files = files;
        self.public_addresses = public_addresses(config);
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

    /// Builds every zone of both views from what is held now, with serials stamped (written
    /// by [`Builder::save_serials`], once the zones are published).
    pub fn build(&mut self) -> Built {
        let inputs: Vec<zone::Input<'_>> = self
            .networks
            .iter()
            .map(|network| zone::Input {
                network,
                snapshot: self.snapshots.get(&network.id).map(Arc::as_ref),
            })
            .collect();
        let mut private = zone::build(&inputs, &self.settings, &self.files);
        let now = unix_now();
        self.unsaved.0 |= self.book.stamp(&mut private, now, &self.settings);
        for o in &private.overridden {
            if !self.overrides_seen.contains(o) {
                tracing::info!(name = %o.name, member = %o.member, network = %o.network,
                    "the records file defines this name: the member keeps only its zt- name");
            }
        }
        self.overrides_seen = private.overridden.iter().cloned().collect();
        let settings = Settings {
            nameserver_addresses: self.public_addresses.clone(),
            ..self.settings.clone()
        };
        let mut public = (self.files.public.as_ref()).map(|r| zone::build_public(r, &settings));
        if let Some(zones) = &mut public {
            self.unsaved.1 |= self.public_book.stamp(zones, now, &settings);
        }
        self.report(&private, public.as_ref());
        Built { private, public }
    }

    /// What the new zones hold, for /metrics and /readyz.
    fn report(&self, private: &Zones, public: Option<&Zones>) {
        for net in &self.networks {
            let data = match (
                self.snapshots.contains_key(&net.id),
                self.fresh.contains(&net.id),
            ) {
                (false, _) => "none",
                (true, true) => "sync",
                (true, false) => "snapshot",
            };
            let count = |m: &std::collections::BTreeMap<NetworkId, usize>| {
                m.get(&net.id).copied().unwrap_or(0)
            };
            let conflicts = private
                .conflicts
                .iter()
                .filter(|c| c.network == net.id)
                .count();
            self.telemetry.network_zone(
                net.id,
                data,
                count(&private.members),
                count(&private.records_by_network),
                conflicts,
            );
        }
        let views = std::iter::once(("backhaul", private)).chain(public.map(|p| ("public", p)));
        let serials = views
            .flat_map(|(view, zones)| {
                zones
                    .zones
                    .iter()
                    .map(move |z| (view, z.apex.to_ascii(), z.serial))
            })
            .collect();
        self.telemetry.zone_serials(serials);
    }

    /// Writes the serial books that changed since the last call. After the swap, not inside
    /// the build: a write with two fsyncs takes 2 ms on an idle disk and far longer on a busy
    /// one, and the new zone need not wait for it. A crash in between loses nothing that
    /// matters: the next build gives a changed zone the current time as its serial, later
    /// than any it served.
    pub fn save_serials(&mut self) {
        let (private, public) = std::mem::take(&mut self.unsaved);
        if private {
            self.save_book(SERIALS_FILE);
        }
        if public {
            self.save_book(PUBLIC_SERIALS_FILE);
        }
    }

    fn save_book(&mut self, file: &str) {
        let book = if file == SERIALS_FILE {
            &self.book
        } else {
            &self.public_book
        };
        let result = serde_json::to_vec_pretty(book)
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_atomically(&self.state_dir.join(file), &bytes));
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

fn public_addresses(config: &Config) -> Vec<IpAddr> {
    config
        .public
        .as_ref()
        .map(|p| p.addresses.clone())
        .unwrap_or_default()
}

/// Reads and checks the records files a configuration names. Any error rejects them all.
pub fn load_files(config: &Config) -> Result<FileRecords, RecordsError> {
    let domains: Vec<Name> = config.networks.iter().map(|n| n.domain.clone()).collect();
    let private = match &config.records_file {
        Some(path) => records::load(path, &config.domain, &domains, config.ttl)?,
        None => Vec::new(),
    };
    let public = match &config.public {
        Some(p) => Some(records::load(
            &p.zone_file,
            &config.domain,
            &[],
            config.ttl,
        )?),
        None => None,
    };
    Ok(FileRecords {
        private: private.into_iter().map(|r| r.record).collect(),
        public: public.map(|p| p.into_iter().map(|r| r.record).collect()),
    })
}

fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

fn load_serials(state_dir: &Path, file: &str) -> SerialBook {
    let path = state_dir.join(file);
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

/// The zones every listener reads, one per view; a sync replaces each whole with one atomic
/// pointer swap, so a query sees the old zone or the new one, never a mix.
#[derive(Clone)]
pub struct Views {
    pub private: SharedZone,
    /// Empty (every name REFUSED) unless `[public]` is configured.
    pub public: SharedZone,
}

impl Views {
    pub fn new() -> Views {
        Views {
            private: Arc::new(ArcSwap::from_pointee(ZoneIndex::default())),
            public: Arc::new(ArcSwap::from_pointee(ZoneIndex::default())),
        }
    }

    /// Compiles both views and swaps them in. The zones they replace are freed here, not on
    /// a query thread.
    pub fn publish(&self, built: &Built) {
        let private = self
            .private
            .swap(Arc::new(ZoneIndex::compile(&built.private)));
        let public = built
            .public
            .as_ref()
            .map(ZoneIndex::compile)
            .unwrap_or_default();
        let public = self.public.swap(Arc::new(public));
        retire(private);
        retire(public);
    }
}

/// Frees a replaced zone on this thread. A query thread may still be answering a batch from
/// it (for microseconds); whoever lets go last frees it, and freeing a large zone (100,000
/// members: ~24 MB handed back to the system) would be a latency spike on a query thread.
/// A zone transfer can hold one for longer: after a second it is left to the transfer.
fn retire(mut old: Arc<ZoneIndex>) {
    for _ in 0..1000 {
        match Arc::try_unwrap(old) {
            Ok(zone) => return drop(zone),
            Err(shared) => old = shared,
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl Default for Views {
    fn default() -> Views {
        Views::new()
    }
}

/// What the builder is told.
enum Update {
    /// A successful fetch by the poller of this generation.
    Snapshot(u64, NetworkSnapshot),
    /// The addresses this server answers on changed.
    Nameservers(Vec<IpAddr>),
    /// A reloaded configuration with its records files, and the poller generation per network.
    Reconfigure(Box<Config>, FileRecords, HashMap<NetworkId, u64>),
}

/// One Notify per network id, stable across reloads: a webhook or a watched members file
/// wakes the network's poller through it.
pub type Triggers = Arc<RwLock<HashMap<NetworkId, Arc<Notify>>>>;

/// A running poller.
struct Running {
    network: config::Network,
    generation: u64,
    task: JoinHandle<()>,
}

/// Lets the rest of the server tell the builder about changes, wake pollers and reload.
#[derive(Clone)]
pub struct SyncHandle {
    telemetry: Arc<Telemetry>,
    tx: mpsc::Sender<Update>,
    served: Arc<watch::Sender<Vec<IpAddr>>>,
    pub triggers: Triggers,
    pollers: Arc<Mutex<HashMap<NetworkId, Running>>>,
    generation: Arc<AtomicU64>,
    snapshots: snapshot::Writer,
}

impl SyncHandle {
    /// Saves the snapshots still waiting for their turn (at shutdown).
    pub async fn save_snapshots(&self) {
        save_pending(self.snapshots.clone()).await;
    }

    pub async fn nameserver_addresses(&self, addresses: Vec<IpAddr>) {
        self.served.send_replace(addresses.clone());
        let _ = self.tx.send(Update::Nameservers(addresses)).await;
    }

    /// Syncs a network now instead of at its next interval.
    pub fn trigger(&self, id: NetworkId) {
        if let Some(t) = self.triggers.read().expect("triggers lock").get(&id) {
            t.notify_one();
        }
    }

    /// Applies a reloaded configuration: pollers of removed or changed networks stop, new
    /// and changed ones start (and fetch at once), unchanged ones keep their rhythm; the zone
    /// is rebuilt with the new records files.
    pub async fn reconfigure(&self, config: &Config, files: FileRecords) -> anyhow::Result<()> {
        let changed: Vec<config::Network> = {
            let mut pollers = self.pollers.lock().expect("pollers lock");
            pollers.retain(|id, running| {
                let keep = config
                    .networks
                    .iter()
                    .any(|n| n.id == *id && *n == running.network);
                if !keep {
                    running.task.abort();
                }
                keep
            });
            config
                .networks
                .iter()
                .filter(|n| !pollers.contains_key(&n.id))
                .cloned()
                .collect()
        };
        let sources =
            zerotier::sources(&changed).map_err(|(id, e)| anyhow::anyhow!("network {id}: {e}"))?;
        // Before any poller runs: a first fetch that fails at once must find its network in
        // the status (the builder thread, which may wait for idle CPU, is no place for this).
        let ids: Vec<NetworkId> = config.networks.iter().map(|n| n.id).collect();
        self.telemetry.set_networks(&ids);
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        {
            let mut triggers = self.triggers.write().expect("triggers lock");
            triggers.retain(|id, _| config.networks.iter().any(|n| n.id == *id));
            for net in &changed {
                triggers.entry(net.id).or_default();
            }
        }
        // The builder learns the new generations before any new poller can deliver a fetch:
        // one channel, so the Reconfigure is ahead of everything they send.
        let mut generations: HashMap<NetworkId, u64> = {
            let pollers = self.pollers.lock().expect("pollers lock");
            pollers.iter().map(|(id, r)| (*id, r.generation)).collect()
        };
        generations.extend(changed.iter().map(|n| (n.id, generation)));
        self.tx
            .send(Update::Reconfigure(
                Box::new(config.clone()),
                files,
                generations,
            ))
            .await
            .map_err(|_| anyhow::anyhow!("the zone builder has stopped"))?;
        let mut pollers = self.pollers.lock().expect("pollers lock");
        for (net, source) in changed.into_iter().zip(sources) {
            let trigger = self.triggers.read().expect("triggers lock")[&net.id].clone();
            let poller = Poller {
                telemetry: self.telemetry.clone(),
                generation,
                net: net.clone(),
                source,
                tx: self.tx.clone(),
                trigger,
                served: self.served.subscribe(),
            };
            let task = tokio::spawn(poller.run());
            pollers.insert(
                net.id,
                Running {
                    network: net,
                    generation,
                    task,
                },
            );
        }
        Ok(())
    }
}

/// Builds the first zone (from snapshots, or empty and not yet complete), then starts the
/// pollers and the builder. `nameservers`: the addresses served right now.
pub async fn start(
    config: &Config,
    files: FileRecords,
    views: Views,
    nameservers: Vec<IpAddr>,
    telemetry: Arc<Telemetry>,
) -> anyhow::Result<SyncHandle> {
    let mut builder = Builder::new(config, files.clone(), telemetry.clone());
    builder.load_snapshots();
    let served = Arc::new(watch::Sender::new(nameservers.clone()));
    builder.set_nameserver_addresses(nameservers);
    views.publish(&builder.build());
    builder.save_serials();

    let (tx, rx) = mpsc::channel::<Update>(16);
    let handle = SyncHandle {
        telemetry,
        tx,
        served,
        triggers: Triggers::default(),
        pollers: Arc::default(),
        generation: Arc::default(),
        snapshots: builder.snapshot_writer(),
    };

    let zone_builder = BuilderThread {
        builder,
        views,
        runtime: tokio::runtime::Handle::current(),
        notify_targets: config.transfer.notify.clone(),
        serials: HashMap::new(),
        generations: HashMap::new(),
    };
    std::thread::Builder::new()
        .name("zone-builder".into())
        .spawn(move || zone_builder.run(rx))?;
    handle.reconfigure(config, files).await?;
    Ok(handle)
}

/// The zone builder thread: applies updates one at a time, rebuilding and swapping the zones
/// when one changed something.
struct BuilderThread {
    builder: Builder,
    views: Views,
    runtime: tokio::runtime::Handle,
    notify_targets: Vec<SocketAddr>,
    /// The last serial of every zone, to NOTIFY secondaries when it moves.
    serials: HashMap<String, u32>,
    /// The current poller generation of every network.
    generations: HashMap<NetworkId, u64>,
}

impl BuilderThread {
    fn run(mut self, mut rx: mpsc::Receiver<Update>) {
        crate::background::lower_priority();
        // Set after a build: the memory it freed goes back to the system once syncs pause.
        let mut release = false;
        loop {
            let update = if release {
                // The timer must be made inside the runtime's context.
                let next = async { tokio::time::timeout(RELEASE_AFTER, rx.recv()).await };
                match self.runtime.block_on(next) {
                    Ok(update) => update,
                    Err(_) => {
                        crate::memory::release_freed();
                        release = false;
                        continue;
                    }
                }
            } else {
                rx.blocking_recv()
            };
            let Some(update) = update else { break };
            // Everything that queued up during the last build is applied before building once:
            // syncs arriving faster than builds (a burst of webhooks) cost one build, and the
            // zone never lags behind a queue of stale updates.
            let mut updates = vec![update];
            while let Ok(more) = rx.try_recv() {
                updates.push(more);
            }
            // A bug in a build must not end every later sync with it: the current zone keeps
            // answering and the next update gets its own try.
            let applied = std::panic::AssertUnwindSafe(|| self.apply(updates));
            match std::panic::catch_unwind(applied) {
                Ok(built) => release |= built,
                Err(_) => tracing::error!(
                    "building the zone failed (a bug: please report it with the panic message \
                     above); the current zone keeps answering"
                ),
            }
        }
    }

    /// Applies updates in order, then builds and publishes new zones if any of them changed
    /// something; returns whether it did.
    fn apply(&mut self, updates: Vec<Update>) -> bool {
        let mut causes = Vec::new();
        for update in updates {
            let (cause, changed) = self.take(update);
            if changed {
                causes.push(cause);
            } else {
                tracing::debug!(cause, "sync: no change");
            }
        }
        if causes.is_empty() {
            return false;
        }
        causes.dedup();
        let cause = causes.join(", ");
        let started = std::time::Instant::now();
        let built = self.builder.build();
        self.views.publish(&built);
        self.builder.save_serials();
        // Tell secondaries about every complete zone whose serial moved.
        for z in built.private.zones.iter().filter(|z| z.complete) {
            let apex = z.apex.to_ascii();
            if self.serials.insert(apex, z.serial) != Some(z.serial)
                && !self.notify_targets.is_empty()
            {
                self.runtime.spawn(crate::dns::transfer::notify(
                    crate::dns::wire::name_wire(&z.apex),
                    self.notify_targets.clone(),
                ));
            }
        }
        let zones = &built.private;
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
        true
    }

    /// Takes one update into the builder's data; returns its cause and whether it changed
    /// anything.
    fn take(&mut self, update: Update) -> (String, bool) {
        let builder = &mut self.builder;
        match update {
            Update::Snapshot(generation, snapshot) => {
                let network = snapshot.id;
                // A poller stopped by a reload may still deliver one last fetch.
                let current = self.generations.get(&network) == Some(&generation);
                (
                    format!("network {network}"),
                    current && builder.set(snapshot),
                )
            }
            Update::Nameservers(addresses) => (
                "listen addresses".to_owned(),
                builder.set_nameserver_addresses(addresses),
            ),
            Update::Reconfigure(config, files, generations) => {
                self.generations = generations;
                self.notify_targets = config.transfer.notify.clone();
                builder.reconfigure(&config, files);
                ("reload".to_owned(), true)
            }
        }
    }
}

/// One network's sync loop.
struct Poller {
    telemetry: Arc<Telemetry>,
    generation: u64,
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

/// Fetches every network once (the `zone` command). Fails if any network fails.
pub async fn fetch_all(config: &Config, files: FileRecords) -> anyhow::Result<Builder> {
    let mut builder = Builder::new(config, files, Arc::default());
    let sources = zerotier::sources(&config.networks)
        .map_err(|(id, e)| anyhow::anyhow!("network {id}: {e}"))?;
    for (net, source) in config.networks.iter().zip(sources) {
        let snapshot = source
            .fetch()
            .await
            .map_err(|e| anyhow::anyhow!("network {}: {e}", net.id))?;
        builder.set(snapshot);
    }
    save_pending(builder.snapshot_writer()).await;
    Ok(builder)
}

/// Waits (off the runtime, at most 5 s) for the snapshots not saved yet.
async fn save_pending(writer: snapshot::Writer) {
    let _ = tokio::task::spawn_blocking(move || writer.flush(Duration::from_secs(5))).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::index::Lookup;

    /// The A RDATA of `db.backhaul.` in the published backhaul view.
    fn db_address(views: &Views) -> Option<Vec<u8>> {
        let zone = views.private.load();
        match zone.lookup(b"\x02db\x08backhaul\x00") {
            Lookup::Found(node, _) => node
                .rrset(1)
                .map(|set| set.wire[set.wire.len() - 4..].to_vec()),
            _ => None,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn updates_queued_during_a_build_are_built_once_with_the_latest_data() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.json"), "[]").unwrap();
        let text = "state_dir = \"state\"\n[listen]\naddresses = [\"127.0.0.1\"]\n[[network]]\n\
                    id = \"8056c2e21c000001\"\nsource = \"file\"\nmembers_file = \"m.json\"\n";
        let config = Config::parse(&dir.path().join("c.toml"), text).unwrap();
        let id = config.networks[0].id;
        let views = Views::new();
        let mut thread = BuilderThread {
            builder: Builder::new(&config, FileRecords::default(), Arc::default()),
            views: views.clone(),
            runtime: tokio::runtime::Handle::current(),
            notify_targets: Vec::new(),
            serials: HashMap::new(),
            generations: HashMap::from([(id, 2)]),
        };
        let db_at = |ip: &str, generation| {
            let list = format!(
                r#"[{{"nodeId": "a45dc9d260", "name": "db", "config": {{"authorized": true,
                   "ipAssignments": ["{ip}"]}}}}]"#
            );
            Update::Snapshot(
                generation,
                zerotier::file::parse(list.as_bytes(), id).unwrap(),
            )
        };
        let built = thread.apply(vec![
            db_at("10.0.0.1", 2),
            db_at("10.0.0.2", 2),
            db_at("10.0.0.3", 1), // from a poller stopped by a reload: ignored
        ]);
        assert!(built);
        assert_eq!(db_address(&views), Some(vec![10, 0, 0, 2]));
        // Nothing new: no build.
        assert!(!thread.apply(vec![db_at("10.0.0.2", 2)]));
    }

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
