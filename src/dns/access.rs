//! Who may ask: clients inside the listening interfaces' subnets, plus `[listen] allow`.

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use ipnet::IpNet;

/// Networks matched against a client address on every query, in the order given, with
/// their masks worked out once (`IpNet::contains` works them out at each call: about 90
/// instructions per query, a twentieth of the request path's own, before this).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Nets {
    v4: Vec<(u32, u32, IpNet)>,
    v6: Vec<(u128, u128, IpNet)>,
}

impl Nets {
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Nets {
        let mut out = Nets::default();
        for net in nets {
            match net {
                IpNet::V4(n) => (out.v4).push((n.network().to_bits(), n.netmask().to_bits(), net)),
                IpNet::V6(n) => (out.v6).push((n.network().to_bits(), n.netmask().to_bits(), net)),
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first network holding `ip` (a v4 client seen through a dual-stack socket counts
    /// as v4).
    #[inline]
    pub fn find(&self, ip: IpAddr) -> Option<IpNet> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(ip) => {
                let ip = ip.to_bits();
                (self.v4.iter()).find_map(|&(net, mask, n)| (ip & mask == net).then_some(n))
            }
            IpAddr::V6(ip) => {
                let ip = ip.to_bits();
                (self.v6.iter()).find_map(|&(net, mask, n)| (ip & mask == net).then_some(n))
            }
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Acl {
    nets: Nets,
}

/// Replaced whenever the listening addresses change; read once per query.
pub type SharedAcl = Arc<ArcSwap<Acl>>;

impl Acl {
    /// `interfaces`: listening addresses with their prefix lengths; `allow`: extra networks.
    pub fn new(interfaces: &[IpNet], allow: &[IpNet]) -> Acl {
        let mut nets: Vec<IpNet> = interfaces.iter().chain(allow).map(|n| n.trunc()).collect();
        nets.sort();
        nets.dedup();
        Acl {
            nets: Nets::new(nets),
        }
    }

    /// A handful of networks: a linear scan is cheaper than anything cleverer.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.nets.find(ip).is_some()
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
