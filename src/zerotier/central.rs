//! ZeroTier Central API v1 client: `GET /network/{id}` and `GET /network/{id}/member`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::AUTHORIZATION;
use serde_json::Value;

use super::api::{Api, Auth, Pacer};
use super::models::{self, Network};
use super::{FetchError, NetworkId, NetworkSnapshot};
use crate::config::Secret;

pub struct Client {
    api: Api,
    network: NetworkId,
}

impl Client {
    pub fn new(
        api_url: &str,
        token: Secret,
        network: NetworkId,
        timeout: Duration,
        pacer: Arc<Pacer>,
    ) -> Result<Client, FetchError> {
        let auth = Auth {
            header: AUTHORIZATION,
            value: format!("token {}", token.expose()),
            hint: "token_file or the environment variable BACKHAUL_DNS_TOKEN",
        };
        Ok(Client {
            api: Api::new(api_url, auth, network, timeout, Some(pacer))?,
            network,
        })
    }

    /// Network first (address modes, routes), then members: both must succeed.
    pub async fn fetch(&self) -> Result<NetworkSnapshot, FetchError> {
        let path = format!("/network/{}", self.network);
        let network: Network = self.required(&path, "network object").await?;
        let list: Vec<Value> = self
            .required(&format!("{path}/member"), "member list")
            .await?;
        let members = models::parse_members(self.network, list);
        Ok(network.into_snapshot(self.network, members))
    }

    async fn required<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        what: &'static str,
    ) -> Result<T, FetchError> {
        Ok(self
            .api
            .get(path, what, false)
            .await?
            .expect("404 is an error unless missing_ok"))
    }
}
