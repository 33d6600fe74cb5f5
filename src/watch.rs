//! Watched files: the config file, the records files and `members_file`s, turned into reload
//! and sync requests.
//!
//! Editors save by writing a new file and renaming it over the old one, which ends a watch on
//! the file itself; so the parent directories are watched and events are matched by path.
//! A save is several events (create, write, rename): they are gathered until things have
//! been quiet for [`DEBOUNCE`], then acted on once.

use crate::lock::lock;
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
            let targets = lock(&seen);
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

    /// Watches the files `config` names (and the config file itself), and the files the
    /// records files `$INCLUDE` (`included`), and only those.
    pub fn follow(&mut self, config: &Config, included: &[PathBuf]) {
        let mut wanted: HashMap<PathBuf, Change> = HashMap::new();
        wanted.insert(absolute(&config.path), Change::Reload);
        for p in included {
            wanted.insert(absolute(p), Change::Reload);
        }
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
        *lock(&self.targets) = wanted;
    }
}

/// How long a watched file that became empty must stay empty before it is applied: editors
/// (nano, `cat > file`) truncate a file before they write it, and serving that moment would
/// answer NXDOMAIN for every name in it (cached by resolvers for the negative TTL).
pub const EMPTY_GRACE: Duration = Duration::from_secs(2);

/// Holds back files that are being written: modified within [`DEBOUNCE`], or empty for less
/// than [`EMPTY_GRACE`]. A file that stays empty is applied after that, so an intentionally
/// empty file still works.
#[derive(Default)]
pub struct Settling {
    /// Each file seen empty: since when, and the modification time and inode it had then.
    empty_since: HashMap<PathBuf, (Instant, Option<std::time::SystemTime>, u64)>,
}

impl Settling {
    /// `None` when every file in `paths` can be read now; else how long to wait before
    /// looking again. Missing files are settled (reading them reports the error).
    pub fn wait(&mut self, paths: &[&Path]) -> Option<Duration> {
        let now = Instant::now();
        let mut wait: Option<Duration> = None;
        let mut later = |d: Duration| wait = Some(wait.map_or(d, |w| w.max(d)));
        for path in paths {
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            // Still being written: the last change is too recent. (A time in the future, a
            // clock set back, counts as settled rather than waiting for it.)
            let age = meta.modified().ok().and_then(|m| m.elapsed().ok());
            if let Some(age) = age.filter(|a| *a < DEBOUNCE) {
                later(DEBOUNCE - age);
            }
            if meta.len() == 0 {
                // Empty *and unchanged* for the whole grace period: a file emptied and
                // written again in between (an editor, a script on a slow disk) starts the
                // wait over, even if every look happened to find it empty.
                use std::os::unix::fs::MetadataExt;
                let seen = (meta.modified().ok(), meta.ino());
                let entry = self.empty_since.entry(path.to_path_buf());
                let (since, ..) = *entry
                    .and_modify(|e| {
                        if (e.1, e.2) != seen {
                            *e = (now, seen.0, seen.1);
                        }
                    })
                    .or_insert((now, seen.0, seen.1));
                let empty_for = now.duration_since(since);
                if empty_for < EMPTY_GRACE {
                    later(EMPTY_GRACE - empty_for);
                }
            } else {
                self.empty_since.remove(*path);
            }
        }
        wait
    }
}

/// What identifies the content of each file now (modification time, inode, length; `None` when
/// it cannot be read): taken before and after reading files, equal stamps mean the read saw one
/// version of each, not a file truncated or rewritten while it was being read.
pub fn stamps(paths: &[&Path]) -> Vec<Option<(Option<std::time::SystemTime>, u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    (paths.iter())
        .map(|p| {
            let meta = std::fs::metadata(p).ok()?;
            Some((meta.modified().ok(), meta.ino(), meta.len()))
        })
        .collect()
}

/// The longest a change waits for the files to be quiet: a file rewritten again and again
/// (faster than [`DEBOUNCE`]) is still looked at this often.
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(2);

