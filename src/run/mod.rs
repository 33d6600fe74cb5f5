//! Wires the pieces together for each subcommand; the one place the server starts and stops.
//!
//! Shutdown has one path: SIGTERM or Ctrl-C cancels one token that every task observes
//! (listeners stop taking queries, HTTP and webhook endpoints finish their requests, pollers
//! stop), then everything is awaited: queries in flight are answered, the builder finishes,
//! snapshots are flushed.

pub mod client_setup;
mod listening;
mod reload;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use ipnet::IpNet;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ForwardZone, ListenOn, Source};
use crate::dns::context::Context;
use crate::dns::listen::Listeners;
use crate::dns::notify::Inbox;
use crate::dns::rules::{Rules, Surroundings};
use crate::dns::tap::{self, Tap};
use crate::dns::tsig::Keyring;
use crate::dns::update::Updater;
use crate::follow::Follower;
use crate::http::{Access, SharedAccess};
use crate::interfaces::Finder;
use crate::metrics::Telemetry;
use crate::records::FileRecords;
use crate::sync::{self, SyncHandle, Views};
use crate::view::View;
use crate::watch::{Change, FileWatch, Pending, Settling};
use crate::{http, webhook, zone};
use listening::Listening;

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
    let finder = Finder::new(&config.listen);
    // Where the listening addresses are known before binding, the rules (who may ask, loop
    // protection) can use them at once.
    let nets: Vec<IpNet> = finder.find().await.unwrap_or_default();
    // Who may use the HTTP endpoint besides loopback: the same subnets, `[http] allow`.
    let http_access: SharedAccess = Arc::new(ArcSwap::from_pointee(Access::new(&nets, &config)));
    let own: Vec<IpAddr> = nets.iter().map(|n| n.addr()).collect();
    let around = Surroundings {
        nets: &nets,
        delegations: &files.delegations,
    };
    let rules = |view| Rules::from_config(&config, view, around, None);
    // One dnstap stream for both views (one writer, one connection).
    let tap = (config.dnstap.clone())
        .map(|path| Tap::start(path, tap::host_name(), telemetry.clone()))
        .transpose()
        .context("cannot start the dnstap writer")?;
    // One context per view, sharing the counters, the shutdown and the dnstap stream.
    // A follower takes its primary's NOTIFYs through an inbox.
    let (inbox, notices) = match config.follow {
        Some(_) => {
            let (inbox, notices) = Inbox::new();
            (Some(inbox), Some(notices))
        }
        None => (None, None),
    };
    // Signed UPDATEs go to the zone builder through one queue, from both views.
    let (updater, update_jobs) = Updater::new();
    let context = |zone, view| -> anyhow::Result<Arc<Context>> {
        let ctx = Context::new(zone, rules(view)?, telemetry.clone(), shutdown.clone());
        let ctx = ctx.with_tap(tap.clone()).with_inbox(inbox.clone());
        Ok(Arc::new(ctx.with_updater(Some(updater.clone()))))
    };
    let ctx = context(views.private.clone(), View::Backhaul)?;
    let public_ctx = context(views.public.clone(), View::Public)?;
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
            http_access.clone(),
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
        listening: Listening::default(),
        settling: Settling::default(),
        delegations: files.delegations.clone(),
        nets,
        http_access,
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
    let follower = (server.config.follow.as_ref()).map(|f| {
        let keys = Arc::new(Keyring::new(&server.config.transfer.keys));
        let state_dir = &server.config.state_dir;
        Follower::new(f, keys, state_dir, telemetry.clone())
    });
    // A follower's zones as last transferred are served from the first query on.
    let followed = follower.as_ref().map(Follower::zones).unwrap_or_default();
    let config = &server.config;
    let sync = sync::start(
        config,
        files,
        views,
        own.clone(),
        telemetry.clone(),
        followed,
    )
    .await?;
    sync.take_updates(update_jobs);
    if let (Some(follower), Some(notices)) = (follower, notices) {
        tasks.spawn(follower.run(sync.clone(), notices, shutdown.clone()));
    }
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
    /// The backhaul listening addresses with their prefixes, as last found (the rules' ACL).
    nets: Vec<IpNet>,
    /// Who may use the HTTP endpoint besides loopback.
    http_access: SharedAccess,
    listeners: Listeners,
    /// `[public]` addresses.
    public: Listeners,
    /// Binds and closes sockets as the listening addresses come and go.
    listening: Listening,
    /// Watched files being written are held back until they settle.
    settling: Settling,
    /// The records file's delegations, resolved through their servers when forwarding is on.
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
    /// When the addresses change, so do the rules (who may ask, which upstreams are us).
    async fn follow(&mut self, finder: &Finder) -> anyhow::Result<Vec<IpAddr>> {
        let found = (self.listening).step(finder, &mut self.listeners).await?;
        if let Some(nets) = found.filter(|n| *n != self.nets) {
            self.nets = nets;
            (self.http_access).store(Arc::new(Access::new(&self.nets, &self.config)));
            match self.build_rules(&self.config, &self.delegations) {
                Ok(rules) => self.set_rules(rules),
                Err(e) => tracing::error!("keeping the previous rules: {e:#}"),
            }
        }
        let public = self
            .config
            .public
            .as_ref()
            .map(|p| p.addresses.clone())
            .unwrap_or_default();
        let errors = self.public.set(&public).await;
        self.listening.report(errors, "public")?;
        let served = self.listeners.addresses();
        self.telemetry.listening(served.clone());
        Ok(served)
    }

    /// The rules of both views under `config`, the addresses found and `delegations`; an
    /// error when they cannot be built (forwarders that fail to start).
    fn build_rules(
        &self,
        config: &Config,
        delegations: &[ForwardZone],
    ) -> anyhow::Result<(Rules, Rules)> {
        let around = Surroundings {
            nets: &self.nets,
            delegations,
        };
        let private = Rules::from_config(config, View::Backhaul, around, Some(&self.ctx.rules()))?;
        let public =
            Rules::from_config(config, View::Public, around, Some(&self.public_ctx.rules()))?;
        Ok((private, public))
    }

    /// Puts rules built by [`Server::build_rules`] in effect for the next request.
    fn set_rules(&self, (private, public): (Rules, Rules)) {
        self.ctx.set_rules(private);
        self.public_ctx.set_rules(public);
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
    // A follower's zones are the primary's, as last transferred into state_dir.
    if let Some(follow) = &config.follow {
        let keys = Arc::new(Keyring::new(&config.transfer.keys));
        let follower = Follower::new(follow, keys, &config.state_dir, Arc::default());
        builder.set_followed(follower.zones());
    }
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

/// `backhaul-dns check`, beyond the config itself: the tags scopes name must be declared by
/// some network's rules as last synced (the snapshots in state_dir; nothing to hold them
/// against before a first sync).
pub fn check_tags(config: &Config) -> Result<(), String> {
    let store = crate::state::snapshot::Store::new(&config.state_dir);
    let declared: Vec<Vec<crate::zerotier::TagDef>> = (config.networks.iter())
        .filter_map(|n| store.load(n.id))
        .map(|l| l.snapshot.tags)
        .collect();
    match zone::scopes::undeclared_tags(&config.scopes, &declared)
        .into_iter()
        .next()
    {
        Some(problem) => Err(format!("{}: {problem}", config.path.display())),
        None => Ok(()),
    }
}

/// `backhaul-dns check`: one line describing what the config will do.
pub fn summary(config: &Config) -> String {
    if let Some(f) = &config.follow {
        let zones = match &f.zones {
            crate::config::Followed::Catalog(c) => format!("the zones of its catalog {c}"),
            crate::config::Followed::Listed(z) => format!("{} zone(s)", z.len()),
        };
        return format!(
            "config OK: following {} ({zones}), listening on port {}",
            f.primary, config.listen.port
        );
    }
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
