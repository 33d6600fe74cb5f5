//! The compiled, immutable zone the query path reads: a hash index by lowercased wire name,
//! with every RRset already encoded.
//!
//! Built once per sync from [`crate::zone::Zones`] and swapped in whole. Every name between a
//! record's owner and its apex is present (empty non-terminals too), so the nearest existing
//! ancestor of a missing name tells both that the name does not exist and which zone's SOA
//! goes in the negative answer: a handful of hash probes at any zone size.

// foldhash, seeded per process: fast on short keys and not predictable by clients, whose
// query names are the lookup keys (the table itself is fixed and built from our own data).
use foldhash::HashMap;

use hickory_proto::rr::RecordType;

use super::wire::parent;
use crate::zone::Zones;

/// Class IN on the wire.
const CLASS_IN: u16 = 1;
/// The `*` label in wire form.
const WILDCARD_LABEL: &[u8] = b"\x01*";
/// Compression pointer to the question name, which always sits at offset 12.
const POINTER_TO_QNAME: [u8; 2] = [0xc0, 0x0c];

/// One RRset ready to copy into an answer.
pub struct RrSet {
    pub rtype: u16,
    pub count: u16,
    /// Every record as `C0 0C | TYPE | CLASS | TTL | RDLENGTH | RDATA`: the owner is a pointer
    /// to the question name, which is the owner of everything answered at a node.
    pub wire: Box<[u8]>,
}

pub struct Node {
    pub zone: u32,
    /// `*.<this name>` exists: a miss right below this name is answered from it (RFC 4592).
    pub wildcard_child: bool,
    /// Empty for an empty non-terminal. Few per node: a linear scan beats hashing.
    pub rrsets: Box<[RrSet]>,
}

pub struct ZoneMeta {
    /// Length of the apex name in wire form, to point at it inside the question name.
    pub apex_len: usize,
    /// `TYPE | CLASS | TTL | RDLENGTH | RDATA` of the SOA with TTL = min(SOA TTL, MINIMUM)
    /// (RFC 2308 section 3), for the authority section of negative answers.
    pub negative_soa: Box<[u8]>,
    pub complete: bool,
    pub serial: u32,
}

/// Where a name lands.
pub enum Lookup<'a> {
    /// The name exists (possibly as an empty non-terminal), or a wildcard covers it.
    Found(&'a Node, &'a ZoneMeta),
    /// Inside one of our zones, but no such name.
    NxDomain(&'a ZoneMeta),
    /// Not in any zone we serve.
    NotOurs,
}

#[derive(Default)]
pub struct ZoneIndex {
    nodes: HashMap<Box<[u8]>, Node>,
    zones: Vec<ZoneMeta>,
}

