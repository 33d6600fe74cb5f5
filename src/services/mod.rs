//! Where service names learn who is up: health checks, and the live answers they give.
//!
//! Each zone build hands its service plans here ([`Services::plan`]); the answers are
//! compiled into a small [`LiveTable`] and swapped in apart from the zone index, so a health
//! flip costs microseconds, not a zone build. The TCP checks run on a thread of their own
//! ([`probe`]), at most [`probe::IN_FLIGHT`] connects at a time, each address on its own
//! schedule spread over the interval.

pub mod health;
mod probe;

use crate::lock::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::config::Check;
use crate::dns::live::{LiveTable, SharedLive};
use crate::ids::NodeId;
use crate::metrics::{ServiceStatus, Telemetry};
use crate::zerotier::NetworkSnapshot;
use crate::zone::services::LiveRecords;
use crate::zone::ServicePlan;
use health::{CheckKey, Health};

/// How often `check = "online"` is judged again (Central's `lastSeen` ages while nothing
/// is fetched).
const ONLINE_TICK: Duration = Duration::from_secs(1);

/// The health of every service and the live table it publishes.
pub struct Services {
    shared: Arc<Shared>,
    /// False for the one-shot commands: they check once ([`Services::check_once`]).
    keep_checking: bool,
    /// The checks thread, started with the first plan that needs it.
    checks: Mutex<Option<Checks>>,
}

struct Checks {
    /// Tells the thread the plans changed.
    nudge: mpsc::UnboundedSender<()>,
    cancel: CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

/// What the checks thread and the publishers share.
struct Shared {
    health: Mutex<Health>,
    live: SharedLive,
    telemetry: Arc<Telemetry>,
}

impl Services {
    pub fn new(telemetry: Arc<Telemetry>) -> Services {
        Services {
            shared: Arc::new(Shared {
                health: Mutex::default(),
                live: SharedLive::default(),
                telemetry,
            }),
            keep_checking: true,
            checks: Mutex::default(),
        }
    }

    /// Services without a checks thread (one-shot commands, tests, benchmarks): results come
    /// from [`Services::check_once`] or [`Services::take_results`].
    pub fn one_shot() -> Services {
        Services {
            keep_checking: false,
            ..Services::new(Arc::default())
        }
    }

    /// The table the backhaul view's zone indexes answer service names from.
    pub fn live(&self) -> SharedLive {
        self.shared.live.clone()
    }

    /// Takes the service plans of a new zone build (before it is published): the live table
    /// is recompiled at once, with what the checks know, and the checks follow the plans.
    pub fn plan(&self, plans: Vec<ServicePlan>) {
        let mut health = lock(&self.shared.health);
        if health.plans() == plans.as_slice() {
            return;
        }
        // Each problem once, not at every zone build.
        let known: std::collections::HashSet<(&str, &str)> = (health.plans().iter())
            .flat_map(|p| {
                p.problems
                    .iter()
                    .map(|x| (p.service.label.as_str(), x.as_str()))
            })
            .collect();
        for p in &plans {
            for problem in &p.problems {
                if !known.contains(&(p.service.label.as_str(), problem.as_str())) {
                    tracing::warn!(service = %health::display_name(&p.service), "{problem}");
                }
            }
        }
        let needs_thread = plans
            .iter()
            .any(|p| matches!(p.service.check, Check::Tcp | Check::Online));
        health.set_plans(plans);
        let names: Vec<String> = (health.plans().iter())
            .map(|p| health::display_name(&p.service))
            .collect();
        self.shared.telemetry.retain_services(&names);
        self.shared.publish(&mut health, true);
        drop(health);
        if needs_thread && self.keep_checking {
            self.start_checks();
        }
        if let Some(c) = lock(&self.checks).as_ref() {
            let _ = c.nudge.send(());
        }
    }

    /// A fetch of `snapshot`'s network that changed nothing in the zone may still carry new
    /// `lastSeen` times: `check = "online"` judges by them.
    pub fn seen(&self, snapshot: &NetworkSnapshot) {
        let mut health = lock(&self.shared.health);
        let online = |p: &ServicePlan| p.service.check == Check::Online;
        if !health.plans().iter().any(online) {
            return;
        }
        let times: HashMap<NodeId, Option<i64>> = (snapshot.members.iter())
            .map(|m| (m.node, m.last_seen))
            .collect();
        let mut plans = health.plans().to_vec();
        for m in plans
            .iter_mut()
            .filter(|p| online(p))
            .flat_map(|p| &mut p.members)
        {
            if m.network == snapshot.id {
                if let Some(t) = times.get(&m.node) {
                    m.last_seen = *t;
                }
            }
        }
        if plans != health.plans() {
            health.set_plans(plans);
            self.shared.publish(&mut health, false);
        }
    }

    /// What `/readyz` shows.
    pub fn statuses(&self) -> Vec<ServiceStatus> {
        lock(&self.shared.health).statuses().cloned().collect()
    }

