//! Wires the pieces together for each subcommand.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;

use crate::config::{Config, Forward, ListenOn};
use crate::dns::access::{Acl, SharedAcl};
use crate::dns::forward::{self, Forwarder};
use crate::dns::listen::{BindError, Context, Listeners};
use crate::dns::{SharedZone, ZoneIndex};
use crate::interfaces::Finder;
use crate::sync;
use crate::{webhook, zone};

/// How often the listening addresses are looked up again: reading the interface list is one
/// small netlink dump, so following changes within seconds costs next to nothing.
const FOLLOW_INTERFACES: Duration = Duration::from_secs(1);
/// The local zerotier-one service is an HTTP request: ask a little less often.
const FOLLOW_LOCAL_SERVICE: Duration = Duration::from_secs(3);

/// `backhaul-dns run`: serve until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let zone: SharedZone = Arc::new(ArcSwap::from_pointee(ZoneIndex::default()));
    let acl: SharedAcl = Arc::new(ArcSwap::from_pointee(Acl::default()));
    let finder = Finder::new(&config.listen);
    // Where the listening addresses are known before binding, loop protection can use them.
    let own: Vec<IpAddr> = finder
        .find()
        .await
        .map(|nets| nets.iter().map(|n| n.addr()).collect())
        .unwrap_or_default();
    let forwarder = forwarder(&config, &own)?;
    let ctx = Context::new(
        zone.clone(),
        acl.clone(),
        config.transfer.allow.clone(),
        forwarder,
    );
    let mut listeners = Listeners::new(config.listen.port, Arc::new(ctx));
    let mut follower = Follower::default();
    // Bind first, so the first zone already carries the addresses we answer on (the NS name's
    // records); the builder publishes it before any query can arrive in earnest.
    let mut published = follower
        .step(&finder, &mut listeners, &acl, &config)
        .await?;
    let sync = sync::start(&config, zone, published.clone())?;
    if let Some(hook) = &config.webhook {
        let listener = webhook::bind(hook.listen)
            .await
            .with_context(|| format!("cannot listen for webhooks on {}", hook.listen))?;
        let serving = webhook::serve(listener, hook.secrets.clone(), sync.triggers.clone());
        tokio::spawn(async move {
            if let Err(e) = serving.await {
                tracing::error!(error = %e, "webhook endpoint failed; polling continues");
            }
        });
    }
    let period = match config.listen.from {
        ListenOn::Network { .. } => FOLLOW_LOCAL_SERVICE,
        _ => FOLLOW_INTERFACES,
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; that check was just done
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let served = follower.step(&finder, &mut listeners, &acl, &config).await?;
                if served != published {
                    sync.nameserver_addresses(served.clone()).await;
                    published = served;
                }
            }
            _ = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down");
    Ok(())
}

/// The forwarder for `[forward]`, or `None` when forwarding is off (other names: REFUSED).
fn forwarder(config: &Config, own: &[IpAddr]) -> anyhow::Result<Option<Forwarder>> {
    let upstreams = match &config.forward {
        Forward::Off => {
            tracing::info!(
                "forwarding is off (upstreams = []): names outside our zones get REFUSED"
            );
            return Ok(None);
        }
        Forward::To(list) => list.clone(),
        Forward::ResolvConf => {
            let text = std::fs::read_to_string(RESOLV_CONF).unwrap_or_default();
            let (kept, skipped) = forward::from_resolv_conf(&text, own);
            for ip in skipped {
                tracing::info!(nameserver = %ip, "not forwarding to {ip} from {RESOLV_CONF}: that is this server (it would loop)");
            }
            if kept.is_empty() {
                tracing::warn!("no usable nameserver in {RESOLV_CONF}: set [forward] upstreams; names outside our zones get REFUSED");
                return Ok(None);
            }
            kept
        }
    };
    let list: Vec<String> = upstreams.iter().map(|u| u.to_string()).collect();
    tracing::info!(upstreams = %list.join(", "), "forwarding other names for allowed clients");
    Ok(Some(Forwarder::new(&upstreams).map_err(|e| {
        anyhow::anyhow!("cannot set up forwarding: {e}")
    })?))
}

const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Follows the listening addresses, logging each change of state once rather than every tick.
#[derive(Default)]
struct Follower {
    waiting: Option<String>,
    failing: BTreeMap<SocketAddr, String>,
}

impl Follower {
    /// Looks the addresses up, binds and closes to match, updates the ACL; returns the
    /// addresses served now.
    async fn step(
        &mut self,
        finder: &Finder,
        listeners: &mut Listeners,
        acl: &SharedAcl,
        config: &Config,
    ) -> anyhow::Result<Vec<IpAddr>> {
        match finder.find().await {
            Ok(nets) => {
                if self.waiting.take().is_some() {
                    tracing::info!("listening addresses found");
                }
                let ips: Vec<IpAddr> = nets.iter().map(|n| n.addr()).collect();
                acl.store(Arc::new(Acl::new(&nets, &config.listen.allow)));
                let mut failing = BTreeMap::new();
                for e in listeners.set(&ips).await {
                    match e {
                        BindError::Permission { address, source } => anyhow::bail!(
                            "cannot listen on {address}: {source}; ports below 1024 need root \
                             or CAP_NET_BIND_SERVICE (the systemd unit and the container grant it)"
                        ),
                        BindError::Other { address, source } => {
                            let text = source.to_string();
                            if self.failing.get(&address) != Some(&text) {
                                tracing::warn!(%address, error = %text,
                                    "cannot listen on this address yet (is another DNS server using \
                                     the port?); retrying");
                            }
                            failing.insert(address, text);
                        }
                    }
                }
                self.failing = failing;
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
pub async fn zone_text(config: &Config) -> anyhow::Result<String> {
    let mut builder = sync::fetch_all(config).await?;
    // The NS name's addresses, as `run` would find them now (none if it would be waiting).
    if let Ok(nets) = Finder::new(&config.listen).find().await {
        builder.set_nameserver_addresses(nets.iter().map(|n| n.addr()).collect());
    }
    Ok(zone::master_file(&builder.build()))
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