/// Changes gathered until the files have been quiet for [`DEBOUNCE`], or for at most
/// [`MAX_DEBOUNCE`] since the first of them. Plain state, so the serve loop can wait for it in
/// a `select!` without losing a half-gathered batch.
#[derive(Default)]
pub struct Pending {
    changes: BTreeSet<Change>,
    due: Option<Instant>,
    /// When the oldest change not acted on yet arrived.
    first: Option<Instant>,
}

impl Pending {
    pub fn add(&mut self, change: Change) {
        self.add_at(change, Instant::now());
    }

    fn add_at(&mut self, change: Change, now: Instant) {
        self.changes.insert(change);
        let first = *self.first.get_or_insert(now);
        self.due = Some((now + DEBOUNCE).min(first + MAX_DEBOUNCE).max(now));
    }

    /// When the gathered changes are to be acted on; `None` while there are none.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Acts on `change` again after `wait` (a file that was not settled yet), unless
    /// something sooner is due.
    pub fn retry(&mut self, change: Change, wait: Duration) {
        self.changes.insert(change);
        let at = Instant::now() + wait;
        self.due = Some(self.due.map_or(at, |d| d.min(at)));
    }

    pub fn take(&mut self) -> BTreeSet<Change> {
        self.due = None;
        self.first = None;
        std::mem::take(&mut self.changes)
    }
}

/// Events carry absolute paths; a relative config path must match them.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_coming_faster_than_the_debounce_are_still_acted_on() {
        let mut pending = Pending::default();
        let start = Instant::now();
        pending.add_at(Change::Reload, start);
        assert_eq!(
            pending.due(),
            Some(start + DEBOUNCE),
            "quiet for the debounce"
        );
        // A change every 100 ms for 3 s would push "quiet for 300 ms" out for ever: it is
        // due 2 s after the first all the same.
        for i in 1..=30 {
            pending.add_at(Change::Reload, start + Duration::from_millis(100 * i));
        }
        assert_eq!(pending.due(), Some(start + Duration::from_secs(3)));
        let mut fresh = Pending::default();
        for i in 0..=19 {
            fresh.add_at(Change::Reload, start + Duration::from_millis(100 * i));
        }
        assert_eq!(fresh.due(), Some(start + MAX_DEBOUNCE));
        assert_eq!(fresh.take().len(), 1);
        assert!(fresh.due().is_none() && fresh.first.is_none());
    }

    #[test]
    fn fresh_and_newly_empty_files_wait_then_settle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.zone");
        let mut settling = Settling::default();
        std::fs::write(&path, "a A 10.0.0.1\n").unwrap();
        // Just written: wait for the debounce.
        let wait = settling.wait(&[&path]).unwrap();
        assert!(wait <= DEBOUNCE, "{wait:?}");
        // Made old: settled.
        let old = std::time::SystemTime::now() - Duration::from_secs(10);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(settling.wait(&[&path]), None);
        // Emptied (and old): held for the grace period from the first sight of it empty.
        std::fs::File::create(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let wait = settling.wait(&[&path]).unwrap();
        assert!(wait > DEBOUNCE && wait <= EMPTY_GRACE, "{wait:?}");
        let (_, modified, ino) = settling.empty_since[&path];
        settling
            .empty_since
            .insert(path.clone(), (Instant::now() - EMPTY_GRACE, modified, ino));
        assert_eq!(
            settling.wait(&[&path]),
            None,
            "empty for long enough: applied"
        );
        // Emptied long ago as far as the first look knows, but written and emptied again
        // since (another modification time): the grace period starts over.
        let (_, _, ino) = settling.empty_since[&path];
        let earlier = old - Duration::from_secs(60);
        settling.empty_since.insert(
            path.clone(),
            (Instant::now() - EMPTY_GRACE, Some(earlier), ino),
        );
        assert!(
            settling.wait(&[&path]).is_some(),
            "rewritten in between: not settled"
        );
        // A missing file is for the reader to report.
        assert_eq!(settling.wait(&[&dir.path().join("nope")]), None);
    }
}