    /// Runs one round of checks now, every address once (for the one-shot `zone` command:
    /// the records it prints are those of this moment), and publishes the result.
    pub async fn check_once(&self) {
        let keys = lock(&self.shared.health).checks();
        let results = probe::once(&keys).await;
        let mut health = lock(&self.shared.health);
        for (key, ok) in results {
            health.record(key, ok);
        }
        self.shared.publish(&mut health, false);
    }

    /// Takes check results as the checks thread does (benchmarks drive flips through it);
    /// returns whether the live table changed.
    pub fn take_results(&self, results: Vec<(CheckKey, bool)>) -> bool {
        self.shared.take(results.into_iter())
    }

    /// Every TCP check the current plans need.
    pub fn checks(&self) -> Vec<CheckKey> {
        lock(&self.shared.health).checks()
    }

    /// The service names' records as they are answered now.
    pub fn records(&self) -> Vec<LiveRecords> {
        lock(&self.shared.health).records().cloned().collect()
    }

    fn start_checks(&self) {
        let mut checks = lock(&self.checks);
        if checks.is_some() {
            return;
        }
        let (nudge, nudged) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let shared = self.shared.clone();
        let stop = cancel.clone();
        let spawned = std::thread::Builder::new()
            .name("health-checks".into())
            .spawn(move || run_checks(shared, nudged, stop));
        match spawned {
            Ok(thread) => {
                *checks = Some(Checks {
                    nudge,
                    cancel,
                    thread,
                })
            }
            Err(e) => tracing::error!(error = %e,
                "cannot start the health checks thread: service names answer with every member"),
        }
    }

    /// Stops the checks (at shutdown).
    pub async fn stop(&self) {
        let Some(checks) = lock(&self.checks).take() else {
            return;
        };
        checks.cancel.cancel();
        let joined = tokio::task::spawn_blocking(move || checks.thread.join());
        let _ = tokio::time::timeout(Duration::from_secs(5), joined).await;
    }
}

impl Shared {
    /// Takes check results; publishes a new table if an address changed state. Returns
    /// whether it did.
    fn take(&self, results: impl Iterator<Item = (CheckKey, bool)>) -> bool {
        let mut health = lock(&self.health);
        let mut flipped = false;
        for (key, ok) in results {
            tracing::debug!(address = %key.ip, port = key.port, ok, "service check");
            if !ok {
                for service in health.services_of(&key) {
                    self.telemetry.service_check_failed(&service);
                }
            }
            flipped |= health.record(key, ok);
        }
        flipped && self.publish(&mut health, false)
    }

    /// Works out the services whose checks changed and, if any answer or status did (or
    /// `always`), swaps in a new live table; logs and counts what changed. Returns whether
    /// it swapped.
    fn publish(&self, health: &mut Health, always: bool) -> bool {
        let changed = health.refresh(clock::unix_now_ms());
        if changed.is_empty() && !always {
            return false;
        }
        let table = if always {
            LiveTable::new(health.records())
        } else {
            let changed = changed.iter().flat_map(|c| health.records_of(c.index));
            self.live.load().updated(changed)
        };
        self.live.store(Arc::new(table));
        for c in changed {
            let Some(s) = health.status(c.index) else {
                continue;
            };
            self.telemetry.service(s);
            let Some(old) = c.before else {
                tracing::info!(service = %s.name, up = s.up.len(), down = s.down.len(), check = s.check, "serving service");
                continue;
            };
            for m in s.up.iter().filter(|m| old.down.contains(m)) {
                tracing::info!(service = %s.name, member = %m, "service member up");
                self.telemetry.service_flip(&s.name);
            }
            for m in s.down.iter().filter(|m| old.up.contains(m)) {
                tracing::info!(service = %s.name, member = %m, "service member down");
                self.telemetry.service_flip(&s.name);
            }
            if s.fail_open && !old.fail_open {
                tracing::warn!(service = %s.name, members = s.down.len(),
                    "no member of the service is up: answering with every member (fail open)");
            }
        }
        true
    }
}

/// The checks thread: its own small runtime, so checks never compete with queries for the
/// server's workers.
fn run_checks(
    shared: Arc<Shared>,
    mut nudged: mpsc::UnboundedReceiver<()>,
    cancel: CancellationToken,
) {
    // Normal priority, unlike the zone builder: checks are light, and a flip must not wait
    // for a busy server's queries to leave it a turn.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the health checks runtime: service names answer with every member");
            return;
        }
    };
    runtime.block_on(async move {
        let (results_tx, mut results) = mpsc::channel::<(CheckKey, bool)>(1024);
        let mut probes = probe::Probes::new(results_tx);
        probes.follow(&lock(&shared.health).checks());
        let mut tick = tokio::time::interval(ONLINE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                Some(()) = nudged.recv() => {
                    while nudged.try_recv().is_ok() {}
                    probes.follow(&lock(&shared.health).checks());
                }
                Some(first) = results.recv() => {
                    // Results that arrived together cost one table.
                    let more = std::iter::from_fn(|| results.try_recv().ok());
                    shared.take(std::iter::once(first).chain(more));
                }
                _ = tick.tick() => {
                    let mut health = lock(&shared.health);
                    health.age();
                    shared.publish(&mut health, false);
                }
            }
        }
        probes.stop();
    });
}
