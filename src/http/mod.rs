//! The operator's HTTP endpoint (`[http] listen`): `/` (the status page, [`page`]),
//! `/api/v1/names` (every name served, JSON), `/hosts` (a hosts file), `/healthz` (the
//! process is alive), `/readyz` (answering, with a zone for every network; JSON detail) and
//! `/metrics` (Prometheus text format).

mod page;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;

use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::dns::access::SharedAcl;
use crate::metrics::Telemetry;
use crate::sync::publish::Names;
use crate::zone::Directory;

/// Binds the endpoint (a busy port is a start-up error, not a silent one later).
pub async fn bind(listen: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "http endpoint listening (/ /api/v1/names /hosts /healthz /readyz /metrics)");
    Ok(listener)
}

/// Serves the endpoint until `shutdown` is cancelled (requests under way are finished).
pub async fn serve(
    listener: tokio::net::TcpListener,
    telemetry: Arc<Telemetry>,
    names: Arc<Names>,
    clients: SharedAcl,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/", get(status_page))
        .route("/api/v1/names", get(names_json))
        .route("/hosts", get(hosts))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Endpoint { telemetry, names })
        .layer(axum::middleware::from_fn_with_state(clients, only_allowed));
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Loopback, the listening interfaces' subnets and `[http] allow` may ask; everyone else
/// gets 403, as DNS clients outside them get REFUSED.
async fn only_allowed(
    State(clients): State<SharedAcl>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let ip = peer.ip().to_canonical();
    if ip.is_loopback() || clients.load().allows(ip) {
        return next.run(request).await;
    }
    (
        StatusCode::FORBIDDEN,
        "not allowed: add this client to [http] allow\n",
    )
        .into_response()
}

/// What the handlers read.
#[derive(Clone)]
struct Endpoint {
    telemetry: Arc<Telemetry>,
    names: Arc<Names>,
}

/// The directory of the last build, worked out off the async workers (a zone build's worth
/// of work the first time after a build); `None` before the first build.
async fn directory(names: &Arc<Names>) -> Option<Arc<Directory>> {
    let names = names.clone();
    tokio::task::spawn_blocking(move || names.directory())
        .await
        .ok()
        .flatten()
}

fn not_yet() -> axum::response::Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "no zone built yet: try again in a moment\n",
    )
        .into_response()
}

async fn names_json(State(e): State<Endpoint>) -> axum::response::Response {
    match directory(&e.names).await {
        Some(d) => axum::Json(d.as_ref()).into_response(),
        None => not_yet(),
    }
}

async fn hosts(State(e): State<Endpoint>) -> axum::response::Response {
    match directory(&e.names).await {
        Some(d) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            d.hosts(),
        )
            .into_response(),
        None => not_yet(),
    }
}

async fn status_page(
    State(e): State<Endpoint>,
    Query(query): Query<page::PageQuery>,
) -> axum::response::Response {
    let directory = directory(&e.names).await.unwrap_or_default();
    let html = page::render(
        &e.telemetry.readiness(),
        &directory,
        clock::unix_now(),
        &query,
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing on the page comes from elsewhere, and nothing may.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
            ),
        ],
        html,
    )
        .into_response()
}

async fn readyz(State(e): State<Endpoint>) -> impl IntoResponse {
    let readiness = e.telemetry.readiness();
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(readiness))
}

async fn metrics(State(e): State<Endpoint>) -> impl IntoResponse {
    let t = &e.telemetry;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        t.encode(),
    )
}
