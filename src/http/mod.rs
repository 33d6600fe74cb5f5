//! The operator's HTTP endpoint (`[http] listen`): `/` (the status page, [`page`]),
//! `/api/v1/names` (every name served, JSON), `/hosts` (a hosts file), `/healthz` (the
//! process is alive), `/readyz` (answering, with a zone for every network; JSON detail) and
//! `/metrics` (Prometheus text format). Connections are guarded by [`conn`]; who may ask is
//! [`Access`], checked at accept (the client's address) and per request (the `Host` header,
//! against DNS rebinding).

pub mod conn;
mod page;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use ipnet::IpNet;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::config::Config;
use crate::dns::access::Acl;
use crate::metrics::Telemetry;
use crate::sync::publish::Names;
use crate::zone::{Directory, ScopeMap};

/// Who may use the endpoint: loopback, the listening interfaces' subnets and `[http] allow`
/// by address; by name, requests whose `Host` is an address, `localhost` or a name in a
/// domain we serve. A web page elsewhere that makes its own name resolve to this server (DNS
/// rebinding) sends its own name as `Host` and is refused, so it cannot read the member list
/// through a browser on an allowed host.
#[derive(Debug, Default)]
pub struct Access {
    clients: Acl,
    /// Loopback and `[http] allow`: they see every name, whatever their scope.
    operators: Acl,
    /// Lowercase, without the final dot.
    domains: Vec<String>,
}

/// Replaced when the listening addresses or the config change.
pub type SharedAccess = Arc<ArcSwap<Access>>;

impl Access {
    pub fn new(nets: &[IpNet], config: &Config) -> Access {
        let mut domains: Vec<String> = std::iter::once(&config.domain)
            .chain(config.networks.iter().map(|n| &n.domain))
            .map(|d| d.to_ascii().trim_end_matches('.').to_ascii_lowercase())
            .collect();
        domains.sort();
        domains.dedup();
        Access {
            clients: Acl::new(nets, &config.http_allow),
            operators: Acl::new(&[], &config.http_allow),
            domains,
        }
    }

    /// Whether `client` may connect (loopback always may).
    pub fn admits(&self, client: IpAddr) -> bool {
        client.to_canonical().is_loopback() || self.clients.allows(client)
    }

    /// Whether `client` is an operator (loopback, `[http] allow`): it sees every name.
    pub fn operator(&self, client: IpAddr) -> bool {
        client.to_canonical().is_loopback() || self.operators.allows(client)
    }

    /// Whether a request with this `Host` header (or none, as HTTP/1.0 allows) is for us.
    pub fn host_ok(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return true };
        let name = match host.strip_prefix('[') {
            // `[v6]` or `[v6]:port`: an address.
            Some(rest) => {
                return rest
                    .split(']')
                    .next()
                    .is_some_and(|a| a.parse::<IpAddr>().is_ok())
            }
            None => match host.rsplit_once(':') {
                Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
                _ => host,
            },
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name.parse::<IpAddr>().is_ok()
            || name == "localhost"
            || self.domains.iter().any(|d| {
                name == *d
                    || (name.len() > d.len()
                        && name.ends_with(d.as_str())
                        && name.as_bytes()[name.len() - d.len() - 1] == b'.')
            })
    }
}

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
    access: SharedAccess,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(telemetry, names, access.clone());
    let admit = move |ip| access.load().admits(ip);
    conn::serve(listener, app, admit, conn::Guard::ENDPOINT, shutdown).await
}

/// The endpoint's routes, with the `Host` check in front of them.
pub fn router(telemetry: Arc<Telemetry>, names: Arc<Names>, access: SharedAccess) -> axum::Router {
    axum::Router::new()
        .route("/", get(status_page))
        .route("/api/v1/names", get(names_json))
        .route("/hosts", get(hosts))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Endpoint {
            telemetry,
            names,
            access: access.clone(),
            rendered: Arc::default(),
        })
        .layer(axum::middleware::from_fn_with_state(access, for_us))
}

/// A request whose `Host` names someone else (DNS rebinding) gets 403.
async fn for_us(
    State(access): State<SharedAccess>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    // No Host at all (HTTP/1.0) is for us; one that is not text never is.
    let ours = match request.headers().get(header::HOST) {
        None => true,
        Some(h) => h
            .to_str()
            .is_ok_and(|host| access.load().host_ok(Some(host))),
    };
    if ours {
        return next.run(request).await;
    }
    (
        StatusCode::FORBIDDEN,
        "the Host header names neither an address nor a domain this server serves\n",
    )
        .into_response()
}

