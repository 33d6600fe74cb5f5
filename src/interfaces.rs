//! Where the addresses to answer on come from: interfaces matching a glob, the local
//! zerotier-one service, or a fixed list. Asked again every few seconds, so addresses that
//! come and go (ZeroTier starting after DNS at boot, a re-assigned IP) are followed.

use std::net::IpAddr;

use ipnet::IpNet;
use thiserror::Error;

use crate::config::{Listen, ListenOn};
use crate::zerotier::local::{LocalClient, LocalError};

/// Why there is nothing to listen on yet.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Waiting {
    #[error("waiting for an interface matching \"{0}\" to appear")]
    NoInterface(String),
    #[error("waiting for interface {0} to get an address")]
    NoAddress(String),
    #[error("cannot list this host's interfaces: {0}")]
    Os(String),
    #[error("{0}")]
    Local(#[from] LocalError),
}

pub enum Finder {
    Interface(glob::Pattern),
    Network(LocalClient),
    Addresses(Vec<IpAddr>),
}

/// Link-local IPv6 needs a scope id to bind, and ZeroTier peers use the network's own
/// addresses anyway.
fn usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
    }
}

/// Every address of this host, with its interface name and prefix length.
fn host_addresses() -> Result<Vec<(String, IpNet)>, Waiting> {
    let all = if_addrs::get_if_addrs().map_err(|e| Waiting::Os(e.to_string()))?;
    Ok(all
        .into_iter()
        .filter_map(|i| {
            let net = match &i.addr {
                if_addrs::IfAddr::V4(a) => IpNet::new(a.ip.into(), a.prefixlen).ok()?,
                if_addrs::IfAddr::V6(a) => IpNet::new(a.ip.into(), a.prefixlen).ok()?,
            };
            Some((i.name, net))
        })
        .collect())
}

impl Finder {
    pub fn new(listen: &Listen) -> Finder {
        match &listen.from {
            ListenOn::Interface(glob) => Finder::Interface(
                glob::Pattern::new(glob).expect("config validated the interface glob"),
            ),
            ListenOn::Network {
                id,
                local_api_url,
                authtoken_file,
                token,
            } => Finder::Network(LocalClient::new(
                local_api_url,
                token.clone(),
                authtoken_file.display().to_string(),
                *id,
            )),
            ListenOn::Addresses(a) => Finder::Addresses(a.clone()),
        }
    }

    /// The addresses to answer on now, each with its prefix length (for the client ACL).
    pub async fn find(&self) -> Result<Vec<IpNet>, Waiting> {
        let mut found = match self {
            Finder::Interface(glob) => {
                let host = host_addresses()?;
                let matching: Vec<&(String, IpNet)> =
                    host.iter().filter(|(name, _)| glob.matches(name)).collect();
                if matching.is_empty() {
                    return Err(Waiting::NoInterface(glob.as_str().to_owned()));
                }
                let nets: Vec<IpNet> = matching
                    .iter()
                    .map(|(_, n)| *n)
                    .filter(|n| usable(n.addr()))
                    .collect();
                if nets.is_empty() {
                    return Err(Waiting::NoAddress(matching[0].0.clone()));
                }
                nets
            }
            Finder::Network(client) => {
                let m = client.membership().await?;
                let nets: Vec<IpNet> = m
                    .addresses
                    .into_iter()
                    .filter(|n| usable(n.addr()))
                    .collect();
                if nets.is_empty() {
                    return Err(Waiting::NoAddress(m.device));
                }
                nets
            }
            Finder::Addresses(list) => {
                // Prefix lengths come from the interfaces that hold them; an address not on
                // this host (yet) allows only itself. When the interfaces cannot be listed
                // (out of file descriptors), that is an error: the caller keeps what it
                // had, rather than shrinking every subnet to one address.
                let host = host_addresses()?;
                list.iter()
                    .map(|ip| {
                        host.iter()
                            .find(|(_, n)| n.addr() == *ip)
                            .map(|(_, n)| *n)
                            .unwrap_or_else(|| IpNet::from(*ip))
                    })
                    .collect()
            }
        };
        found.sort();
        found.dedup();
        Ok(found)
    }

    /// Whether `why` means the addresses are gone (an interface that disappeared), rather
    /// than that we cannot ask right now (the local service restarting, the system out of
    /// file descriptors): only then does the server stop listening.
    pub fn absence_is_final(&self, why: &Waiting) -> bool {
        matches!(self, Finder::Interface(_)) && !matches!(why, Waiting::Os(_))
    }
}
