//! Following the listening addresses: looked up every few seconds, sockets bound and closed
//! to match, each change of state logged once rather than every tick.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ipnet::IpNet;

use crate::dns::listen::{BindError, Listeners};
use crate::interfaces::Finder;

#[derive(Default)]
pub(super) struct Listening {
    waiting: Option<String>,
    /// Per view, the addresses that failed to bind and why.
    failing: BTreeMap<&'static str, BTreeMap<SocketAddr, String>>,
}

impl Listening {
    /// Looks the addresses up and binds and closes to match; returns the addresses found
    /// with their prefixes, or `None` when they could not be looked up now (then what was
    /// found before stays in effect, unless the interface is gone for good).
    pub(super) async fn step(
        &mut self,
        finder: &Finder,
        listeners: &mut Listeners,
    ) -> anyhow::Result<Option<Vec<IpNet>>> {
        match finder.find().await {
            Ok(nets) => {
                if self.waiting.take().is_some() {
                    tracing::info!("listening addresses found");
                }
                let ips: Vec<_> = nets.iter().map(|n| n.addr()).collect();
                let errors = listeners.set(&ips).await;
                self.report(errors, "backhaul")?;
                Ok(Some(nets))
            }
            Err(why) => {
                let text = why.to_string();
                if self.waiting.as_ref() != Some(&text) {
                    tracing::warn!(reason = %text, "not answering yet: {text}");
                }
                self.waiting = Some(text);
                if finder.absence_is_final(&why) {
                    listeners.set(&[]).await;
                    return Ok(Some(Vec::new()));
                }
                Ok(None)
            }
        }
    }

    /// Bind errors of one view: lack of permission is fatal, anything else is retried on the
    /// next check (and logged when it first happens or changes).
    pub(super) fn report(
        &mut self,
        errors: Vec<BindError>,
        view: &'static str,
    ) -> anyhow::Result<()> {
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
