//! Wires the pieces together for each subcommand.

use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;

use crate::config::Config;
use crate::dns::{listen, SharedZone, ZoneIndex};
use crate::{sync, zone};

/// `backhaul-dns run`: serve until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let zone: SharedZone = Arc::new(ArcSwap::from_pointee(ZoneIndex::default()));
    sync::start(&config, zone.clone())?;
    for ip in &config.listen.addresses {
        let bound = listen::bind(*ip, config.listen.port)
            .await
            .with_context(|| {
                format!(
                "cannot listen on {ip} port {}: is another DNS server using it, is the address \
                 on this host, and may this user bind the port (CAP_NET_BIND_SERVICE below 1024)?",
                config.listen.port
            )
            })?;
        tracing::info!(address = %bound.local_addr()?, "listening (udp and tcp)");
        listen::spawn(bound, zone.clone());
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    Ok(())
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
    Ok(zone::master_file(&builder.build()))
}

/// `backhaul-dns check`: one line describing what the config will do.
pub fn summary(config: &Config) -> String {
    let addrs: Vec<String> = config
        .listen
        .addresses
        .iter()
        .map(|a| a.to_string())
        .collect();
    format!(
        "config OK: {} network(s), domain {}, listening on {} port {}",
        config.networks.len(),
        config.domain,
        addrs.join(", "),
        config.listen.port
    )
}
