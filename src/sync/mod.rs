//! Where a sync happens: poll each network, rebuild the zone from complete fetches only, swap it.
//!
//! One poller task per network fetches on its interval (backing off on failure) and hands
//! whole snapshots to a single builder thread. The builder keeps the latest snapshot of every
//! network, rebuilds all zones when one changes, stamps serials, compiles the index and swaps
//! it in with one atomic store. A failed fetch sends nothing, so the last good zone keeps
//! answering; building off the async runtime keeps a large rebuild from delaying queries.
//!
//! [`poller`] runs one loop per network, [`builder`] owns the data and builds (and keeps the
//! IXFR journals), [`names`] is what the names directory is worked out from, [`publish`]
//! swaps the compiled zones in. This file wires them: [`start`], [`SyncHandle`] (reload,
//! triggers, shutdown) and [`fetch_all`] for the one-shot commands.

pub mod builder;
mod journals;
pub mod names;
pub mod poller;
pub mod publish;

use crate::lock::{lock, read};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config};
use crate::ids::NetworkId;
use crate::metrics::Telemetry;
use crate::records::FileRecords;
use crate::state::snapshot;
use crate::zerotier::{FetchError, NetworkSnapshot};
use builder::{Builder, BuilderThread};
use poller::{sources, Poller};
pub use publish::Views;

/// Why syncing could not start or a reload could not be applied.
#[derive(Debug, Error)]
pub enum SyncError {
    /// A network's source could not be set up (a bad api_url) or, for the one-shot commands,
    /// its fetch failed.
    #[error("network {network}: {source}")]
    Network {
        network: NetworkId,
        source: FetchError,
    },
    #[error("cannot start the zone builder thread: {0}")]
    Thread(std::io::Error),
    #[error("the zone builder has stopped")]
    BuilderGone,
}

