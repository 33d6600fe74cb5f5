//! `[listen]`: where the server answers, who may ask, and what TCP clients may hold; the
//! open-resolver guard on `allow`.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use super::super::raw::*;
use super::super::*;
use super::Validator;
use crate::ids::NetworkId;

impl Validator<'_> {
    pub(super) fn listen(&self, raw: Option<RawListen>) -> Result<Listen, ConfigError> {
        let mut raw = raw.unwrap_or_else(|| RawListen {
            port: default_port(),
            ..RawListen::default()
        });
        let given = [
            raw.interface.is_some(),
            raw.network.is_some(),
            raw.addresses.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(self.err("listen", "set only one of interface, network and addresses"));
        }
        if raw.network.is_none() {
            for (key, set) in [
                ("listen.authtoken_file", raw.authtoken_file.is_some()),
                ("listen.local_api_url", raw.local_api_url.is_some()),
            ] {
                if set {
                    return Err(self.err(key, "only applies with listen.network"));
                }
            }
        }
        let from = if let Some(id) = raw.network.take() {
            self.listen_network(&id, raw.authtoken_file.take(), raw.local_api_url.take())?
        } else if let Some(list) = raw.addresses.take() {
            ListenOn::Addresses(self.listen_addresses(&list)?)
        } else {
            let glob = raw.interface.take().unwrap_or_else(default_interface);
            if glob.trim().is_empty() || glob::Pattern::new(&glob).is_err() {
                return Err(self.err(
                    "listen.interface",
                    format!("\"{glob}\" is not an interface name or glob like \"zt*\""),
                ));
            }
            ListenOn::Interface(glob)
        };
        let allow = self.allow_list("listen.allow", &raw.allow)?;
        let positive = |key: &str, v: Option<usize>, default: usize| match v {
            Some(0) => Err(self.err(key, "must be at least 1")),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let tcp = TcpLimits {
            connections: positive(
                "listen.tcp_connections",
                raw.tcp_connections,
                default_tcp_connections(),
            )?,
            per_client: positive(
                "listen.tcp_per_client",
                raw.tcp_per_client,
                default_tcp_per_client(),
            )?,
            idle: self.duration(
                "listen.tcp_idle",
                &raw.tcp_idle.take().unwrap_or_else(default_tcp_idle),
            )?,
            write_timeout: self.duration(
                "listen.tcp_write_timeout",
                &raw.tcp_write_timeout
                    .take()
                    .unwrap_or_else(default_tcp_write_timeout),
            )?,
        };
        Ok(Listen {
            from,
            port: raw.port,
            allow,
            tcp,
        })
    }

    pub(super) fn listen_addresses(&self, list: &[String]) -> Result<Vec<IpAddr>, ConfigError> {
        if list.is_empty() {
            return Err(self.err(
                "listen.addresses",
                "is empty: list the ZeroTier addresses to answer on, e.g. [\"10.147.17.1\"]",
            ));
        }
        let mut addresses = Vec::new();
        for (i, a) in list.iter().enumerate() {
            let key = format!("listen.addresses[{i}]");
            let ip: IpAddr = a
                .trim()
                .parse()
                .map_err(|_| self.err(&key, format!("\"{a}\" is not an IP address")))?;
            if ip.is_unspecified() {
                return Err(self.err(
                    &key,
                    format!(
                        "{ip} would answer on every interface, including public ones, and make \
                         this an open resolver; list the ZeroTier addresses instead"
                    ),
                ));
            }
            if !addresses.contains(&ip) {
                addresses.push(ip);
            }
        }
        Ok(addresses)
    }

    pub(super) fn listen_network(
        &self,
        id: &str,
        authtoken_file: Option<PathBuf>,
        local_api_url: Option<String>,
    ) -> Result<ListenOn, ConfigError> {
        let id: NetworkId = id.parse().map_err(|_| {
            self.err(
                "listen.network",
                format!("\"{id}\" is not a ZeroTier network id (16 hex digits)"),
            )
        })?;
        let url = local_api_url.unwrap_or_else(default_local_api_url);
        let url = url.trim().trim_end_matches('/').to_owned();
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(self.err(
                "listen.local_api_url",
                format!("\"{url}\" is not an http URL"),
            ));
        }
        let file = self.resolve(&authtoken_file.unwrap_or_else(default_authtoken_file));
        let token = std::fs::read_to_string(&file).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                "it is readable by root only: run as root, or give this user read access \
                 (for example through the zerotier-one group)"
            } else {
                "it is written by zerotier-one; is zerotier-one installed?"
            };
            self.err(
                "listen.authtoken_file",
                format!("cannot read {}: {e}; {hint}", file.display()),
            )
        })?;
        let token = token.trim().to_owned();
        if token.is_empty() {
            return Err(self.err(
                "listen.authtoken_file",
                format!("{} is empty", file.display()),
            ));
        }
        Ok(ListenOn::Network {
            id,
            local_api_url: url,
            authtoken_file: file,
            token: Secret::new(token),
        })
    }
}

