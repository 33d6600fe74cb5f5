//! Wires the pieces together for each subcommand; the one place the server starts and stops.
//!
//! Shutdown has one path: SIGTERM or Ctrl-C cancels one token that every task observes
//! (listeners stop taking queries, HTTP and webhook endpoints finish their requests, pollers
//! stop), then everything is awaited: queries in flight are answered, the builder finishes,
//! snapshots are flushed.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use tokio::time::{sleep_until, Instant};

use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Forward, ForwardZone, ListenOn, Source};
use crate::dname::name_wire;
use crate::dns::access::{Acl, SharedAcl};
use crate::dns::context::Context;
use crate::dns::forward::{self, Forwarder, Forwarders};
use crate::dns::listen::{BindError, Listeners};
use crate::dns::ratelimit::Limiter;
use crate::dns::transfer::Transfers;
use crate::interfaces::Finder;
use crate::metrics::Telemetry;
use crate::records::{self, FileRecords};
use crate::sync::{self, SyncHandle, Views};
use crate::view::View;
use crate::watch::{Change, FileWatch, Pending, Settling};
use crate::{http, webhook, zone};

/// How often the listening addresses are looked up again: reading the interface list is one
/// small netlink dump, so following changes within seconds costs next to nothing.
const FOLLOW_INTERFACES: Duration = Duration::from_secs(1);
/// The local zerotier-one service is an HTTP request: ask a little less often.
const FOLLOW_LOCAL_SERVICE: Duration = Duration::from_secs(3);
/// At shutdown, how long queries in flight (forwards, TCP connections, transfers) and HTTP
/// requests get to finish.
const DRAIN: Duration = Duration::from_secs(5);

/// `backhaul-dns run`: serve until SIGTERM or Ctrl-C; reload on SIGHUP or a changed file.
pub async fn serve(config: Config, files: FileRecords) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let telemetry = Arc::new(Telemetry::new());
    let views = Views::reporting(telemetry.clone());
    let acl: SharedAcl = Arc::new(ArcSwap::from_pointee(Acl::default()));
    // Who may use the HTTP endpoint besides loopback: the same subnets, `[http] allow`.
    let http_clients: SharedAcl = Arc::new(ArcSwap::from_pointee(Acl::default()));
    let finder = Finder::new(&config.listen);
    // Where the listening addresses are known before binding, loop protection can use them.
    let own: Vec<IpAddr> = finder
        .find()
        .await
        .map(|nets| nets.iter().map(|n| n.addr()).collect())
        .unwrap_or_default();
    let ctx = Arc::new(Context::new(
        View::Backhaul,
        views.private.clone(),
        acl.clone(),
        Transfers::new(&config.transfer),
        forwarders(&config, &own, &files.delegations)?,
        telemetry.clone(),
        shutdown.clone(),
        config.listen.tcp,
        config.rate_limit,
    ));
    let public_ctx = Arc::new(Context::new(
        View::Public,
        views.public.clone(),
        Arc::default(),
        Transfers::default(),
        Forwarders::default(),
        telemetry.clone(),
        shutdown.clone(),
        config.listen.tcp,
        config.rate_limit,
    ));
    for c in [&ctx, &public_ctx] {
        c.log_queries.store(config.log_queries, Ordering::Relaxed);
    }
    if let Some(listen) = config.http {
        if listen.ip().is_unspecified() {
            tracing::warn!(%listen, "the http endpoint answers on every interface, as configured");
        }
        let listener = http::bind(listen)
            .await
            .with_context(|| format!("cannot listen for http on {listen}"))?;
        let serving = http::serve(
            listener,
            telemetry.clone(),
            views.names.clone(),
            http_clients.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            if let Err(e) = serving.await {
                tracing::error!(error = %e, "http endpoint failed; DNS continues");
            }
        });
    }
    let mut server = Server {
        listeners: Listeners::new(config.listen.port, ctx.clone()),
        public: Listeners::new(config.listen.port, public_ctx.clone()),
        ctx,
        public_ctx,
        telemetry: telemetry.clone(),
        follower: Follower::default(),
        settling: Settling::default(),
        delegations: files.delegations.clone(),
        acl,
        http_clients,
        config,
    };
    // Watch before the first read of any file, so that no edit falls in between.
    let (changes_tx, changes) = tokio::sync::mpsc::unbounded_channel();
    let mut files_watch = FileWatch::new(changes_tx).context("cannot watch files for changes")?;
    files_watch.follow(&server.config, &files.included);
    // The first zone (from the last good snapshots) is published before any listener binds,
    // so the first query is answered from it; its NS records carry the addresses found just
    // now, and follow the ones actually bound if those differ.
    let services = views.services.clone();
    let sync = sync::start(&server.config, files, views, own.clone(), telemetry.clone()).await?;
    let outcome = async {
        let published = server.follow(&finder).await?;
        if published != own {
            sync.nameserver_addresses(published.clone()).await;
        }
        if let Some(hook) = &server.config.webhook {
            let listener = webhook::bind(hook.listen)
                .await
                .with_context(|| format!("cannot listen for webhooks on {}", hook.listen))?;
            let serving = webhook::serve(
                listener,
                hook.secrets.clone(),
                sync.triggers.clone(),
                shutdown.clone(),
            );
            tasks.spawn(async move {
                if let Err(e) = serving.await {
                    tracing::error!(error = %e, "webhook endpoint failed; polling continues");
                }
            });
        }
        (server.run_until_stopped(&finder, &sync, files_watch, changes, published)).await
    }
    .await;
    // The one way down: every task observes the token, then everything is awaited.
    tracing::info!("shutting down");
    shutdown.cancel();
    server.listeners.close().await;
    server.public.close().await;
    for t in [&server.ctx.tasks, &server.public_ctx.tasks, &tasks] {
        t.close();
        if tokio::time::timeout(DRAIN, t.wait()).await.is_err() {
            tracing::warn!("queries or requests still under way at shutdown were dropped");
        }
    }
    sync.stop().await;
    services.stop().await;
    outcome
}

