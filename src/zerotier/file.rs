//! Members from a file: the JSON Central returns for `GET /network/{id}/member`, or
//! `{"network": <GET /network/{id}>, "members": [...]}` to also give routes and IPv6 modes.

use std::path::PathBuf;

use serde::Deserialize;

use serde_json::value::RawValue;

use super::models::{self, Network};
use super::{FetchError, MemberWarnings, NetworkSnapshot};
use crate::ids::NetworkId;

pub struct MembersFile {
    path: PathBuf,
    network: NetworkId,
    warnings: std::sync::Arc<MemberWarnings>,
}

/// `{"network": ..., "members": [...]}`. (The plain list is told apart by its first byte:
/// serde's untagged enums cannot hold raw JSON values.)
#[derive(Deserialize)]
struct WithNetwork<'a> {
    #[serde(default)]
    network: Option<Network>,
    #[serde(borrow)]
    members: Vec<&'a RawValue>,
}

impl MembersFile {
    pub fn new(path: PathBuf, network: NetworkId) -> MembersFile {
        MembersFile {
            path,
            network,
            warnings: std::sync::Arc::default(),
        }
    }

    pub async fn fetch(&self) -> Result<NetworkSnapshot, FetchError> {
        let err = |reason: String| FetchError::File {
            path: self.path.display().to_string(),
            reason,
        };
        let (path, id, warnings) = (self.path.clone(), self.network, self.warnings.clone());
        // Reading too: a large file is a large copy, and it happens on every poll.
        crate::background::run(move || {
            let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
            let (snapshot, problems) = parse_reporting(&bytes, id)?;
            warnings.report(id, problems);
            Ok(snapshot)
        })
        .await
        .unwrap_or_else(|| Err(super::PARSE_PANICKED.into()))
        .map_err(err)
    }
}

/// A members file's content -> the network's snapshot; the error says what was expected.
/// Problems with single members are left out (see [`parse_reporting`]).
pub fn parse(bytes: &[u8], id: NetworkId) -> Result<NetworkSnapshot, String> {
    parse_reporting(bytes, id).map(|(snapshot, _)| snapshot)
}

/// [`parse`], with a line for each problem with a single member.
pub fn parse_reporting(
    bytes: &[u8],
    id: NetworkId,
) -> Result<(NetworkSnapshot, Vec<String>), String> {
    let expected = |e: serde_json::Error| {
        format!(
            "{e}; expected a JSON array of members, or {{\"network\": {{...}}, \"members\": [...]}}"
        )
    };
    let is_list = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let (network, list) = if is_list {
        let list: Vec<&RawValue> = serde_json::from_slice(bytes).map_err(expected)?;
        (Network::default(), list)
    } else {
        let w: WithNetwork = serde_json::from_slice(bytes).map_err(expected)?;
        (w.network.unwrap_or_default(), w.members)
    };
    let (members, problems) = models::parse_members(&list);
    Ok((network.into_snapshot(id, members), problems))
}