impl Validator<'_> {
    /// An `allow` list (`listen.allow`, `http.allow`): addresses or CIDRs, none covering a
    /// large part of the public internet.
    pub(super) fn allow_list(&self, key: &str, raw: &[String]) -> Result<Vec<IpNet>, ConfigError> {
        let mut allow = Vec::new();
        for (i, a) in raw.iter().enumerate() {
            let key = format!("{key}[{i}]");
            let net = a
                .trim()
                .parse::<IpNet>()
                .or_else(|_| a.trim().parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| self.err(&key, format!("\"{a}\" is not an address or CIDR")))?;
            if covers_public_space(net) {
                return Err(self.err(
                    &key,
                    format!(
                        "{net} covers a large part of the public internet and would open this \
                         server to it (for DNS: an open resolver): allow private ranges or \
                         specific networks (at most a public IPv4 /16 or IPv6 /32 each)"
                    ),
                ));
            }
            allow.push(net.trunc());
        }
        Ok(allow)
    }
}

/// Loopback, or inside a private, shared, link-local or ULA range (where ZeroTier networks
/// live): not reachable from the public internet.
pub(super) fn is_private(ip: IpAddr) -> bool {
    ip.is_loopback() || !is_public_host(ip)
}

/// A single address outside every private range.
fn is_public_host(ip: IpAddr) -> bool {
    let net = IpNet::from(ip);
    let private = |list: &[&str]| {
        list.iter()
            .filter_map(|p| p.parse::<IpNet>().ok())
            .any(|p| p.contains(&net))
    };
    match ip {
        IpAddr::V4(_) => !private(&PRIVATE_V4),
        IpAddr::V6(_) => !private(&PRIVATE_V6),
    }
}

const PRIVATE_V4: [&str; 5] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
];
const PRIVATE_V6: [&str; 2] = ["fc00::/7", "fe80::/10"];

/// Whether `net` reaches far into public address space: a public network wider than an IPv4
/// /16 or an IPv6 /32, or anything containing one (`0.0.0.0/1`, `::/0`). Private, shared,
/// loopback, link-local and ULA ranges of any size are fine.
fn covers_public_space(net: IpNet) -> bool {
    let private: Vec<IpNet> = match net {
        IpNet::V4(_) => PRIVATE_V4.iter().filter_map(|p| p.parse().ok()).collect(),
        IpNet::V6(_) => PRIVATE_V6.iter().filter_map(|p| p.parse().ok()).collect(),
    };
    let loopback = match net {
        IpNet::V4(n) => n.network().is_loopback() && n.prefix_len() >= 8,
        IpNet::V6(n) => n.network().is_loopback(),
    };
    if loopback || private.iter().any(|p| p.contains(&net)) {
        return false;
    }
    let widest = match net {
        IpNet::V4(_) => 16,
        IpNet::V6(_) => 32,
    };
    net.prefix_len() < widest
}
