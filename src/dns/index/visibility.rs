//! What one client sees of the index: its scope (`[[scope]]`), found by its address, and for
//! each name it lands on whether that name exists for it (a hash probe each; an index
//! without scopes answers at once); and its own subnet, whose addresses it gets first.

use std::net::IpAddr;
use std::sync::Arc;

use super::{Node, ZoneIndex};
use crate::zone::ScopeMap;

/// How a name looks to one scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Visible,
    /// The name exists (names below it are seen) but holds nothing for this scope.
    NoData,
    /// The name does not exist for this scope.
    Gone,
}

impl ZoneIndex {
    /// The scope of a client, `None` when it is in none (or there are none): it sees all.
    #[inline]
    pub fn scope_of(&self, client: IpAddr) -> Option<u8> {
        if self.scopes.is_empty() {
            return None;
        }
        self.scopes.scope_of(client)
    }

    /// Whether the name of `node` exists for `scope`: its own masks, read with it.
    #[inline]
    pub fn visibility(&self, node: &Node<'_>, scope: Option<u8>) -> Visibility {
        let Some(scope) = scope else {
            return Visibility::Visible;
        };
        let bit = 1u32 << scope;
        if node.masks.gone & bit != 0 {
            Visibility::Gone
        } else if node.masks.hidden & bit != 0 {
            Visibility::NoData
        } else {
            Visibility::Visible
        }
    }

    /// The client's own network subnet (the most specific one holding its address), if any.
    #[inline]
    pub fn home(&self, client: IpAddr) -> Option<ipnet::IpNet> {
        if self.subnets.len() < 2 {
            // With one subnet (or none) there is nothing to put first.
            return None;
        }
        self.subnets.find(client)
    }

    /// The build's scopes (for the names directory and the status page).
    pub fn scopes(&self) -> &Arc<ScopeMap> {
        &self.scopes
    }
}
