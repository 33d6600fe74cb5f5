//! Who may ask: clients inside the listening interfaces' subnets, plus `[listen] allow`.

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use ipnet::IpNet;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Acl {
    nets: Vec<IpNet>,
}

/// Replaced whenever the listening addresses change; read once per query.
pub type SharedAcl = Arc<ArcSwap<Acl>>;

impl Acl {
    /// `interfaces`: listening addresses with their prefix lengths; `allow`: extra networks.
    pub fn new(interfaces: &[IpNet], allow: &[IpNet]) -> Acl {
        let mut nets: Vec<IpNet> = interfaces.iter().chain(allow).map(|n| n.trunc()).collect();
        nets.sort();
        nets.dedup();
        Acl { nets }
    }

    /// A handful of networks: a linear scan is cheaper than anything cleverer.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            // A v4 client seen through a dual-stack socket.
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.nets.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_and_allow_list() {
        let acl = Acl::new(
            &[
                "10.147.17.1/24".parse().unwrap(),
                "fd80::1/88".parse().unwrap(),
            ],
            &["192.0.2.7/32".parse().unwrap()],
        );
        for ok in [
            "10.147.17.200",
            "fd80::ffff",
            "192.0.2.7",
            "::ffff:10.147.17.3",
        ] {
            assert!(acl.allows(ok.parse().unwrap()), "{ok}");
        }
        for no in ["10.147.18.1", "198.51.100.2", "192.0.2.8", "fe80::1"] {
            assert!(!acl.allows(no.parse().unwrap()), "{no}");
        }
        assert!(!Acl::default().allows("127.0.0.1".parse().unwrap()));
    }
}
