//! Addresses ZeroTier computes instead of listing: RFC4193 and 6PLANE (ZeroTierOne's
//! `InetAddress::makeIpv6rfc4193` and `makeIpv66plane`).

use std::net::{IpAddr, Ipv6Addr};

use ipnet::Ipv6Net;

use crate::ids::{NetworkId, NodeId};

/// `fd` ‖ nwid (8 bytes) ‖ `99 93` ‖ node (5 bytes); the network owns the /88 in front of the node.
pub fn rfc4193(nwid: NetworkId, node: NodeId) -> Ipv6Addr {
    let mut b = [0u8; 16];
    b[0] = 0xfd;
    b[1..9].copy_from_slice(&nwid.0.to_be_bytes());
    b[9] = 0x99;
    b[10] = 0x93;
    b[11..16].copy_from_slice(&node.0.to_be_bytes()[3..8]);
    Ipv6Addr::from(b)
}

/// The network-wide RFC4193 prefix, `fd<nwid>9993::/88`.
pub fn rfc4193_prefix(nwid: NetworkId) -> Ipv6Net {
    Ipv6Net::new(rfc4193(nwid, NodeId(0)), 88)
        .expect("88 is a valid prefix length")
        .trunc()
}

fn sixplane_hash(nwid: NetworkId) -> u32 {
    ((nwid.0 ^ (nwid.0 >> 32)) & 0xffff_ffff) as u32
}

/// `fc` ‖ (nwid upper 32 ^ lower 32) ‖ node (5 bytes) ‖ 0…0 ‖ `01`.
pub fn sixplane(nwid: NetworkId, node: NodeId) -> Ipv6Addr {
    let mut b = [0u8; 16];
    b[0] = 0xfc;
    b[1..5].copy_from_slice(&sixplane_hash(nwid).to_be_bytes());
    b[5..10].copy_from_slice(&node.0.to_be_bytes()[3..8]);
    b[15] = 0x01;
    Ipv6Addr::from(b)
}

/// The /80 a 6PLANE member owns (its containers and VMs live there).
pub fn sixplane_prefix(nwid: NetworkId, node: NodeId) -> Ipv6Net {
    Ipv6Net::new(sixplane(nwid, node), 80)
        .expect("80 is a valid prefix length")
        .trunc()
}

/// Whether an address can be served as a member's: a unicast address another host can reach.
/// Not the unspecified address, multicast, IPv4 broadcast or loopback (the client would talk
/// to itself), nor link-local (169.254.0.0/16, fe80::/10): it means nothing off its own link,
/// and 169.254.169.254 is the cloud metadata service a member must not point us at. The one
/// rule for every source, snapshots read back from disk included.
pub fn servable(ip: &IpAddr) -> bool {
    let v4_special = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast() || v4.is_link_local());
    let v6_link_local = matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local());
    !(ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() || v4_special || v6_link_local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: &str, m: &str) -> (NetworkId, NodeId) {
        (n.parse().unwrap(), m.parse().unwrap())
    }

    #[test]
    fn rfc4193_worked_examples() {
        let (n, m) = ids("8056c2e21c000001", "a45dc9d260");
        let want: Ipv6Addr = "fd80:56c2:e21c:0000:0199:93a4:5dc9:d260".parse().unwrap();
        assert_eq!(rfc4193(n, m), want);
        let (n, m) = ids("8056c2e21c000001", "e610b78bf1");
        let want: Ipv6Addr = "fd80:56c2:e21c:0000:0199:93e6:10b7:8bf1".parse().unwrap();
        assert_eq!(rfc4193(n, m), want);
        assert_eq!(
            rfc4193_prefix(n).to_string(),
            "fd80:56c2:e21c:0:199:9300::/88"
        );
    }

    #[test]
    fn sixplane_worked_example() {
        let (n, m) = ids("93afae5963392b39", "c51bc0a471");
        let want: Ipv6Addr = "fcf0:9685:60c5:1bc0:a471::1".parse().unwrap();
        assert_eq!(sixplane(n, m), want);
        assert_eq!(
            sixplane_prefix(n, m).to_string(),
            "fcf0:9685:60c5:1bc0:a471::/80"
        );
    }

    #[test]
    fn sixplane_hash_is_zero_padded() {
        // upper ^ lower = 0x0000_0001: the hash must stay 8 hex digits wide
        let (n, m) = ids("1234567812345679", "0000000001");
        let want: Ipv6Addr = "fc00:0000:0100:0000:0001::1".parse().unwrap();
        assert_eq!(sixplane(n, m), want);
    }

    #[test]
    fn only_reachable_unicast_is_servable() {
        for bad in [
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "127.0.0.1",
            "::",
            "ff02::1",
            "::1",
            "169.254.169.254",
            "fe80::1",
        ] {
            assert!(!servable(&bad.parse().unwrap()), "{bad}");
        }
        for good in ["10.147.17.5", "192.0.2.1", "fd80:56c2:e21c::1"] {
            assert!(servable(&good.parse().unwrap()), "{good}");
        }
    }
}
