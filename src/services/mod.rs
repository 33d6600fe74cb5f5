//! Where service names learn who is up: health checks, and the live answers they give.
//!
//! Each zone build hands its service plans here ([`Services::plan`]); the answers are
//! compiled into a small [`LiveTable`] and swapped in apart from the zone index, so a health
//! flip costs microseconds, not a zone build. The TCP checks run on a thread of their own
//! ([`probe`]), at most [`probe::IN_FLIGHT`] connects at a time, each address on its own
//! schedule spread over the interval.

pub mod health;
mod probe;

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
    /// What was published last, to log and count the changes.
    statuses: Mutex<Vec<ServiceStatus>>,
}

impl Services {
    pub fn new(telemetry: Arc<Telemetry>) -> Services {
        Services {
            shared: Arc::new(Shared {
                health: Mutex::default(),
                live: SharedLive::default(),
                telemetry,
                statuses: Mutex::default(),
            }),
            keep_checking: true,
            checks: Mutex::default(),
        }
    }

    /// Services for a one-shot command: no checks thread; [`Services::check_once`] checks.
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
        for p in &plans {
            for problem in &p.problems {
                tracing::warn!(service = %health::display_name(&p.service), "{problem}");
            }
        }
        let needs_thread = plans
            .iter()
            .any(|p| matches!(p.service.check, Check::Tcp | Check::Online));
        health.set_plans(plans);
        self.shared.publish(&health);
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
            self.shared.publish(&health);
        }
    }

    /// What `/readyz` shows.
    pub fn statuses(&self) -> Vec<ServiceStatus> {
        lock(&self.shared.statuses).clone()
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
        self.shared.publish(&health);
    }

    /// The service names' records as they are answered now.
    pub fn records(&self) -> Vec<LiveRecords> {
        lock(&self.shared.health).compile(clock::unix_now_ms()).0
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
    /// Compiles the live table from `health` and swaps it in; logs and counts what changed.
    fn publish(&self, health: &Health) {
        let (records, statuses) = health.compile(clock::unix_now_ms());
        self.live.store(Arc::new(LiveTable::new(&records)));
        let mut last = lock(&self.statuses);
        let before: HashMap<&str, &ServiceStatus> =
            last.iter().map(|s| (s.name.as_str(), s)).collect();
        for s in &statuses {
            let Some(old) = before.get(s.name.as_str()) else {
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
        self.telemetry.services(&statuses);
        *last = statuses;
    }
}

/// The checks thread: its own small runtime, so checks never compete with queries for the
/// server's workers.
fn run_checks(
    shared: Arc<Shared>,
    mut nudged: mpsc::UnboundedReceiver<()>,
    cancel: CancellationToken,
) {
    crate::background::lower_priority();
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
                    let mut health = lock(&shared.health);
                    let mut flipped = false;
                    // Results that arrived together cost one table.
                    let mut next = Some(first);
                    while let Some((key, ok)) = next {
                        if !ok {
                            for service in health.services_of(&key) {
                                shared.telemetry.service_check_failed(&service);
                            }
                        }
                        flipped |= health.record(key, ok);
                        next = results.try_recv().ok();
                    }
                    if flipped {
                        shared.publish(&health);
                    }
                }
                _ = tick.tick() => {
                    let health = lock(&shared.health);
                    let online = health.plans().iter().any(|p| p.service.check == Check::Online);
                    if online && health.compile(clock::unix_now_ms()).1 != *lock(&shared.statuses) {
                        shared.publish(&health);
                    }
                }
            }
        }
        probes.stop();
    });
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
