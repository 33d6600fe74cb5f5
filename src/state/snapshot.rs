//! The last good member data of each network, kept in `state_dir/snapshots/` so that a restart
//! during an API outage still serves: written atomically after a sync that changed something,
//! touched after one that did not (its modification time is the last successful sync).
//!
//! Saving happens on a [`Writer`] thread, so the disk never delays a zone swap, and at most
//! once per network every [`SPACING`]: a burst of syncs (webhooks, a members file rewritten
//! many times a second) costs one write, not one fsync'd file per sync.

use crate::lock::lock;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::write_atomically;
use crate::ids::NetworkId;
use crate::zerotier::NetworkSnapshot;

/// Bumped if the file format changes incompatibly; other versions are ignored (and reported).
const FORMAT: u32 = 1;

#[derive(Deserialize)]
struct File {
    format: u32,
    snapshot: NetworkSnapshot,
}

/// `File` for writing, without copying the snapshot.
#[derive(Serialize)]
struct FileRef<'a> {
    format: u32,
    snapshot: &'a NetworkSnapshot,
}

pub struct Store {
    dir: PathBuf,
    warned: bool,
}

/// A snapshot read back at start-up.
pub struct Loaded {
    pub snapshot: NetworkSnapshot,
    /// How long ago the network last synced successfully.
    pub age: Duration,
}

impl Store {
    pub fn new(state_dir: &Path) -> Store {
        Store {
            dir: state_dir.join("snapshots"),
            warned: false,
        }
    }

    fn path(&self, network: NetworkId) -> PathBuf {
        self.dir.join(format!("{network}.json"))
    }

    /// The stored snapshot of `network`, if there is a readable one. A corrupt or foreign file
    /// is reported and ignored: the next good sync replaces it.
    pub fn load(&self, network: NetworkId) -> Option<Loaded> {
        let path = self.path(network);
        let bytes = super::read_if_there(&path, "cannot read snapshot; ignoring it")?;
        let file: File = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e,
                    "snapshot is corrupt; ignoring it (the next successful sync rewrites it)");
                return None;
            }
        };
        if file.format != FORMAT || file.snapshot.id != network {
            tracing::warn!(file = %path.display(), "snapshot is for another format or network; ignoring it");
            return None;
        }
        let age = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        Some(Loaded {
            snapshot: file.snapshot,
            age,
        })
    }

    /// Records a successful sync: rewrites the file when the data changed, else touches it.
    fn save(&mut self, snapshot: &NetworkSnapshot, changed: bool) {
        let path = self.path(snapshot.id);
        let result = if changed || !path.exists() {
            serde_json::to_vec(&FileRef {
                format: FORMAT,
                snapshot,
            })
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_atomically(&path, &bytes))
        } else {
            std::fs::File::options()
                .append(true)
                .open(&path)
                .and_then(|f| f.set_modified(SystemTime::now()))
        };
        match result {
            Ok(()) => self.warned = false,
            Err(e) if !self.warned => {
                self.warned = true;
                tracing::warn!(file = %path.display(), error = %e,
                    "cannot save the last good snapshot: make state_dir writable, or a restart \
                     during an API outage will have nothing to serve");
            }
            Err(_) => {}
        }
    }
}

/// Shortest time between two saves of one network's snapshot. A restart loses at most the
/// changes of this long (and then serves them again after its first sync).
pub const SPACING: Duration = Duration::from_secs(10);

/// What is waiting to be saved for a network: its latest snapshot, and whether any sync since
/// the last save changed the data (else only the file's modification time moves).
struct Job {
    snapshot: Arc<NetworkSnapshot>,
    changed: bool,
}

#[derive(Default)]
struct Queue {
    pending: HashMap<NetworkId, Job>,
    last: HashMap<NetworkId, Instant>,
    /// Save everything pending now, spacing or not (shutdown, a one-shot command).
    flush: bool,
    /// A save is in progress outside the lock.
    busy: bool,
    /// Every handle is gone: save what is pending and stop.
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
    spacing: Duration,
}

/// Saves snapshots on a thread of its own (file I/O and fsync never delay a zone swap),
/// coalescing the syncs of each network to one save per `spacing`. Clones share the thread,
/// which saves what is pending and stops when the last clone is dropped.
#[derive(Clone)]
pub struct Writer(Arc<Handle>);

struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        lock(&self.0.queue).closed = true;
        self.0.changed.notify_all();
    }
}

impl Writer {
    pub fn new(state_dir: &Path) -> Writer {
        Writer::with_spacing(state_dir, SPACING)
    }

    pub fn with_spacing(state_dir: &Path, spacing: Duration) -> Writer {
        let shared = Arc::new(Shared {
            queue: Mutex::default(),
            changed: Condvar::new(),
            spacing,
        });
        let store = Store::new(state_dir);
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("snapshot-writer".into())
            .spawn(move || {
                crate::background::lower_priority();
                write_loop(&worker, store);
            })
            .expect("cannot start the snapshot writer thread");
        Writer(Arc::new(Handle(shared)))
    }

