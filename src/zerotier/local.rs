//! The local zerotier-one service API
//! (<https://github.com/zerotier/ZeroTierOne/blob/dev/service/README.md>): which interface and
//! addresses this host has on a network.

use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use thiserror::Error;

use crate::ids::NetworkId;
use crate::secret::Secret;

const TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /network/{nwid}`: only what listening needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LocalNetwork {
    status: Option<String>,
    port_device_name: Option<String>,
    assigned_addresses: Option<Vec<String>>,
}

/// This host's membership in one network, as the service reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub device: String,
    /// Addresses with their prefix length (`10.147.17.5/24`).
    pub addresses: Vec<IpNet>,
}

/// Why the local service gave no usable answer; each says what to do.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LocalError {
    #[error("zerotier-one is not running: nothing answers at {url} ({reason})")]
    NotRunning { url: String, reason: String },
    #[error("the local zerotier-one service rejected the token from {file} (HTTP 401)")]
    Rejected { file: String },
    #[error("this host has not joined network {network}: run `zerotier-cli join {network}`")]
    NotJoined { network: NetworkId },
    #[error("network {network} is {status} on this host; authorize this member in the network's controller")]
    NotReady { network: NetworkId, status: String },
    #[error("the local zerotier-one service answered HTTP {status} for network {network}")]
    Status { network: NetworkId, status: u16 },
    #[error("the local zerotier-one service sent an unreadable answer: {reason}")]
    BadResponse { reason: String },
}

pub struct LocalClient {
    http: reqwest::Client,
    url: String,
    token: Secret,
    token_file: String,
    network: NetworkId,
}

impl LocalClient {
    pub fn new(url: &str, token: Secret, token_file: String, network: NetworkId) -> LocalClient {
        LocalClient {
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
            url: url.trim_end_matches('/').to_owned(),
            token,
            token_file,
            network,
        }
    }

    pub async fn membership(&self) -> Result<Membership, LocalError> {
        let url = format!("{}/network/{}", self.url, self.network);
        let resp = self
            .http
            .get(&url)
            .header("X-ZT1-Auth", self.token.expose())
            .send()
            .await
            .map_err(|e| LocalError::NotRunning {
                url: self.url.clone(),
                reason: if e.is_timeout() {
                    "timed out".into()
                } else {
                    std::error::Error::source(&e)
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| e.to_string())
                },
            })?;
        match resp.status().as_u16() {
            200 => {}
            401 => {
                return Err(LocalError::Rejected {
                    file: self.token_file.clone(),
                })
            }
            404 => {
                return Err(LocalError::NotJoined {
                    network: self.network,
                })
            }
            status => {
                return Err(LocalError::Status {
                    network: self.network,
                    status,
                })
            }
        }
        let body = resp.bytes().await.map_err(|e| LocalError::BadResponse {
            reason: e.to_string(),
        })?;
        let net: LocalNetwork =
            serde_json::from_slice(&body).map_err(|e| LocalError::BadResponse {
                reason: e.to_string(),
            })?;
        let status = net.status.unwrap_or_default();
        if status != "OK" {
            return Err(LocalError::NotReady {
                network: self.network,
                status: if status.is_empty() {
                    "not configured".into()
                } else {
                    status
                },
            });
        }
        let device = net.port_device_name.unwrap_or_default();
        // Older clients print IPv6 uncompressed; parsing (not comparing strings) handles both.
        let addresses = net
            .assigned_addresses
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a.trim().parse::<IpNet>().ok())
            .collect();
        Ok(Membership { device, addresses })
    }
}
