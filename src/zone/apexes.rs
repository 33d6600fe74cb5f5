//! Zone apexes and which apex each name falls under: found by trying a few suffixes of a
//! name, not each of its ancestors.

use foldhash::HashMap;
use hickory_proto::rr::Name;

/// Zone apexes by lowercase wire name, and the label counts at which there are any: finding a
/// name's zone then tries a few of its suffixes, not each of its ancestors (an ip6.arpa name
/// has 34), which made finding the zones of a 100,000-member build's records 3x faster.
#[derive(Default)]
pub(super) struct Apexes {
    /// Each apex's wire form and name; its position is its slot.
    pub(super) names: Vec<(Vec<u8>, Name)>,
    slots: HashMap<Vec<u8>, usize>,
    /// Distinct label counts of the apexes, deepest first.
    depths: Vec<usize>,
}

impl Apexes {
    pub(super) fn insert(&mut self, wire: Vec<u8>, name: Name) {
        if self.slots.contains_key(&wire) {
            return;
        }
        let depth = label_starts(&wire).1;
        if let Err(at) = self.depths.binary_search_by(|d| depth.cmp(d)) {
            self.depths.insert(at, depth);
        }
        self.slots.insert(wire.clone(), self.names.len());
        self.names.push((wire, name));
    }

    /// The slot of the apex named exactly `wire`.
    pub(super) fn slot(&self, wire: &[u8]) -> Option<usize> {
        self.slots.get(wire).copied()
    }

    /// The slot of the apex a wire name belongs to: itself or its nearest ancestor among the
    /// apexes.
    pub(super) fn closest(&self, wire: &[u8]) -> Option<usize> {
        let (starts, n) = label_starts(wire);
        // d == 0 is the root: the final zero byte.
        let suffix = |d: usize| {
            &wire[if d == 0 {
                wire.len() - 1
            } else {
                usize::from(starts[n - d])
            }..]
        };
        (self.depths.iter().filter(|d| **d <= n)).find_map(|d| self.slot(suffix(*d)))
    }
}

/// Where each label of a wire name starts, and how many labels it has (at most 127 in the
/// 255 bytes of a name).
fn label_starts(wire: &[u8]) -> ([u8; 128], usize) {
    let (mut starts, mut n, mut at) = ([0u8; 128], 0, 0);
    while let Some(&len) = wire.get(at).filter(|l| **l != 0 && n < starts.len()) {
        starts[n] = at as u8;
        n += 1;
        at += 1 + usize::from(len);
    }
    (starts, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dname::name_wire;

    #[test]
    fn closest_apex_is_the_nearest_ancestor() {
        let wire = |t: &str| name_wire(&Name::from_ascii(t).unwrap());
        let mut apexes = Apexes::default();
        for a in [
            "backhaul.",
            "c.b.backhaul.",
            "17.147.10.in-addr.arpa.",
            "0.0.d.f.ip6.arpa.",
        ] {
            apexes.insert(wire(a), Name::from_ascii(a).unwrap());
        }
        // The plain walk from the name up through its ancestors.
        let walk = |w: &[u8]| -> Option<Vec<u8>> {
            let mut n = Some(w);
            while let Some(at) = n {
                if apexes.slot(at).is_some() {
                    return Some(at.to_vec());
                }
                n = crate::dname::parent(at);
            }
            None
        };
        for name in [
            "backhaul.",
            "db.backhaul.",
            "b.backhaul.",
            "c.b.backhaul.",
            "x.c.b.backhaul.",
            "a.x.c.b.backhaul.",
            "other.",
            ".",
            "5.17.147.10.in-addr.arpa.",
            "5.18.147.10.in-addr.arpa.",
            "in-addr.arpa.",
            "1.2.3.0.0.d.f.ip6.arpa.",
            "1.2.3.0.1.d.f.ip6.arpa.",
        ] {
            let w = wire(name);
            let closest = apexes.closest(&w).map(|slot| apexes.names[slot].0.clone());
            assert_eq!(closest, walk(&w), "{name}");
        }
        let closest = apexes.closest(&wire("x.c.b.backhaul.")).unwrap();
        assert_eq!(apexes.names[closest].0, wire("c.b.backhaul."));
    }
}
