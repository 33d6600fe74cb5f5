//! Watched files: the config file, the records files and `members_file`s, turned into reload
//! and sync requests.
//!
//! Editors save by writing a new file and renaming it over the old one, which ends a watch on
//! the file itself; so the parent directories are watched and events are matched by path.
//! A save is several events (create, write, rename): they are gathered until things have
//! been quiet for [`DEBOUNCE`], then acted on once.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::{Config, Source};
use crate::ids::NetworkId;

/// How long the files must be quiet before a change is acted on.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// What a changed file asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// The config file or a records file: reload the configuration.
    Reload,
    /// A network's members file: sync that network now.
    Members(NetworkId),
}

pub struct FileWatch {
    watcher: RecommendedWatcher,
    dirs: BTreeSet<PathBuf>,
    targets: Arc<Mutex<HashMap<PathBuf, Change>>>,
}

impl FileWatch {
    /// Starts the watcher thread; changes arrive on `tx` as they happen (see [`Pending`]).
    pub fn new(tx: mpsc::UnboundedSender<Change>) -> notify::Result<FileWatch> {
        let targets: Arc<Mutex<HashMap<PathBuf, Change>>> = Arc::default();
        let seen = targets.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            // Reading a file (ours included) is not a change.
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            let Ok(targets) = seen.lock() else { return };
            for path in &event.paths {
                if let Some(change) = targets.get(path) {
                    let _ = tx.send(*change);
                }
            }
        })?;
        Ok(FileWatch {
            watcher,
            dirs: BTreeSet::new(),
            targets,
        })
    }

    /// Watches the files `config` names (and the config file itself), and only those.
    pub fn follow(&mut self, config: &Config) {
        let mut wanted: HashMap<PathBuf, Change> = HashMap::new();
        wanted.insert(absolute(&config.path), Change::Reload);
        if let Some(p) = &config.records_file {
            wanted.insert(absolute(p), Change::Reload);
        }
        if let Some(p) = &config.public {
            wanted.insert(absolute(&p.zone_file), Change::Reload);
        }
        for net in &config.networks {
            if let Source::File { members_file } = &net.source {
                wanted.insert(absolute(members_file), Change::Members(net.id));
            }
        }
        let dirs: BTreeSet<PathBuf> = wanted
            .keys()
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect();
        for gone in self.dirs.difference(&dirs) {
            let _ = self.watcher.unwatch(gone);
        }
        for dir in dirs.difference(&self.dirs) {
            if let Err(e) = self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(directory = %dir.display(), error = %e,
                    "cannot watch this directory: changes in it need SIGHUP to take effect");
            }
        }
        self.dirs = dirs;
        if let Ok(mut targets) = self.targets.lock() {
            *targets = wanted;
        }
    }
}

/// Changes gathered until the files have been quiet for [`DEBOUNCE`]. Plain state, so the
/// serve loop can wait for it in a `select!` without losing a half-gathered batch.
#[derive(Default)]
pub struct Pending {
    changes: BTreeSet<Change>,
    due: Option<Instant>,
}

impl Pending {
    pub fn add(&mut self, change: Change) {
        self.changes.insert(change);
        self.due = Some(Instant::now() + DEBOUNCE);
    }

    /// When the gathered changes are to be acted on; `None` while there are none.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    pub fn take(&mut self) -> BTreeSet<Change> {
        self.due = None;
        std::mem::take(&mut self.changes)
    }
}

/// Events carry absolute paths; a relative config path must match them.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