/// The running server's parts that a tick or a reload acts on.
struct Server {
    /// The configuration in effect (settings that need a restart keep their start-up value).
    config: Config,
    ctx: Arc<Context>,
    public_ctx: Arc<Context>,
    telemetry: Arc<Telemetry>,
    acl: SharedAcl,
    /// Who may use the HTTP endpoint besides loopback.
    http_clients: SharedAcl,
    listeners: Listeners,
    /// `[public]` addresses.
    public: Listeners,
    follower: Follower,
    /// Watched files being written are held back until they settle.
    settling: Settling,
    /// The records file's delegations, resolved through their servers (see [`forwarders`]).
    delegations: Vec<ForwardZone>,
}

impl Server {
    /// Follows addresses, applies file changes and reloads until SIGTERM or Ctrl-C; an error
    /// (no permission to bind) ends it early.
    async fn run_until_stopped(
        &mut self,
        finder: &Finder,
        sync: &SyncHandle,
        mut files_watch: FileWatch,
        mut changes: tokio::sync::mpsc::UnboundedReceiver<Change>,
        mut published: Vec<IpAddr>,
    ) -> anyhow::Result<()> {
        let period = match self.config.listen.from {
            ListenOn::Network { .. } => FOLLOW_LOCAL_SERVICE,
            _ => FOLLOW_INTERFACES,
        };
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; that check was just done
        let mut hangup = hangup_signal()?;
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        let mut pending = Pending::default();
        loop {
            let due = pending.due();
            tokio::select! {
                _ = tick.tick() => {
                    let served = self.follow(finder).await?;
                    if served != published {
                        sync.nameserver_addresses(served.clone()).await;
                        published = served;
                    }
                }
                Some(change) = changes.recv() => pending.add(change),
                _ = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    for change in pending.take() {
                        match change {
                            Change::Reload => {
                                let cause = "a watched file changed";
                                if let Some(wait) = self.reload(cause, sync, &mut files_watch).await {
                                    pending.retry(Change::Reload, wait);
                                }
                            }
                            Change::Members(id) => {
                                tracing::info!(network = %id, "members file changed: syncing");
                                sync.trigger(id);
                            }
                        }
                    }
                }
                _ = hangup.recv() => {
                    if let Some(wait) = self.reload("SIGHUP", sync, &mut files_watch).await {
                        pending.retry(Change::Reload, wait);
                    }
                    for net in &self.config.networks {
                        if matches!(net.source, Source::File { .. }) {
                            sync.trigger(net.id);
                        }
                    }
                }
                _ = &mut shutdown => return Ok(()),
            }
        }
    }

    /// Follows the listening addresses of both views; returns the backhaul addresses served.
    async fn follow(&mut self, finder: &Finder) -> anyhow::Result<Vec<IpAddr>> {
        let served = self
            .follower
            .step(
                finder,
                &mut self.listeners,
                (&self.acl, &self.http_clients),
                &self.config,
            )
            .await?;
        let public = self
            .config
            .public
            .as_ref()
            .map(|p| p.addresses.clone())
            .unwrap_or_default();
        let errors = self.public.set(&public).await;
        self.follower.report(errors, "public")?;
        self.telemetry.listening(served.clone());
        Ok(served)
    }

    /// Reads the configuration and records files again and applies what can change while
    /// running. Anything invalid rejects the whole reload: the running configuration stays.
    /// Files still being written (or just emptied, as editors do before writing) are not read
    /// yet: the return value says when to try again.
    async fn reload(
        &mut self,
        why: &str,
        sync: &SyncHandle,
        files_watch: &mut FileWatch,
    ) -> Option<Duration> {
        if let Some(wait) = self.settling.wait(&[&self.config.path]) {
            return Some(wait);
        }
        let telemetry = self.telemetry.clone();
        let reject = |e: &dyn std::fmt::Display| {
            telemetry.reload(false);
            tracing::error!(
                cause = why,
                "reload rejected, still serving the previous configuration: {e}"
            );
            None
        };
        let new = match Config::load(&self.config.path) {
            Ok(c) => c,
            Err(e) => return reject(&e),
        };
        let record_files: Vec<&Path> = (new.records_file.iter())
            .chain(new.public.as_ref().map(|p| &p.zone_file))
            .map(PathBuf::as_path)
            .collect();
        if let Some(wait) = self.settling.wait(&record_files) {
            return Some(wait);
        }
        let files = match records::load_files(&new) {
            Ok(f) => f,
            Err(e) => return reject(&e),
        };
        let new = self.keep_restart_only(new);
        if new.forward != self.config.forward
            || new.forward_zones != self.config.forward_zones
            || files.delegations != self.delegations
        {
            match forwarders(&new, &self.listeners.addresses(), &files.delegations) {
                Ok(f) => self.ctx.forwarders.store(Arc::new(f)),
                Err(e) => return reject(&format!("{e:#}")),
            }
        }
        self.ctx
            .transfer
            .store(Arc::new(Transfers::new(&new.transfer)));
        let included = files.included.clone();
        let delegations = files.delegations.clone();
        if let Err(e) = sync.reconfigure(&new, files).await {
            return reject(&format!("{e:#}"));
        }
        self.delegations = delegations;
        files_watch.follow(&new, &included);
        for c in [&self.ctx, &self.public_ctx] {
            c.log_queries.store(new.log_queries, Ordering::Relaxed);
            c.tcp_limits.store(Arc::new(new.listen.tcp));
            if new.rate_limit != self.config.rate_limit {
                c.limiter.store(Arc::new(Limiter::new(new.rate_limit)));
            }
        }
        self.config = new;
        self.telemetry.reload(true);
        tracing::info!(cause = why, "configuration reloaded");
        None
    }

    /// Settings bound at start-up keep their running value; the log says they need a restart.
    fn keep_restart_only(&self, mut new: Config) -> Config {
        let old = &self.config;
        let mut restart = Vec::new();
        if new.listen.from != old.listen.from || new.listen.port != old.listen.port {
            restart.push("[listen] interface/network/addresses/port");
            new.listen.from = old.listen.from.clone();
            new.listen.port = old.listen.port;
        }
        if new.state_dir != old.state_dir {
            restart.push("state_dir");
            new.state_dir = old.state_dir.clone();
        }
        if new.webhook != old.webhook {
            restart.push("[webhook]");
            new.webhook = old.webhook.clone();
        }
        if new.http != old.http {
            restart.push("[http]");
            new.http = old.http;
        }
        if !restart.is_empty() {
            tracing::warn!(settings = %restart.join(", "),
                "changed in the config file: takes effect after a restart");
        }
        new
    }
}