    /// Records a successful sync of `snapshot`; `changed`: its data differs from the last one.
    pub fn save(&self, snapshot: &Arc<NetworkSnapshot>, changed: bool) {
        let shared = &self.0 .0;
        let mut queue = lock(&shared.queue);
        let job = (queue.pending.entry(snapshot.id)).or_insert_with(|| Job {
            snapshot: snapshot.clone(),
            changed,
        });
        job.snapshot = snapshot.clone();
        job.changed |= changed;
        drop(queue);
        shared.changed.notify_all();
    }

    /// Saves everything pending now and waits for it (at most `limit`).
    pub fn flush(&self, limit: Duration) {
        let shared = &self.0 .0;
        let deadline = Instant::now() + limit;
        let mut queue = lock(&shared.queue);
        queue.flush = true;
        shared.changed.notify_all();
        while !queue.pending.is_empty() || queue.busy {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!("snapshots are still being saved; not waiting any longer");
                break;
            }
            queue = shared
                .changed
                .wait_timeout(queue, left)
                .expect("snapshot queue")
                .0;
        }
        queue.flush = false;
    }
}

fn write_loop(shared: &Shared, mut store: Store) {
    let mut queue = lock(&shared.queue);
    loop {
        let now = Instant::now();
        let urgent = queue.flush || queue.closed;
        let due_at = |id: &NetworkId| queue.last.get(id).map(|t| *t + shared.spacing);
        let next = (queue.pending.keys())
            .map(|id| (*id, due_at(id).filter(|_| !urgent)))
            .min_by_key(|(_, at)| *at);
        match next {
            Some((id, at)) if at.is_none_or(|at| at <= now) => {
                let job = queue.pending.remove(&id).expect("picked from pending");
                queue.busy = true;
                drop(queue);
                store.save(&job.snapshot, job.changed);
                drop(job); // before `busy` clears: a flushed writer holds no snapshot
                queue = lock(&shared.queue);
                queue.busy = false;
                queue.last.insert(id, Instant::now());
                shared.changed.notify_all();
            }
            Some((_, Some(at))) => {
                queue = (shared.changed.wait_timeout(queue, at - now))
                    .expect("snapshot queue")
                    .0;
            }
            _ if queue.closed => return,
            _ => queue = shared.changed.wait(queue).expect("snapshot queue"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zerotier::Member;

    fn snap() -> NetworkSnapshot {
        NetworkSnapshot {
            id: NetworkId(0x8056c2e21c000001),
            rfc4193: true,
            sixplane: false,
            routes: vec!["10.147.17.0/24".parse().unwrap()],
            members: vec![Member {
                node: "a45dc9d260".parse().unwrap(),
                name: "db".into(),
                authorized: true,
                creation_time: Some(1),
                ips: vec!["10.147.17.2".parse().unwrap()],
                no_auto_assign_ips: false,
                hints: None,
                last_seen: None,
            }],
            tags: Vec::new(),
        }
    }

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::new(dir.path());
        let s = snap();
        assert!(store.load(s.id).is_none());
        store.save(&s, true);
        let loaded = store.load(s.id).unwrap();
        assert_eq!(loaded.snapshot, s);
        assert!(loaded.age < Duration::from_secs(5));
        let text = std::fs::read_to_string(store.path(s.id)).unwrap();
        assert!(text.contains("\"a45dc9d260\"") && text.contains("\"8056c2e21c000001\""));
        std::fs::write(store.path(s.id), &text[..text.len() / 2]).unwrap();
        assert!(store.load(s.id).is_none());
        assert!(store.load(NetworkId(1)).is_none());
    }

    /// The name of the only member in the stored snapshot, once there is one.
    fn stored_name(store: &Store, id: NetworkId) -> Option<String> {
        store.load(id).map(|l| l.snapshot.members[0].name.clone())
    }

    fn wait_for_name(store: &Store, id: NetworkId, name: &str) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(5);
        while stored_name(store, id).as_deref() != Some(name) {
            assert!(Instant::now() < deadline, "{name:?} never saved");
            std::thread::sleep(Duration::from_millis(5));
        }
        Instant::now()
    }

    fn named(name: &str) -> Arc<NetworkSnapshot> {
        let mut s = snap();
        s.members[0].name = name.into();
        Arc::new(s)
    }

    #[test]
    fn the_writer_saves_at_once_then_coalesces_flushes_and_saves_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let id = snap().id;
        let spacing = Duration::from_secs(1);
        let writer = Writer::with_spacing(dir.path(), spacing);

        writer.save(&named("db"), true);
        let first = wait_for_name(&store, id, "db");
        writer.save(&named("db2"), true);
        writer.save(&named("db3"), true);
        if first.elapsed() < spacing / 2 {
            assert_eq!(stored_name(&store, id).as_deref(), Some("db"), "spaced");
        }
        let second = wait_for_name(&store, id, "db3");
        assert!(second - first >= spacing * 9 / 10, "{:?}", second - first);

        // An unchanged sync after a change still writes the data of the change.
        writer.save(&named("db4"), true);
        writer.save(&named("db4"), false);
        writer.flush(Duration::from_secs(5));
        assert_eq!(stored_name(&store, id).as_deref(), Some("db4"), "flushed");

        writer.save(&named("db5"), true);
        drop(writer);
        wait_for_name(&store, id, "db5");
    }
}
