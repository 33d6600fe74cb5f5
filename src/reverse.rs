//! Reverse DNS names: PTR owners for addresses, and zone apexes for prefixes.

use std::fmt::Write;
use std::net::IpAddr;

use hickory_proto::rr::Name;
use ipnet::IpNet;

/// Never claim more than this many reverse zones for one route (a /9 is 128 /16 zones).
const MAX_ZONES_PER_PREFIX: u32 = 256;

fn name(text: String) -> Name {
    Name::from_ascii(text).expect("reverse names are valid ASCII names")
}

/// `31.17.147.10.in-addr.arpa.` or the 32-nibble `ip6.arpa.` name.
pub fn ptr_name(ip: IpAddr) -> Name {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            name(format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0]))
        }
        IpAddr::V6(v6) => nibble_name(&v6.octets(), 32),
    }
}

/// Appends [`ptr_name`] in lowercase wire form, put together as bytes (a sync makes one per
/// member address).
pub fn push_ptr_wire(w: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for &o in v4.octets().iter().rev() {
                // The label in decimal, preceded by its length.
                let (label, len) = match o {
                    0..=9 => ([1, b'0' + o, 0, 0], 2),
                    10..=99 => ([2, b'0' + o / 10, b'0' + o % 10, 0], 3),
                    _ => ([3, b'0' + o / 100, b'0' + o / 10 % 10, b'0' + o % 10], 4),
                };
                w.extend_from_slice(&label[..len]);
            }
            w.extend_from_slice(b"\x07in-addr\x04arpa\x00");
        }
        IpAddr::V6(v6) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for b in v6.octets().iter().rev() {
                w.extend_from_slice(&[1, HEX[usize::from(b & 0xf)], 1, HEX[usize::from(b >> 4)]]);
            }
            w.extend_from_slice(b"\x03ip6\x04arpa\x00");
        }
    }
}

fn nibble_name(bytes: &[u8; 16], nibbles: usize) -> Name {
    let mut s = String::with_capacity(nibbles * 2 + 9);
    for i in (0..nibbles).rev() {
        let b = bytes[i / 2];
        let n = if i % 2 == 0 { b >> 4 } else { b & 0xf };
        let _ = write!(s, "{n:x}.");
    }
    s.push_str("ip6.arpa.");
    name(s)
}

fn octet_name(bytes: &[u8; 4], octets: usize) -> Name {
    let mut s = String::new();
    for i in (0..octets).rev() {
        let _ = write!(s, "{}.", bytes[i]);
    }
    s.push_str("in-addr.arpa.");
    name(s)
}

/// The reverse zones that cover exactly `net`: reverse names split on octet (IPv4) or nibble
/// (IPv6) boundaries, so a /22 becomes four /24 zones rather than claiming a whole /16.
/// Prefixes too short to be a network's own subnet (under /8, or under /16 for IPv6) give none.
pub fn apexes(net: IpNet) -> Vec<Name> {
    let net = net.trunc();
    let (step, min) = match net {
        IpNet::V4(_) => (8u8, 8u8),
        IpNet::V6(_) => (4u8, 16u8),
    };
    let len = net.prefix_len();
    if len < min {
        return Vec::new();
    }
    let aligned = len.div_ceil(step) * step;
    let count = 1u32 << (aligned - len);
    if count > MAX_ZONES_PER_PREFIX {
        return Vec::new();
    }
    let subnets: Vec<IpNet> = if aligned == len {
        vec![net]
    } else {
        net.subnets(aligned)
            .map(|s| s.collect())
            .unwrap_or_default()
    };
    subnets
        .into_iter()
        .map(|s| match s {
            IpNet::V4(v4) => octet_name(&v4.network().octets(), usize::from(aligned / 8)),
            IpNet::V6(v6) => nibble_name(&v6.network().octets(), usize::from(aligned / 4)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_ptr_wire_matches_ptr_name() {
        let ips = [
            "10.147.17.5",
            "0.9.99.100",
            "255.10.1.0",
            "fd80:56c2:e21c:0:199:93a4:5dc9:d260",
            "::1",
        ];
        for ip in ips {
            let ip: IpAddr = ip.parse().unwrap();
            // Appended after what the buffer holds.
            let mut w = b"prefix".to_vec();
            push_ptr_wire(&mut w, ip);
            assert_eq!(w[6..], crate::dname::name_wire(&ptr_name(ip)), "{ip}");
        }
    }

    fn texts(net: &str) -> Vec<String> {
        apexes(net.parse().unwrap())
            .iter()
            .map(|n| n.to_ascii())
            .collect()
    }

    #[test]
    fn ptr_names() {
        assert_eq!(
            ptr_name("10.147.17.31".parse().unwrap()).to_ascii(),
            "31.17.147.10.in-addr.arpa."
        );
        let v6 = ptr_name("fd80:56c2:e21c:0:199:93a4:5dc9:d260".parse().unwrap()).to_ascii();
        assert_eq!(
            v6,
            "0.6.2.d.9.c.d.5.4.a.3.9.9.9.1.0.0.0.0.0.c.1.2.e.2.c.6.5.0.8.d.f.ip6.arpa."
        );
    }

    #[test]
    fn aligned_and_split_prefixes() {
        assert_eq!(texts("10.147.17.0/24"), ["17.147.10.in-addr.arpa."]);
        assert_eq!(texts("10.147.0.0/16"), ["147.10.in-addr.arpa."]);
        assert_eq!(
            texts("10.0.4.0/22"),
            [
                "4.0.10.in-addr.arpa.",
                "5.0.10.in-addr.arpa.",
                "6.0.10.in-addr.arpa.",
                "7.0.10.in-addr.arpa."
            ]
        );
        assert_eq!(
            texts("fd80:56c2:e21c:0:199:9300::/88"),
            ["3.9.9.9.1.0.0.0.0.0.c.1.2.e.2.c.6.5.0.8.d.f.ip6.arpa."]
        );
        assert_eq!(
            texts("fcf0:9685:60c5:1bc0:a471::/80"),
            ["1.7.4.a.0.c.b.1.5.c.0.6.5.8.6.9.0.f.c.f.ip6.arpa."]
        );
        assert_eq!(texts("fd00::/7").len(), 0);
        assert_eq!(texts("0.0.0.0/0").len(), 0);
        assert_eq!(texts("10.0.0.0/9").len(), 128);
        assert_eq!(texts("10.1.2.3/32"), ["3.2.1.10.in-addr.arpa."]);
    }
}