/// Where names outside our zones go: `[forward] upstreams` (empty when forwarding is off)
/// and each `[[forward.zone]]`. Upstreams that are this server itself (one of `own` on our
/// port) are left out: forwarding to ourselves would loop.
fn forwarders(
    config: &Config,
    own: &[IpAddr],
    delegations: &[ForwardZone],
) -> anyhow::Result<Forwarders> {
    let not_us = |list: &[SocketAddr], what: &str| -> Vec<SocketAddr> {
        let (us, others): (Vec<SocketAddr>, Vec<SocketAddr>) = list
            .iter()
            .partition(|a| own.contains(&a.ip()) && a.port() == config.listen.port);
        for a in us {
            tracing::warn!(upstream = %a, "not forwarding {what} to {a}: that is this server (it would loop)");
        }
        others
    };
    let build = |upstreams: &[SocketAddr]| {
        Forwarder::new(upstreams).map_err(|e| anyhow::anyhow!("cannot set up forwarding: {e}"))
    };
    let upstreams = match &config.forward {
        Forward::Off => Vec::new(),
        Forward::To(list) => not_us(list, "other names"),
        Forward::ResolvConf => {
            let text = std::fs::read_to_string(RESOLV_CONF).unwrap_or_default();
            let (kept, skipped) = forward::from_resolv_conf(&text, own);
            for ip in skipped {
                tracing::info!(nameserver = %ip, "not forwarding to {ip} from {RESOLV_CONF}: that is this server (it would loop)");
            }
            if kept.is_empty() {
                tracing::warn!("no usable nameserver in {RESOLV_CONF}: set [forward] upstreams; names outside our zones get REFUSED");
            }
            kept
        }
    };
    let default = if upstreams.is_empty() {
        tracing::info!(
            "no default upstreams: names outside our zones (and the forward zones) get REFUSED"
        );
        None
    } else {
        let list: Vec<String> = upstreams.iter().map(|u| u.to_string()).collect();
        tracing::info!(upstreams = %list.join(", "), "forwarding other names for allowed clients");
        Some(build(&upstreams)?)
    };
    let mut zones = Vec::new();
    for zone in config.forward_zones.iter().chain(delegations) {
        let upstreams = not_us(&zone.upstreams, &zone.name.to_ascii());
        if upstreams.is_empty() {
            if delegations.contains(zone) {
                tracing::info!(zone = %zone.name, "delegation without glue addresses in the records file: clients are referred, not resolved");
            }
            continue;
        }
        let list: Vec<String> = upstreams.iter().map(|u| u.to_string()).collect();
        tracing::info!(zone = %zone.name, upstreams = %list.join(", "), "forwarding a zone");
        zones.push((name_wire(&zone.name), build(&upstreams)?));
    }
    Ok(Forwarders::new(default, zones))
}