/// `db.backhaul.` from wire form, for logs.
pub fn wire_to_text(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = wire;
    while let Some(&len) = rest.first().filter(|l| **l != 0) {
        let label = rest.get(1..1 + usize::from(len)).unwrap_or_default();
        out.push_str(&String::from_utf8_lossy(label));
        out.push('.');
        rest = rest.get(1 + usize::from(len)..).unwrap_or_default();
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// Appends `TYPE | CLASS | TTL | RDLENGTH | RDATA`.
fn push_tail(w: &mut Vec<u8>, rtype: u16, ttl: u32, rdata: &[u8]) {
    w.extend_from_slice(&rtype.to_be_bytes());
    w.extend_from_slice(&CLASS_IN.to_be_bytes());
    w.extend_from_slice(&ttl.to_be_bytes());
    w.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    w.extend_from_slice(rdata);
}

impl ZoneIndex {
    pub fn compile(zones: &Zones) -> ZoneIndex {
        let mut index = ZoneIndex::default();
        let records: usize = zones.zones.iter().map(|z| z.records.len()).sum();
        index.nodes.reserve(records);
        for (zi, z) in zones.zones.iter().enumerate() {
            let zone = zi as u32;
            let apex = crate::dns::wire::name_wire(&z.apex);
            let mut negative_soa = Vec::new();
            // Records arrive sorted: an owner's records are contiguous, and so are its RRsets.
            for owned in z.records.chunk_by(|a, b| a.owner == b.owner) {
                let mut rrsets = Vec::with_capacity(owned.len().min(4));
                for set in owned.chunk_by(|a, b| a.rtype == b.rtype) {
                    let size = set.iter().map(|r| 12 + r.rdata.len()).sum();
                    let mut wire = Vec::with_capacity(size);
                    for r in set {
                        if r.record_type() == RecordType::SOA {
                            // MINIMUM is the last field of SOA RDATA (RFC 1035 3.3.13).
                            let minimum = (r.rdata.len().checked_sub(4))
                                .and_then(|i| r.rdata[i..].try_into().ok())
                                .map(u32::from_be_bytes)
                                .unwrap_or(r.ttl);
                            negative_soa.clear();
                            push_tail(&mut negative_soa, r.rtype, r.ttl.min(minimum), &r.rdata);
                        }
                        wire.extend_from_slice(&POINTER_TO_QNAME);
                        push_tail(&mut wire, r.rtype, r.ttl, &r.rdata);
                    }
                    rrsets.push(RrSet {
                        rtype: set[0].rtype,
                        count: set.len() as u16,
                        wire: wire.into_boxed_slice(),
                    });
                }
                let owner = &owned[0].owner;
                // Empty non-terminals between the owner and the apex. Every name already in
                // the index has its ancestors there too, so the walk stops at the first one
                // found: a 34-label ip6.arpa owner costs a probe or two, not 34.
                let mut up = parent(owner);
                while let Some(p) = up {
                    if p.len() < apex.len() || p == apex.as_slice() || index.nodes.contains_key(p) {
                        break;
                    }
                    let ent = Node {
                        zone,
                        wildcard_child: false,
                        rrsets: Box::new([]),
                    };
                    index.nodes.insert(p.into(), ent);
                    up = parent(p);
                }
                match index.nodes.get_mut(&owner[..]) {
                    // Already there as an empty non-terminal or from another zone's records.
                    Some(node) => {
                        let mut all = std::mem::take(&mut node.rrsets).into_vec();
                        all.extend(rrsets);
                        node.rrsets = all.into_boxed_slice();
                    }
                    None => {
                        let node = Node {
                            zone,
                            wildcard_child: false,
                            rrsets: rrsets.into_boxed_slice(),
                        };
                        index.nodes.insert(owner.clone(), node);
                    }
                }
            }
            index.zones.push(ZoneMeta {
                apex_len: apex.len(),
                negative_soa: negative_soa.into_boxed_slice(),
                complete: z.complete,
                serial: z.serial,
            });
        }
        let parents: Vec<Box<[u8]>> = index
            .nodes
            .keys()
            .filter(|k| k.starts_with(WILDCARD_LABEL))
            .filter_map(|k| parent(k).map(Box::from))
            .collect();
        for p in parents {
            if let Some(node) = index.nodes.get_mut(&p) {
                node.wildcard_child = true;
            }
        }
        index
    }

    /// `qname` is lowercase wire form (as [`super::wire::QName::wire`] gives it).
    pub fn lookup(&self, qname: &[u8]) -> Lookup<'_> {
        if let Some(node) = self.nodes.get(qname) {
            return Lookup::Found(node, &self.zones[node.zone as usize]);
        }
        // The nearest existing ancestor is the closest encloser (RFC 4592 3.3.1): only its
        // wildcard child may answer; below an existing name no other wildcard applies.
        let mut up = parent(qname);
        while let Some(p) = up {
            if let Some(node) = self.nodes.get(p) {
                if node.wildcard_child {
                    let mut key = [0u8; 256];
                    key[..2].copy_from_slice(WILDCARD_LABEL);
                    key[2..2 + p.len()].copy_from_slice(p);
                    if let Some(source) = self.nodes.get(&key[..2 + p.len()]) {
                        return Lookup::Found(source, &self.zones[source.zone as usize]);
                    }
                }
                return Lookup::NxDomain(&self.zones[node.zone as usize]);
            }
            up = parent(p);
        }
        Lookup::NotOurs
    }

    /// The zone whose apex is exactly `qname`, if we serve one.
    pub fn zone_at_apex(&self, qname: &[u8]) -> Option<(u32, &Node, &ZoneMeta)> {
        let node = self.nodes.get(qname)?;
        let meta = &self.zones[node.zone as usize];
        (meta.apex_len == qname.len()).then_some((node.zone, node, meta))
    }

    /// Every name of one zone, in no particular order (zone transfers).
    pub fn names_in(&self, zone: u32) -> impl Iterator<Item = (&[u8], &Node)> {
        self.nodes
            .iter()
            .filter(move |(_, n)| n.zone == zone)
            .map(|(k, n)| (&k[..], n))
    }

    pub fn names(&self) -> usize {
        self.nodes.len()
    }
}
