//! ZeroTier ids ([`NetworkId`], [`NodeId`]): shared vocabulary of the config, the ZeroTier
//! clients, the zone and the metrics. Ground floor: imports nothing of ours.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 64-bit ZeroTier network id, written as 16 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkId(pub u64);

/// A 40-bit ZeroTier node (member) id, written as 10 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u64);

fn parse_hex(s: &str, digits: usize) -> Option<u64> {
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

impl FromStr for NetworkId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        parse_hex(s.trim(), 16).map(NetworkId).ok_or(())
    }
}

impl FromStr for NodeId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        parse_hex(s.trim(), 10).map(NodeId).ok_or(())
    }
}

/// Ids travel as hex strings in snapshots, as in the API.
macro_rules! hex_serde {
    ($t:ty, $what:literal) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse()
                    .map_err(|_| serde::de::Error::custom(format!("\"{text}\" is not a {}", $what)))
            }
        }
    };
}
hex_serde!(NetworkId, "network id");
hex_serde!(NodeId, "node id");

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:010x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let n: NetworkId = "8056C2E21C000001".parse().unwrap();
        assert_eq!(n.to_string(), "8056c2e21c000001");
        let m: NodeId = "00a45dc9d2".parse().unwrap();
        assert_eq!(m.to_string(), "00a45dc9d2");
        assert!("abcdef01234".parse::<NodeId>().is_err()); // 11 digits: one too many
        assert!("xyz".parse::<NetworkId>().is_err());
    }
}