const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Follows the listening addresses, logging each change of state once rather than every tick.
#[derive(Default)]
struct Follower {
    waiting: Option<String>,
    /// Per view, the addresses that failed to bind and why.
    failing: BTreeMap<&'static str, BTreeMap<SocketAddr, String>>,
}

impl Follower {
    /// Looks the addresses up, binds and closes to match, updates the ACL; returns the
    /// addresses served now.
    async fn step(
        &mut self,
        finder: &Finder,
        listeners: &mut Listeners,
        (acl, http_clients): (&SharedAcl, &SharedAcl),
        config: &Config,
    ) -> anyhow::Result<Vec<IpAddr>> {
        match finder.find().await {
            Ok(nets) => {
                if self.waiting.take().is_some() {
                    tracing::info!("listening addresses found");
                }
                let ips: Vec<IpAddr> = nets.iter().map(|n| n.addr()).collect();
                acl.store(Arc::new(Acl::new(&nets, &config.listen.allow)));
                http_clients.store(Arc::new(Acl::new(&nets, &config.http_allow)));
                let errors = listeners.set(&ips).await;
                self.report(errors, "backhaul")?;
            }
            Err(why) => {
                let text = why.to_string();
                if self.waiting.as_ref() != Some(&text) {
                    tracing::warn!(reason = %text, "not answering yet: {text}");
                }
                self.waiting = Some(text);
                if finder.absence_is_final() {
                    listeners.set(&[]).await;
                }
            }
        }
        Ok(listeners.addresses())
    }

