//! ZeroTier Central webhooks (<https://docs.zerotier.com/central/webhooks>): a verified member or network event re-syncs
//! that network at once. Polling stays the safety net.
//!
//! Central delivers only to a public HTTPS URL, so this endpoint sits behind a reverse proxy
//! (nginx, Caddy) that terminates TLS and forwards to `[webhook] listen`.

use crate::lock::lock;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::sync::Triggers;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::ids::NetworkId;

/// Signatures older (or newer) than this are replays or clock trouble: rejected.
pub const TOLERANCE_SECS: u64 = 300;
pub const SIGNATURE_HEADER: &str = "x-ztc-signature";

/// Why a delivery was refused (all answered with 401).
#[derive(Debug, PartialEq, Eq)]
pub enum Reject {
    Missing,
    Malformed,
    Stale,
    BadSignature,
    /// A delivery already taken (the same signature again within the tolerance).
    Replayed,
}

/// At most this many `v*=` entries in one header: Central sends one, a secret rotation two.
/// Each costs a comparison, never another HMAC over the body, but a header of thousands is
/// refused before any work.
const MAX_SIGNATURES: usize = 4;
/// HMAC-SHA256 output.
const SIGNATURE_LEN: usize = 32;

/// Checks `X-ZTC-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`: some `v*` value must equal
/// `HMAC-SHA256(hex_decode(secret), "<t>," + body)` for some secret, and `t` must be within the
/// tolerance of `now`. One HMAC per secret, whatever the header holds; comparison is
/// constant-time. Returns the matching signature (for the replay check).
pub fn verify(
    secrets: &[Vec<u8>],
    header: Option<&str>,
    body: &[u8],
    now: u64,
) -> Result<[u8; SIGNATURE_LEN], Reject> {
    let header = header.ok_or(Reject::Missing)?;
    let mut t = None;
    let mut signatures: Vec<[u8; SIGNATURE_LEN]> = Vec::new();
    let mut entries = 0;
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(Reject::Malformed)?;
        if k == "t" {
            t = Some(v);
        } else if k.starts_with('v') {
            entries += 1;
            if entries > MAX_SIGNATURES {
                return Err(Reject::Malformed);
            }
            let bytes = hex::decode(v).map_err(|_| Reject::Malformed)?;
            // Another scheme's (or a truncated) signature cannot match: skipped.
            if let Ok(sig) = <[u8; SIGNATURE_LEN]>::try_from(bytes.as_slice()) {
                signatures.push(sig);
            }
        }
    }
    let t_text = t.ok_or(Reject::Malformed)?;
    let t: u64 = t_text.parse().map_err(|_| Reject::Malformed)?;
    if entries == 0 {
        return Err(Reject::Malformed);
    }
    if now.abs_diff(t) > TOLERANCE_SECS {
        return Err(Reject::Stale);
    }
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            continue; // HMAC takes keys of any length: never happens
        };
        mac.update(t_text.as_bytes());
        mac.update(b",");
        mac.update(body);
        for sig in &signatures {
            // A clone of the state after the body: comparing costs no second pass over it.
            if mac.clone().verify_slice(sig).is_ok() {
                return Ok(*sig);
            }
        }
    }
    Err(Reject::BadSignature)
}

/// Signatures accepted within the tolerance, so that a captured delivery cannot be replayed.
#[derive(Default)]
struct Seen {
    at: HashMap<[u8; SIGNATURE_LEN], u64>,
}

impl Seen {
    /// Records `sig` taken at `now`; false if it was taken before. Entries older than the
    /// tolerance go: a replay of those is refused as stale anyway.
    fn first_time(&mut self, sig: [u8; SIGNATURE_LEN], now: u64) -> bool {
        self.at
            .retain(|_, seen| now.abs_diff(*seen) <= 2 * TOLERANCE_SECS);
        self.at.insert(sig, now).is_none()
    }
}

/// The part of a hook payload we act on.
#[derive(Deserialize)]
struct Hook {
    hook_type: String,
    #[serde(default)]
    network_id: Option<String>,
}

/// Events that can change names or addresses.
fn changes_members(hook_type: &str) -> bool {
    matches!(
        hook_type,
        "NETWORK_JOIN"
            | "NETWORK_AUTH"
            | "NETWORK_DEAUTH"
            | "NETWORK_CONFIG_CHANGED"
            | "MEMBER_CONFIG_CHANGED"
            | "MEMBER_DELETED"
    )
}

struct Shared {
    secrets: Vec<Vec<u8>>,
    triggers: Triggers,
    seen: Mutex<Seen>,
}

/// Binds the webhook endpoint (a busy port is a start-up error, not a silent one later).
pub async fn bind(listen: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "webhook endpoint listening");
    Ok(listener)
}