/// What the handlers read.
#[derive(Clone)]
struct Endpoint {
    telemetry: Arc<Telemetry>,
    names: Arc<Names>,
    access: SharedAccess,
    /// `/api/v1/names` and `/hosts` of the last build, rendered once per scope that asked.
    rendered: Arc<tokio::sync::Mutex<Vec<Rendered>>>,
}

/// The names directory of one build, as one scope sees it (`None`: every name), as the two
/// documents that serve it whole.
#[derive(Clone)]
struct Rendered {
    build: usize,
    scope: Option<u8>,
    json: Bytes,
    hosts: Bytes,
}

/// Who is looking: a client in a scope, with the build's scopes; `None` (every name) for
/// operators (loopback, `[http] allow`) and clients in no scope.
type Viewer = Option<(Arc<ScopeMap>, u8)>;

/// The scope whose names a client sees on the endpoint.
fn viewer(e: &Endpoint, client: SocketAddr) -> Viewer {
    let ip = client.ip().to_canonical();
    if e.access.load().operator(ip) {
        return None;
    }
    let scopes = e.names.scopes()?;
    let scope = scopes.scope_of(ip)?;
    Some((scopes, scope))
}

/// The directory a viewer sees.
fn seen(directory: Arc<Directory>, viewer: &Viewer) -> Arc<Directory> {
    match viewer {
        Some((scopes, scope)) => Arc::new(directory.seen_by(scopes, *scope)),
        None => directory,
    }
}

fn not_yet() -> axum::response::Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "no zone built yet: try again in a moment\n",
    )
        .into_response()
}

/// The documents of the last build: rendered once per build off the async workers (which
/// also serve DNS over TCP and forwarding), then handed out as shared bytes. Requests that
/// arrive together wait for the one rendering.
async fn rendered(e: &Endpoint, client: SocketAddr) -> Option<Rendered> {
    let build = e.names.build()?;
    let viewer = viewer(e, client);
    let scope = viewer.as_ref().map(|(_, s)| *s);
    let mut cache = e.rendered.lock().await;
    cache.retain(|r| r.build == build);
    if let Some(r) = cache.iter().find(|r| r.scope == scope) {
        return Some(r.clone());
    }
    let names = e.names.clone();
    let done = tokio::task::spawn_blocking(move || {
        let directory = seen(names.directory()?, &viewer);
        let json = serde_json::to_vec(directory.as_ref()).ok()?;
        Some((json, directory.hosts()))
    });
    let (json, hosts) = done.await.ok().flatten()?;
    let r = Rendered {
        build,
        scope,
        json: Bytes::from(json),
        hosts: Bytes::from(hosts),
    };
    cache.push(r.clone());
    Some(r)
}

async fn names_json(
    State(e): State<Endpoint>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
) -> axum::response::Response {
    match rendered(&e, client).await {
        Some(r) => ([(header::CONTENT_TYPE, "application/json")], r.json).into_response(),
        None => not_yet(),
    }
}

async fn hosts(
    State(e): State<Endpoint>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
) -> axum::response::Response {
    match rendered(&e, client).await {
        Some(r) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            r.hosts,
        )
            .into_response(),
        None => not_yet(),
    }
}

async fn status_page(
    State(e): State<Endpoint>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Query(query): Query<page::PageQuery>,
) -> axum::response::Response {
    let names = e.names.clone();
    let mut readiness = e.telemetry.readiness();
    let viewer = viewer(&e, client);
    // The scopes and what each hides, for those who see every name; a client in a scope
    // sees its names only (the services table names members it may not see).
    let scopes = match &viewer {
        None => names
            .scopes()
            .map(|s| page::scopes_of(&s))
            .unwrap_or_default(),
        Some(_) => {
            readiness.services.clear();
            Vec::new()
        }
    };
    // A page of every name is a zone build's worth of work: off the async workers.
    let html = tokio::task::spawn_blocking(move || {
        let directory = seen(names.directory().unwrap_or_default(), &viewer);
        page::render(&readiness, &directory, &scopes, clock::unix_now(), &query)
    })
    .await
    .unwrap_or_default();
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
