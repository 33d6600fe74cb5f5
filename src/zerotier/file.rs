//! Members from a file: the JSON Central returns for `GET /network/{id}/member`, or
//! `{"network": <GET /network/{id}>, "members": [...]}` to also give routes and IPv6 modes.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use super::models::{self, Network};
use super::{FetchError, NetworkId, NetworkSnapshot};

pub struct MembersFile {
    path: PathBuf,
    network: NetworkId,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FileShape {
    List(Vec<Value>),
    WithNetwork {
        #[serde(default)]
        network: Option<Network>,
        members: Vec<Value>,
    },
}

impl MembersFile {
    pub fn new(path: PathBuf, network: NetworkId) -> MembersFile {
        MembersFile { path, network }
    }

    pub async fn fetch(&self) -> Result<NetworkSnapshot, FetchError> {
        let err = |reason: String| FetchError::File {
            path: self.path.display().to_string(),
            reason,
        };
        let bytes = tokio::fs::read(&self.path)
            .await
            .map_err(|e| err(e.to_string()))?;
        parse(&bytes, self.network).map_err(err)
    }
}

/// A members file's content -> the network's snapshot; the error says what was expected.
pub fn parse(bytes: &[u8], id: NetworkId) -> Result<NetworkSnapshot, String> {
    let shape: FileShape = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "{e}; expected a JSON array of members, or {{\"network\": {{...}}, \"members\": [...]}}"
        )
    })?;
    let (network, list) = match shape {
        FileShape::List(list) => (Network::default(), list),
        FileShape::WithNetwork { network, members } => (network.unwrap_or_default(), members),
    };
    let members = models::parse_members(id, list);
    Ok(network.into_snapshot(id, members))
}
