//! What the names directory (status page, `/api/v1/names`, `/hosts`) is worked out from: the
//! data of the last build, shared with the builder rather than copied.

use std::sync::Arc;

use crate::config;
use crate::records::FileRecords;
use crate::zerotier::NetworkSnapshot;
use crate::zone::{self, ScopeMap, Settings};

/// The data of one build, for working out the names directory later.
pub struct NamesSource {
    pub(super) networks: Vec<config::Network>,
    pub(super) snapshots: Vec<Option<Arc<NetworkSnapshot>>>,
    pub(super) settings: Settings,
    pub(super) files: FileRecords,
    /// The build's scopes: who sees which of these names.
    pub(super) scopes: Arc<ScopeMap>,
    /// The records updates wrote that the build served.
    pub(super) updated: zone::RecordList,
}

impl NamesSource {
    pub fn directory(&self) -> zone::Directory {
        let inputs: Vec<zone::Input<'_>> = (self.networks.iter().zip(&self.snapshots))
            .map(|(network, snapshot)| zone::Input {
                network,
                snapshot: snapshot.as_deref(),
            })
            .collect();
        zone::directory(&inputs, &self.settings, &self.files, &self.updated)
    }

    pub fn scopes(&self) -> &Arc<ScopeMap> {
        &self.scopes
    }
}