/// Serves the webhook endpoint until `shutdown` is cancelled (deliveries under way are
/// finished).
pub async fn serve(
    listener: tokio::net::TcpListener,
    secrets: Vec<Vec<u8>>,
    triggers: Triggers,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .fallback(axum::routing::post(receive))
        .with_state(Arc::new(Shared {
            secrets,
            triggers,
            seen: Mutex::default(),
        }));
    // Central delivers from the internet: anyone may connect; the signature decides.
    let admit = |_| true;
    crate::http::conn::serve(
        listener,
        app,
        admit,
        crate::http::conn::Guard::WEBHOOK,
        shutdown,
    )
    .await
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let now = clock::unix_now();
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let verified = verify(&shared.secrets, header, &body, now).and_then(|sig| {
        let mut seen = lock(&shared.seen);
        if seen.first_time(sig, now) {
            Ok(())
        } else {
            Err(Reject::Replayed)
        }
    });
    if let Err(why) = verified {
        tracing::warn!(reason = ?why, "webhook rejected: unsigned, stale, replayed or wrong signature (check secret_file)");
        return (StatusCode::UNAUTHORIZED, "bad signature\n");
    }
    let hook: Hook = match serde_json::from_slice(&body) {
        Ok(h) => h,
        Err(_) => return (StatusCode::BAD_REQUEST, "not a ZeroTier webhook payload\n"),
    };
    let network = hook
        .network_id
        .as_deref()
        .and_then(|n| n.parse::<NetworkId>().ok());
    let trigger = network.and_then(|n| {
        let t = crate::lock::read(&shared.triggers).get(&n).cloned()?;
        Some((n, t))
    });
    match trigger {
        Some((network, trigger)) if changes_members(&hook.hook_type) => {
            tracing::info!(%network, hook = %hook.hook_type, "webhook: syncing now");
            trigger.notify_one();
        }
        _ => tracing::debug!(hook = %hook.hook_type, "webhook: nothing to do"),
    }
    // 2xx for everything verified, so Central does not retry events we do not act on.
    (StatusCode::OK, "ok\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "778c6dab5feca625c7831644d18c4d0e4b3a337bff8a1e1c8f938f9cc20e6536";
    const HEADER: &str =
        "t=1694033429,v1=04d87956d1953f28ac04d441f139fc655109e9b5c64396fb55dbdf567c735f86";
    const BODY: &str = r#"{"hook_id":"ae76d4c0-c94e-4025-a648-2c504eb90e3c","org_id":"1bb4dc96-f311-4c4a-ac93-551cbc0fa3da","hook_type":"NETWORK_JOIN","network_id":"19d9808567a17ccf","member_id":"a02505e545"}"#;

    fn secrets() -> Vec<Vec<u8>> {
        vec![hex::decode(SECRET).unwrap()]
    }

    #[test]
    fn published_test_vector() {
        assert_eq!(
            verify(&secrets(), Some(HEADER), BODY.as_bytes(), 1694033429 + 10).map(hex::encode),
            Ok(HEADER[16..].to_owned())
        );
    }

    #[test]
    fn rejections() {
        let s = secrets();
        let at = 1694033429;
        assert_eq!(verify(&s, None, BODY.as_bytes(), at), Err(Reject::Missing));
        let tampered = BODY.replace("a02505e545", "a02505e546");
        assert_eq!(
            verify(&s, Some(HEADER), tampered.as_bytes(), at),
            Err(Reject::BadSignature)
        );
        assert_eq!(
            verify(&s, Some(HEADER), BODY.as_bytes(), at + 301),
            Err(Reject::Stale)
        );
        assert_eq!(
            verify(&s, Some("t=1694033429"), BODY.as_bytes(), at),
            Err(Reject::Malformed)
        );
        assert_eq!(
            verify(&s, Some("garbage"), BODY.as_bytes(), at),
            Err(Reject::Malformed)
        );
        let other = vec![vec![1u8; 32]];
        assert_eq!(
            verify(&other, Some(HEADER), BODY.as_bytes(), at),
            Err(Reject::BadSignature)
        );
        // Several signatures (secret rotation): any match is enough.
        let two = format!("t=1694033429,v1=00ff,{}", &HEADER[13..]);
        assert!(verify(&s, Some(&two), BODY.as_bytes(), at).is_ok());
        // Thousands of signatures are refused before any HMAC.
        let many = format!("t=1694033429{}", ",v1=00".repeat(5000));
        assert_eq!(
            verify(&s, Some(&many), BODY.as_bytes(), at),
            Err(Reject::Malformed)
        );
    }

    #[test]
    fn a_delivery_is_taken_once() {
        let mut seen = Seen::default();
        assert!(seen.first_time([1; 32], 1000));
        assert!(!seen.first_time([1; 32], 1100));
        assert!(seen.first_time([2; 32], 1100));
        // Long after, the entry is gone (and the timestamp check refuses the replay anyway).
        assert!(seen.first_time([1; 32], 1000 + 3 * TOLERANCE_SECS));
    }
}