    /// Bind errors of one view: lack of permission is fatal, anything else is retried on the
    /// next check (and logged when it first happens or changes).
    fn report(&mut self, errors: Vec<BindError>, view: &'static str) -> anyhow::Result<()> {
        let failing = self.failing.entry(view).or_default();
        let mut now = BTreeMap::new();
        for e in errors {
            match e {
                BindError::Permission { address, source } => anyhow::bail!(
                    "cannot listen on {address}: {source}; ports below 1024 need root \
                     or CAP_NET_BIND_SERVICE (the systemd unit and the container grant it)"
                ),
                BindError::Other { address, source } => {
                    let text = source.to_string();
                    if failing.get(&address) != Some(&text) {
                        tracing::warn!(%address, view, error = %text,
                            "cannot listen on this address yet (is it configured on this host? \
                             is another DNS server using the port?); retrying");
                    }
                    now.insert(address, text);
                }
            }
        }
        *failing = now;
        Ok(())
    }
}

/// SIGHUP: reload, as daemons do.
fn hangup_signal() -> anyhow::Result<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// `backhaul-dns zone`: sync every network once and return the zones as master-file text.
pub async fn zone_text(config: &Config, files: FileRecords) -> anyhow::Result<String> {
    let mut builder = sync::fetch_all(config, files).await?;
    // The NS name's addresses, as `run` would find them now (none if it would be waiting).
    if let Ok(nets) = Finder::new(&config.listen).find().await {
        builder.set_nameserver_addresses(nets.iter().map(|n| n.addr()).collect());
    }
    // Serials come from the book the server saved: an unchanged zone prints the serial it
    // serves. Nothing is written: a running server owns its state_dir.
    let mut built = builder.build();
    // Service names as they are now: one round of checks, then their live answers.
    let services = crate::services::Services::one_shot();
    services.plan(built.private.services.clone());
    services.check_once().await;
    zone::services::replace_records(&mut built.private, &services.records());
    let mut text = zone::master_file(&built.private);
    if let Some(public) = &built.public {
        text.push_str("; ---- public view ----\n");
        text.push_str(&zone::master_file(public));
    }
    Ok(text)
}

/// `backhaul-dns hosts`: one sync, then the hosts file of the names it gives.
pub async fn hosts_text(config: &Config, files: FileRecords) -> anyhow::Result<String> {
    let builder = sync::fetch_all(config, files).await?;
    Ok(builder.directory().hosts())
}

/// `backhaul-dns health`: whether the running server's /healthz answers.
pub async fn health(config: &Config) -> anyhow::Result<()> {
    let Some(mut listen) = config.http else {
        anyhow::bail!("no [http] listen in the config: nothing to ask");
    };
    if listen.ip().is_unspecified() {
        let loopback: IpAddr = if listen.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        listen.set_ip(loopback);
    }
    let url = format!("http://{listen}/healthz");
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()?
        .get(&url)
        .send()
        .await
        .with_context(|| format!("{url} does not answer"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url} answered {}",
        response.status()
    );
    println!("ok");
    Ok(())
}

/// `backhaul-dns check`: one line describing what the config will do.
pub fn summary(config: &Config) -> String {
    let on = match &config.listen.from {
        ListenOn::Addresses(a) => a
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        ListenOn::Interface(glob) => format!("the addresses of interface(s) {glob}"),
        ListenOn::Network { id, .. } => format!("this host's addresses on network {id}"),
    };
    format!(
        "config OK: {} network(s), domain {}, listening on {} port {}",
        config.networks.len(),
        config.domain,
        on,
        config.listen.port
    )
}