/// What the builder is told.
pub(crate) enum Update {
    /// A successful fetch by the poller of this generation.
    Snapshot(u64, NetworkSnapshot),
    /// The addresses this server answers on changed.
    Nameservers(Vec<IpAddr>),
    /// A reloaded configuration with its records files, and the poller generation per network.
    Reconfigure(Box<Config>, FileRecords, HashMap<NetworkId, u64>),
    /// A follower's zones as they are now (`[follow]`).
    Followed(Vec<crate::zone::ZoneContent>),
    /// An RFC 2136 UPDATE to apply, and where to say how it went.
    Dynamic(crate::dns::update::UpdateJob),
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
    /// Cancelled at shutdown: every poller stops.
    cancel: CancellationToken,
    /// The builder thread, joined at shutdown.
    builder: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl SyncHandle {
    /// Hands the UPDATEs the listeners take to the builder, in the order they came.
    pub fn take_updates(&self, mut jobs: mpsc::Receiver<crate::dns::update::UpdateJob>) {
        let tx = self.tx.clone();
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            loop {
                let job = tokio::select! {
                    _ = cancel.cancelled() => return,
                    job = jobs.recv() => job,
                };
                let Some(job) = job else { return };
                if let Err(mpsc::error::SendError(Update::Dynamic(job))) =
                    tx.send(Update::Dynamic(job)).await
                {
                    let _ = job.done.send(crate::zone::update::SERVFAIL);
                }
            }
        });
    }

    /// A follower's zones as they are now, to be served in place of the last ones.
    pub async fn followed(&self, zones: Vec<crate::zone::ZoneContent>) {
        if self.tx.send(Update::Followed(zones)).await.is_err() {
            tracing::debug!("the zone builder has stopped: followed zones not served");
        }
    }

    /// Stops syncing for shutdown: the pollers stop (a fetch under way is abandoned), the
    /// builder finishes what it is building and ends, and the snapshots still waiting for
    /// their turn are saved.
    pub async fn stop(self) {
        self.cancel.cancel();
        let tasks: Vec<JoinHandle<()>> = {
            let mut pollers = lock(&self.pollers);
            pollers.drain().map(|(_, r)| r.task).collect()
        };
        for task in tasks {
            let _ = task.await;
        }
        let builder = lock(&self.builder).take();
        let snapshots = self.snapshots.clone();
        // The last sender goes with this handle: the builder sees its channel closed.
        drop(self);
        if let Some(thread) = builder {
            let joined = tokio::task::spawn_blocking(move || thread.join());
            if tokio::time::timeout(BUILDER_STOP, joined).await.is_err() {
                tracing::warn!("the zone builder did not stop in time; exiting anyway");
            }
        }
        save_pending(snapshots).await;
    }

    pub async fn nameserver_addresses(&self, addresses: Vec<IpAddr>) {
        self.served.send_replace(addresses.clone());
        let _ = self.tx.send(Update::Nameservers(addresses)).await;
    }

    /// Syncs a network now instead of at its next interval.
    pub fn trigger(&self, id: NetworkId) {
        if let Some(t) = read(&self.triggers).get(&id) {
            t.notify_one();
        }
    }

    /// Applies a reloaded configuration: pollers of removed or changed networks stop, new
    /// and changed ones start (and fetch at once), unchanged ones keep their rhythm; the zone
    /// is rebuilt with the new records files.
    pub async fn reconfigure(&self, config: &Config, files: FileRecords) -> Result<(), SyncError> {
        let changed: Vec<config::Network> = {
            let mut pollers = lock(&self.pollers);
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
        let sources = sources(&changed)
            .map_err(|(network, source)| SyncError::Network { network, source })?;
        // Before any poller runs: a first fetch that fails at once must find its network in
        // the status (the builder thread, which may wait for idle CPU, is no place for this).
        let ids: Vec<(NetworkId, &'static str)> = (config.networks.iter())
            .map(|n| (n.id, n.source.kind()))
            .collect();
        self.telemetry.set_networks(&ids);
        self.telemetry.set_ready_max_age(config.ready_max_age);
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        {
            let mut triggers = crate::lock::write(&self.triggers);
            triggers.retain(|id, _| config.networks.iter().any(|n| n.id == *id));
            for net in &changed {
                triggers.entry(net.id).or_default();
            }
        }
        // The builder learns the new generations before any new poller can deliver a fetch:
        // one channel, so the Reconfigure is ahead of everything they send.
        let mut generations: HashMap<NetworkId, u64> = {
            let pollers = lock(&self.pollers);
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
            .map_err(|_| SyncError::BuilderGone)?;
        let mut pollers = lock(&self.pollers);
        for (net, source) in changed.into_iter().zip(sources) {
            let trigger = read(&self.triggers)
                .get(&net.id)
                .cloned()
                .unwrap_or_default();
            let poller = Poller {
                telemetry: self.telemetry.clone(),
                generation,
                net: net.clone(),
                source,
                tx: self.tx.clone(),
                trigger,
                served: self.served.subscribe(),
            };
            let cancel = self.cancel.clone();
            let task = tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = poller.run() => {}
                }
            });
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
    followed: Vec<crate::zone::ZoneContent>,
) -> Result<SyncHandle, SyncError> {
    let mut builder = Builder::new(config, files.clone(), telemetry.clone());
    builder.load_snapshots();
    builder.set_followed(followed);
    let served = Arc::new(watch::Sender::new(nameservers.clone()));
    builder.set_nameserver_addresses(nameservers);
    let built = builder.build();
    views.publish(&built);
    builder.report(&built);
    views
        .names
        .set(builder.names_source(built.private.scopes.clone(), built.private.updated.clone()));
    builder.save_serials();
    // The zone served before a restart, rebuilt from its snapshots: the next build's IXFR
    // journal entry is the change from it, however soon the first sync arrives.
    builder.keep_published(built);

    let (tx, rx) = mpsc::channel::<Update>(16);
    let handle = SyncHandle {
        telemetry,
        tx,
        served,
        triggers: Triggers::default(),
        pollers: Arc::default(),
        generation: Arc::default(),
        snapshots: builder.snapshot_writer(),
        cancel: CancellationToken::new(),
        builder: Arc::default(),
    };

    let zone_builder = BuilderThread {
        builder,
        views,
        runtime: tokio::runtime::Handle::current(),
        notifier: {
            let mut n = crate::dns::notify::Notifier::new(tokio::runtime::Handle::current());
            n.configure(&config.transfer);
            n
        },
        generations: HashMap::new(),
        refusals: Default::default(),
    };
    let thread = std::thread::Builder::new()
        .name("zone-builder".into())
        .spawn(move || zone_builder.run(rx))
        .map_err(SyncError::Thread)?;
    *lock(&handle.builder) = Some(thread);
    handle.reconfigure(config, files).await?;
    Ok(handle)
}

/// Fetches every network once (the `zone` command), into a builder that writes nothing to
/// `state_dir` ([`Builder::read_only`]). Fails if any network fails.
pub async fn fetch_all(config: &Config, files: FileRecords) -> Result<Builder, SyncError> {
    let mut builder = Builder::read_only(config, files);
    let sources = sources(&config.networks)
        .map_err(|(network, source)| SyncError::Network { network, source })?;
    for (net, source) in config.networks.iter().zip(sources) {
        let snapshot = source.fetch().await.map_err(|source| SyncError::Network {
            network: net.id,
            source,
        })?;
        builder.set(snapshot);
    }
    Ok(builder)
}

/// How long shutdown waits for the builder to finish a build under way.
const BUILDER_STOP: Duration = Duration::from_secs(10);

/// Waits (off the runtime, at most 5 s) for the snapshots not saved yet.
async fn save_pending(writer: snapshot::Writer) {
    let _ = tokio::task::spawn_blocking(move || writer.flush(Duration::from_secs(5))).await;
}
