//! The last good member data of each network, kept in `state_dir/snapshots/` so that a restart
//! during an API outage still serves: written atomically after a sync that changed something,
//! touched after one that did not (its modification time is the last successful sync).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::sync::write_atomically;
use crate::zerotier::{NetworkId, NetworkSnapshot};

/// Bumped if the file format changes incompatibly; other versions are ignored (and reported).
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct File {
    format: u32,
    snapshot: NetworkSnapshot,
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
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read snapshot; ignoring it");
                return None;
            }
        };
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
    pub fn save(&mut self, snapshot: &NetworkSnapshot, changed: bool) {
        let path = self.path(snapshot.id);
        let result = if changed || !path.exists() {
            serde_json::to_vec(&File {
                format: FORMAT,
                snapshot: snapshot.clone(),
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
            }],
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
}
