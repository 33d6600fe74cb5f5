//! ZeroTier Central API v1 client: `GET /network/{id}` and `GET /network/{id}/member`.

use crate::lock::lock;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::AUTHORIZATION;
use std::sync::Mutex;

use serde_json::json;

use super::api::{Api, Auth, Pacer};
use super::models::{self, DnsSettings, Network};
use super::{FetchError, MemberWarnings, NetworkSnapshot};
use crate::ids::NetworkId;
use crate::secret::Secret;

pub struct Client {
    api: Api,
    network: NetworkId,
    /// `config.dns` as last fetched, to push only when it differs.
    dns: Mutex<Option<DnsSettings>>,
    warnings: MemberWarnings,
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
            dns: Mutex::new(None),
            warnings: MemberWarnings::default(),
        })
    }

    /// Network first (address modes, routes), then members: both must succeed.
    pub async fn fetch(&self) -> Result<NetworkSnapshot, FetchError> {
        let path = format!("/network/{}", self.network);
        let network: Network = self.required(&path, "network object").await?;
        let dns = DnsSettings::from_json(network.config.as_ref().and_then(|c| c.dns.as_ref()));
        *lock(&self.dns) = Some(dns);
        let list: models::RawMembers = self
            .required(&format!("{path}/member"), "member list")
            .await?;
        let id = self.network;
        let members = crate::background::run(move || {
            let list: Vec<&serde_json::value::RawValue> = list.iter().map(AsRef::as_ref).collect();
            models::parse_members(&list)
        })
        .await
        .ok_or_else(|| FetchError::BadResponse {
            url: self.api.url(&format!("{path}/member")),
            what: "member list",
            reason: super::PARSE_PANICKED.into(),
        })?;
        let (members, problems) = members;
        self.warnings.report(id, problems);
        Ok(network.into_snapshot(self.network, members))
    }

    /// Sets the network's DNS settings (`config.dns`) if they differ from what the last fetch
    /// saw. Returns whether it wrote anything.
    pub async fn push_dns(&self, wanted: &DnsSettings) -> Result<bool, FetchError> {
        if lock(&self.dns).as_ref() == Some(wanted) {
            return Ok(false);
        }
        // A partial update: only config.dns changes.
        let body = json!({"config": {"dns": {"domain": wanted.domain, "servers": wanted.servers}}});
        let path = format!("/network/{}", self.network);
        let _: serde_json::Value = self.api.post(&path, &body, "network object").await?;
        *lock(&self.dns) = Some(wanted.clone());
        Ok(true)
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
