//! HTTP plumbing shared by the ZeroTier API clients: auth header, timeouts, pacing, and turning
//! every failure into a [`FetchError`] that says what to do.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::FetchError;
use crate::ids::NetworkId;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Used when a 429 carries no usable hint.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(10);

/// Spaces out requests to one API across all networks that use it. Central allows 20
/// requests/s on free accounts; one request per 100 ms stays at half that however many
/// networks start polling at the same moment.
pub struct Pacer {
    next: Mutex<Instant>,
    gap: Duration,
}

impl Pacer {
    pub fn new(gap: Duration) -> Arc<Pacer> {
        Arc::new(Pacer {
            next: Mutex::new(Instant::now()),
            gap,
        })
    }

    /// Waits for this caller's turn. The lock is held while sleeping, so turns are handed out
    /// in order, at least one `gap` apart: the next turn counts from when this one really
    /// began (a sleep that overran on a busy machine must not bring the next request closer).
    async fn turn(&self) {
        let mut next = self.next.lock().await;
        if *next > Instant::now() {
            tokio::time::sleep_until(*next).await;
        }
        *next = Instant::now() + self.gap;
    }
}

/// How an API authenticates and what to tell the user when it refuses.
pub struct Auth {
    pub header: HeaderName,
    pub value: String,
    /// Where the token comes from, for the 401 message.
    pub hint: &'static str,
}

pub struct Api {
    http: reqwest::Client,
    base: String,
    network: NetworkId,
    timeout: Duration,
    hint: &'static str,
    pacer: Option<Arc<Pacer>>,
}

impl Api {
    pub fn new(
        base: &str,
        auth: Auth,
        network: NetworkId,
        timeout: Duration,
        pacer: Option<Arc<Pacer>>,
    ) -> Result<Api, FetchError> {
        let mut value =
            HeaderValue::from_str(&auth.value).map_err(|_| FetchError::Unauthorized {
                url: base.to_owned(),
                hint: auth.hint,
            })?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(auth.header, value);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("backhaul-dns/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .build()
            .map_err(|e| FetchError::Connect {
                url: base.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_owned(),
            network,
            timeout,
            hint: auth.hint,
            pacer,
        })
    }

    /// GETs `path` and parses it. `Ok(None)` is a 404 when `missing_ok` (a member deleted
    /// between listing and fetching); otherwise 403/404 mean the network is not visible.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &'static str,
        missing_ok: bool,
    ) -> Result<Option<T>, FetchError> {
        self.call(self.http.get(self.url(path)), path, what, missing_ok)
            .await
    }

    /// POSTs a JSON body (a partial update) and parses the answer.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
        what: &'static str,
    ) -> Result<T, FetchError> {
        let request = self.http.post(self.url(path)).json(body);
        Ok(self
            .call(request, path, what, false)
            .await?
            .expect("404 is an error unless missing_ok"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
        what: &'static str,
        missing_ok: bool,
    ) -> Result<Option<T>, FetchError> {
        if let Some(p) = &self.pacer {
            p.turn().await;
        }
        let url = self.url(path);
        let resp = request
            .send()
            .await
            .map_err(|e| self.transport_error(&url, e))?;
        let status = resp.status();
        match status {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND if missing_ok => return Ok(None),
            StatusCode::UNAUTHORIZED => {
                return Err(FetchError::Unauthorized {
                    url,
                    hint: self.hint,
                })
            }
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
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| FetchError::BadResponse {
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
