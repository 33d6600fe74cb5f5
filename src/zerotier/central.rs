//! ZeroTier Central API v1 client: `GET /network/{id}` and `GET /network/{id}/member`.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::models::{self, Network};
use super::{FetchError, NetworkId, NetworkSnapshot};
use crate::config::Secret;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Used when a 429 carries no usable hint.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(10);

pub struct Client {
    http: reqwest::Client,
    base: String,
    network: NetworkId,
    timeout: Duration,
}

impl Client {
    /// `timeout` bounds a whole request, body included: a slow API must not hold a sync forever.
    pub fn new(
        api_url: &str,
        token: Secret,
        network: NetworkId,
        timeout: Duration,
    ) -> Result<Client, FetchError> {
        let mut auth =
            HeaderValue::from_str(&format!("token {}", token.expose())).map_err(|_| {
                FetchError::Unauthorized {
                    url: api_url.to_owned(),
                }
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("backhaul-dns/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .build()
            .map_err(|e| FetchError::Connect {
                url: api_url.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Client {
            http,
            base: api_url.trim_end_matches('/').to_owned(),
            network,
            timeout,
        })
    }

    /// Network first (address modes, routes), then members: both must succeed.
    pub async fn fetch(&self) -> Result<NetworkSnapshot, FetchError> {
        let network: Network = self
            .get_json(&format!("/network/{}", self.network), "network object")
            .await?;
        let list: Vec<Value> = self
            .get_json(&format!("/network/{}/member", self.network), "member list")
            .await?;
        let members = models::parse_members(self.network, list);
        Ok(network.into_snapshot(self.network, members))
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &'static str,
    ) -> Result<T, FetchError> {
        let url = format!("{}{}", self.base, path);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| self.transport_error(&url, e))?;
        let status = resp.status();
        match status {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED => return Err(FetchError::Unauthorized { url }),
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                return Err(FetchError::NoAccess {
                    network: self.network,
                    status: status.as_u16(),
                })
            }
            StatusCode::TOO_MANY_REQUESTS => {
                return Err(FetchError::RateLimited {
                    retry_after: retry_hint(resp.headers()).unwrap_or(DEFAULT_RATE_LIMIT_WAIT),
                })
            }
            _ => {
                return Err(FetchError::Status {
                    url,
                    status: status.as_u16(),
                })
            }
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(&url, e))?;
        serde_json::from_slice(&body).map_err(|e| FetchError::BadResponse {
            url,
            what,
            reason: e.to_string(),
        })
    }

    fn transport_error(&self, url: &str, e: reqwest::Error) -> FetchError {
        if e.is_timeout() {
            return FetchError::Timeout {
                url: url.to_owned(),
                timeout: self.timeout,
            };
        }
        // The full source chain says *why* (refused, DNS, TLS); reqwest never includes headers.
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        FetchError::Connect {
            url: url.to_owned(),
            reason,
        }
    }
}

/// `Retry-After` in seconds or as an HTTP date, else Central's `X-Ratelimit-Reset` HTTP date.
fn retry_hint(headers: &HeaderMap) -> Option<Duration> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let until = |date: &str| {
        httpdate_to_system(date).and_then(|t| t.duration_since(std::time::SystemTime::now()).ok())
    };
    if let Some(v) = text(RETRY_AFTER.as_str()) {
        if let Ok(secs) = v.trim().parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Some(d) = until(v) {
            return Some(d);
        }
    }
    text("x-ratelimit-reset").and_then(until)
}

fn httpdate_to_system(text: &str) -> Option<std::time::SystemTime> {
    // Central sends "Tue, 06 Aug 2024 20:53:48 UTC"; RFC 7231 says "GMT". Accept both.
    let t = text.trim().replace(" UTC", " GMT");
    humantime::parse_rfc3339_weak(&t)
        .ok()
        .or_else(|| parse_imf_fixdate(&t))
}

/// Parses `Sun, 06 Nov 1994 08:49:37 GMT` (the only HTTP date form still sent).
fn parse_imf_fixdate(s: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: u64 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as u64
        + 1;
    let year: u64 = parts[3].parse().ok()?;
    let hms: Vec<u64> = parts[4].split(':').filter_map(|x| x.parse().ok()).collect();
    if hms.len() != 3 {
        return None;
    }
    let rfc3339 = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        hms[0], hms[1], hms[2]
    );
    humantime::parse_rfc3339(&rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_hint(&h), Some(Duration::from_secs(7)));
        let soon = std::time::SystemTime::now() + Duration::from_secs(120);
        let date = humantime::format_rfc3339_seconds(soon).to_string();
        // 2026-11-24T17:00:00Z -> Tue, 24 Nov 2026 17:00:00 UTC (weekday is not checked)
        let (d, t) = date.trim_end_matches('Z').split_once('T').unwrap();
        let ymd: Vec<&str> = d.split('-').collect();
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let m = months[ymd[1].parse::<usize>().unwrap() - 1];
        let http = format!("Tue, {} {m} {} {t} UTC", ymd[2], ymd[0]);
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_str(&http).unwrap());
        let got = retry_hint(&h).unwrap();
        assert!(
            got > Duration::from_secs(100) && got <= Duration::from_secs(120),
            "{got:?}"
        );
    }
}
