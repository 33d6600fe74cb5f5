//! TCP checks: one task per address and port, each on its own schedule spread over its
//! interval, at most [`IN_FLIGHT`] connects at a time, each bounded by a timeout below the
//! interval. A check connects to a member's own address and nothing else.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use super::health::CheckKey;

/// Connects in flight at once, across every service.
pub const IN_FLIGHT: usize = 256;
/// The longest a connect may take; shorter intervals get half their interval.
const MAX_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one check of `key` may take: below its interval, so checks never pile up.
fn timeout(key: &CheckKey) -> Duration {
    (key.interval / 2).min(MAX_TIMEOUT)
}

/// Whether `key`'s address accepts a TCP connection on its port within the timeout. The
/// connection is closed at once.
async fn connect(key: &CheckKey) -> bool {
    let to = SocketAddr::new(key.ip, key.port);
    matches!(
        tokio::time::timeout(timeout(key), tokio::net::TcpStream::connect(to)).await,
        Ok(Ok(_))
    )
}

/// Where in its interval `key`'s checks fall: spread by a hash of the key, so a thousand
/// members are not checked in the same millisecond.
fn offset(key: &CheckKey) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let ms = key.interval.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
}

/// The running check tasks.
pub struct Probes {
    tasks: HashMap<CheckKey, JoinHandle<()>>,
    results: mpsc::Sender<(CheckKey, bool)>,
    slots: Arc<Semaphore>,
}

impl Probes {
    pub fn new(results: mpsc::Sender<(CheckKey, bool)>) -> Probes {
        Probes {
            tasks: HashMap::new(),
            results,
            slots: Arc::new(Semaphore::new(IN_FLIGHT)),
        }
    }

    /// Runs exactly the checks in `keys`: new ones start, gone ones stop, the others go on
    /// undisturbed.
    pub fn follow(&mut self, keys: &[CheckKey]) {
        let wanted: std::collections::HashSet<&CheckKey> = keys.iter().collect();
        self.tasks.retain(|k, task| {
            let keep = wanted.contains(k);
            if !keep {
                task.abort();
            }
            keep
        });
        for key in keys {
            if self.tasks.contains_key(key) {
                continue;
            }
            let (key, results, slots) = (*key, self.results.clone(), self.slots.clone());
            let task = tokio::spawn(async move {
                tokio::time::sleep(offset(&key)).await;
                let mut tick = tokio::time::interval(key.interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let ok = {
                        let Ok(_slot) = slots.acquire().await else {
                            return;
                        };
                        connect(&key).await
                    };
                    if results.send((key, ok)).await.is_err() {
                        return;
                    }
                }
            });
            self.tasks.insert(key, task);
        }
    }

    pub fn stop(&mut self) {
        for (_, task) in self.tasks.drain() {
            task.abort();
        }
    }
}

/// Every check in `keys` once, at most [`IN_FLIGHT`] at a time.
pub async fn once(keys: &[CheckKey]) -> Vec<(CheckKey, bool)> {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut set = tokio::task::JoinSet::new();
    for key in keys {
        let (key, slots) = (*key, slots.clone());
        set.spawn(async move {
            let _slot = slots.acquire().await;
            (key, connect(&key).await)
        });
    }
    let mut out = Vec::with_capacity(keys.len());
    while let Some(joined) = set.join_next().await {
        if let Ok(result) = joined {
            out.push(result);
        }
    }
    out
}
