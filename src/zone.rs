//! Members -> zones: the forward domain(s) and reverse zones, with SOA and NS at every apex.
//!
//! [`build`] is pure: plain snapshots in, plain records out. [`SerialBook`] then stamps each
//! zone's SOA with a serial that moves when, and only when, that zone's content changed.

use std::collections::{BTreeMap, BTreeSet};

// foldhash (seeded per process) instead of SipHash: the build hashes every owner name several
// times, and SipHash was 7% of a 100,000-member sync.
use foldhash::{HashMap, HashSet, HashSetExt};

use crate::dns::wire::{labels, name_wire, wire_name, wire_to_text};
use std::net::IpAddr;

use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{self, Config};
use crate::names;
use crate::reverse;
use crate::zerotier::{addresses, Member, NetworkId, NetworkSnapshot, NodeId};

mod list;
pub use list::{RecordList, ZoneRecord};

/// SOA timers for secondaries (RFC 1912 section 2.2 ranges).
const SOA_REFRESH: i32 = 3600;
const SOA_RETRY: i32 = 600;
const SOA_EXPIRE: i32 = 14 * 24 * 3600;

/// What the zone needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub ttl: u32,
    pub negative_ttl: u32,
    /// The server's own name: NS target of every zone, and SOA MNAME.
    pub nameserver: Name,
    /// Addresses published for `nameserver`, so the NS name resolves: the addresses the
    /// server answers on, which it learns while running.
    pub nameserver_addresses: Vec<IpAddr>,
}

impl Settings {
    pub fn new(config: &Config) -> Settings {
        Settings {
            ttl: config.ttl,
            negative_ttl: config.negative_ttl,
            nameserver: config.domain.clone(),
            nameserver_addresses: Vec::new(),
        }
    }
}

/// One network's configuration and, once a sync succeeded, its members.
pub struct Input<'a> {
    pub network: &'a config::Network,
    pub snapshot: Option<&'a NetworkSnapshot>,
}

/// Two members wanted the same name; `winner` got it (oldest creationTime, then lowest id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub name: Name,
    pub winner: NodeId,
    pub loser: NodeId,
    pub network: NetworkId,
}

/// Records from the records files, already checked ([`crate::records`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRecords {
    /// `[records] zone_file`: merged into the backhaul view; wins over member names.
    pub private: Vec<Record>,
    /// `[public] zone_file`: the public view, and the fallback for names the backhaul view
    /// lacks. `None` when no public view is configured.
    pub public: Option<Vec<Record>>,
}

/// A member name that a records-file record took over: the member keeps its zt- name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Override {
    pub name: Name,
    pub member: NodeId,
    pub network: NetworkId,
}

/// One zone: an apex and every record at or below it (down to the next apex).
#[derive(Debug, Clone)]
pub struct ZoneContent {
    pub apex: Name,
    /// False until every network feeding this zone has synced once: a miss is then SERVFAIL,
    /// not NXDOMAIN, so resolvers do not cache the absence of names we have not seen yet.
    pub complete: bool,
    /// SHA-256 over the records (SOA excluded), to decide whether the serial moves.
    pub hash: [u8; 32],
    /// Set by [`SerialBook::stamp`], which also puts the SOA first in `records`.
    pub serial: u32,
    /// Grouped by owner, then type, in an order set by the records alone (see
    /// [`RecordList::sorted_subset`]); no duplicates.
    pub records: RecordList,
}

#[derive(Debug, Clone, Default)]
pub struct Zones {
    pub zones: Vec<ZoneContent>,
    /// Members that got at least their zt- name, per network.
    pub members: BTreeMap<NetworkId, usize>,
    /// Records derived from each network's members (A, AAAA, PTR).
    pub records_by_network: BTreeMap<NetworkId, usize>,
    pub conflicts: Vec<Conflict>,
    /// Member names taken over by a records-file record of the same owner.
    pub overridden: Vec<Override>,
}

impl Zones {
    pub fn record_count(&self) -> usize {
        self.zones.iter().map(|z| z.records.len()).sum()
    }
}

/// A member that made it into the zone, with everything derived from it.
struct Entry<'a> {
    network: NetworkId,
    member: &'a Member,
    addresses: Vec<IpAddr>,
    /// Lowercase wire forms of the zt- name and of the name the member asks for: compared and
    /// used as owners.
    zt_wire: Vec<u8>,
    custom_wire: Option<Vec<u8>>,
    custom_won: bool,
}

impl Entry<'_> {
    /// Owners of the member's address records: its zt- name, and its own name if it won it.
    fn owners(&self) -> impl Iterator<Item = &[u8]> {
        let won = self.custom_wire.as_deref().filter(|_| self.custom_won);
        std::iter::once(self.zt_wire.as_slice()).chain(won)
    }

    /// What its PTR records point at: the last of its owners (its own name if it won it).
    fn ptr_target(&self) -> &[u8] {
        self.owners()
            .last()
            .expect("the zt- name is always an owner")
    }
}

/// Builds every zone of the backhaul view from the networks' snapshots and the records files.
/// Pure and deterministic.
pub fn build(inputs: &[Input<'_>], settings: &Settings, files: &FileRecords) -> Zones {
    let mut apexes: BTreeSet<Name> = BTreeSet::new();
    let mut incomplete: HashSet<Name> = HashSet::new();
    apexes.insert(settings.nameserver.clone());
    let mut entries: Vec<Entry<'_>> = Vec::new();

    for input in inputs {
        let domain = &input.network.domain;
        let domain_wire = name_wire(domain);
        apexes.insert(domain.clone());
        let Some(snap) = input.snapshot else {
            incomplete.insert(domain.clone());
            continue;
        };
        for route in &snap.routes {
            apexes.extend(reverse::apexes(*route));
        }
        if snap.rfc4193 {
            apexes.extend(reverse::apexes(addresses::rfc4193_prefix(snap.id).into()));
        }
        for m in &snap.members {
            if !m.authorized && !input.network.include_unauthorized {
                tracing::debug!(network = %snap.id, member = %m.node, "skipping: not authorized");
                continue;
            }
            let addrs = snap.addresses_of(m);
            if addrs.is_empty() {
                tracing::debug!(network = %snap.id, member = %m.node, "skipping: no addresses");
                continue;
            }
            if snap.sixplane && !m.no_auto_assign_ips {
                apexes.extend(reverse::apexes(
                    addresses::sixplane_prefix(snap.id, m.node).into(),
                ));
            }
            let custom_wire = names::member_wire(&m.name, &domain_wire);
            if custom_wire.is_none() && !m.name.trim().is_empty() {
                tracing::debug!(network = %snap.id, member = %m.node, name = %m.name, "no usable name: zt- name only");
            }
            entries.push(Entry {
                network: snap.id,
                member: m,
                addresses: addrs,
                zt_wire: names::zt_wire(m.node, &domain_wire),
                custom_wire,
                custom_won: false,
            });
        }
    }

    // A deliberate record in the records file wins over a member-derived name.
    let file_owners: HashSet<Vec<u8>> = files.private.iter().map(|r| name_wire(&r.name)).collect();
    let (conflicts, overridden) = resolve_names(&mut entries, &apexes, &file_owners);

    // Every record in one list first; each zone then takes its own, sorted. Sized up front:
    // growing it by doubling touched twice the memory, and fresh pages cost a fault each.
    let mut records = RecordList::default();
    {
        let (mut count, mut bytes) = (0, 0);
        for e in &entries {
            let (n, len) = (e.owners()).fold((0, 0), |(n, len), o| (n + 1, len + o.len()));
            let target = e.ptr_target().len();
            for ip in &e.addresses {
                let (rdata, ptr) = if ip.is_ipv4() { (4, 30) } else { (16, 74) };
                count += n + 1;
                bytes += len + n * rdata + ptr + target;
            }
        }
        records.reserve(count, bytes);
    }
    let mut members: BTreeMap<NetworkId, HashSet<NodeId>> = BTreeMap::new();
    let mut records_by_network: BTreeMap<NetworkId, usize> = BTreeMap::new();
    for e in &entries {
        let before = records.len();
        members.entry(e.network).or_default().insert(e.member.node);
        for owner in e.owners() {
            if file_owners.contains(owner) {
                continue;
            }
            for ip in &e.addresses {
                records.push_address(owner, *ip, settings.ttl);
            }
        }
        // PTR RDATA is the target name, uncompressed: its wire form as is.
        for ip in &e.addresses {
            records.push_with(
                |b| reverse::push_ptr_wire(b, *ip),
                u16::from(RecordType::PTR),
                settings.ttl,
                e.ptr_target(),
            );
        }
        *records_by_network.entry(e.network).or_default() += records.len() - before;
    }
    let nameserver = name_wire(&settings.nameserver);
    for ip in &settings.nameserver_addresses {
        records.push_address(&nameserver, *ip, settings.ttl);
    }
    for r in &files.private {
        records.push_record(r);
    }

    // From here on names are compared as lowercase wire bytes: hashing beats Name ordering
    // by a wide margin at 100,000 members.
    let mut all = Apexes::default();
    for a in apexes {
        all.insert(name_wire(&a), a);
    }
    // A PTR outside every reverse zone (an address no managed route covers) gets a zone of
    // its own: authoritative for exactly that name and nothing around it.
    for r in records.iter() {
        if r.rtype == u16::from(RecordType::PTR) && all.closest(r.owner).is_none() {
            all.insert(r.owner.to_vec(), wire_name(r.owner));
        }
    }
    // Nested apexes would need delegations; the outer zone simply holds the inner names.
    let mut by_depth: Vec<(Vec<u8>, Name)> = all.names;
    by_depth.sort_by_key(|(_, n)| n.num_labels());
    let mut apexes = Apexes::default();
    for (wire, name) in by_depth {
        if apexes.closest(&wire).is_none() {
            apexes.insert(wire, name);
        }
    }

    // Names the backhaul view lacks fall back to the public view's records: a whole name at a
    // time, except at an apex, which always holds our SOA and NS, where it goes type by type.
    if let Some(public) = &files.public {
        let mut candidates = RecordList::default();
        for r in public.iter().filter(|r| r.record_type() != RecordType::NS) {
            candidates.push_record(r);
        }
        let owners: HashSet<(&[u8], u16)> = records.iter().map(|r| (r.owner, r.rtype)).collect();
        let names: HashSet<&[u8]> = owners.iter().map(|(o, _)| *o).collect();
        let fallback: Vec<ZoneRecord<'_>> = (candidates.iter())
            .filter(|r| {
                if apexes.slot(r.owner).is_some() {
                    !owners.contains(&(r.owner, r.rtype))
                } else {
                    !names.contains(r.owner)
                }
            })
            .collect();
        drop(owners);
        drop(names);
        for r in fallback {
            records.push(r);
        }
    }
    let file_ns: HashSet<Vec<u8>> = files
        .private
        .iter()
        .filter(|r| r.record_type() == RecordType::NS)
        .map(|r| name_wire(&r.name))
        .collect();

    // NS records at the apex in the records file replace ours (to list secondaries).
    for (wire, apex) in &apexes.names {
        if !file_ns.contains(wire) {
            records.push_record(&Record::from_rdata(
                apex.clone(),
                settings.ttl,
                RData::NS(NS(settings.nameserver.clone())),
            ));
        }
    }
    let mut picked: Vec<Vec<u32>> = vec![Vec::new(); apexes.names.len()];
    for (i, r) in records.iter().enumerate() {
        let slot = apexes
            .closest(r.owner)
            .expect("every owner is under an apex");
        picked[slot].push(i as u32);
    }

    let mut zones: Vec<ZoneContent> = (apexes.names.iter().zip(&picked))
        .map(|((_, apex), picked)| {
            let records = records.sorted_subset(picked);
            let complete = !incomplete
                .iter()
                .any(|d| apex.zone_of(d) || d.zone_of(apex));
            ZoneContent {
                hash: content_hash(&records),
                apex: apex.clone(),
                complete,
                serial: 0,
                records,
            }
        })
        .collect();
    zones.sort_by_cached_key(|z| canonical_key(&name_wire(&z.apex)));

    Zones {
        zones,
        members: members.into_iter().map(|(k, v)| (k, v.len())).collect(),
        records_by_network,
        conflicts,
        overridden,
    }
}

/// The public view: one zone at the domain holding the public records file only (never a
/// member record), with our SOA, and our NS unless the file lists its own.
/// `settings.nameserver_addresses` are the public addresses.
pub fn build_public(records: &[Record], settings: &Settings) -> Zones {
    let apex = settings.nameserver.clone();
    let mut out = RecordList::default();
    for r in records {
        out.push_record(r);
    }
    let apex_wire = name_wire(&apex);
    let has_ns = out
        .iter()
        .any(|r| r.record_type() == RecordType::NS && r.owner == apex_wire);
    if !has_ns {
        out.push_record(&Record::from_rdata(
            apex.clone(),
            settings.ttl,
            RData::NS(NS(apex.clone())),
        ));
        for ip in &settings.nameserver_addresses {
            out.push_address(&apex_wire, *ip, settings.ttl);
        }
    }
    let out = out.sorted();
    Zones {
        zones: vec![ZoneContent {
            hash: content_hash(&out),
            apex,
            complete: true,
            serial: 0,
            records: out,
        }],
        ..Zones::default()
    }
}

/// Applies the collision rule; returns the conflicts (one per losing member) and the member
/// names that a records-file name took over.
fn resolve_names(
    entries: &mut [Entry<'_>],
    apexes: &BTreeSet<Name>,
    file_owners: &HashSet<Vec<u8>>,
) -> (Vec<Conflict>, Vec<Override>) {
    let mut overridden = Vec::new();
    // Sorting the claims by name groups the claimants of each name without a map of lists.
    let mut claims: Vec<usize> = {
        let zt_names: HashSet<&[u8]> = entries.iter().map(|e| e.zt_wire.as_slice()).collect();
        let apexes: HashSet<Vec<u8>> = apexes.iter().map(name_wire).collect();
        let mut claims = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let Some(wire) = &e.custom_wire else {
                continue;
            };
            if zt_names.contains(wire.as_slice()) || apexes.contains(wire) {
                tracing::warn!(network = %e.network, member = %e.member.node, name = %wire_to_text(wire),
                    "name is reserved (a zt- name or a zone apex): zt- name only");
                continue;
            }
            if file_owners.contains(wire) {
                overridden.push(Override {
                    name: wire_name(wire),
                    member: e.member.node,
                    network: e.network,
                });
                continue;
            }
            claims.push(i);
        }
        claims
    };
    claims.sort_by(|a, b| {
        let (ea, eb) = (&entries[*a], &entries[*b]);
        (ea.custom_wire.cmp(&eb.custom_wire)).then_with(|| names::precedence(ea.member, eb.member))
    });
    let mut conflicts = Vec::new();
    let groups: Vec<&[usize]> = claims
        .chunk_by(|a, b| entries[*a].custom_wire == entries[*b].custom_wire)
        .collect();
    for claimants in groups {
        let winner = entries[claimants[0]].member.node;
        for &i in claimants {
            let e = &mut entries[i];
            // The same node in two networks is one host, not a conflict.
            if e.member.node == winner {
                e.custom_won = true;
            } else {
                let name = wire_name(e.custom_wire.as_ref().expect("claims have names"));
                tracing::warn!(network = %e.network, name = %name, winner = %winner, loser = %e.member.node,
                    "name conflict: the older member keeps the name, the other keeps only its zt- name");
                conflicts.push(Conflict {
                    name,
                    winner,
                    loser: e.member.node,
                    network: e.network,
                });
            }
        }
    }
    conflicts.sort_by(|a, b| (&a.name, a.loser).cmp(&(&b.name, b.loser)));
    overridden.sort_by(|a, b| (&a.name, a.member).cmp(&(&b.name, b.member)));
    (conflicts, overridden)
}

/// Zone apexes by lowercase wire name, and the label counts at which there are any: finding a
/// name's zone then tries a few of its suffixes, not each of its ancestors (an ip6.arpa name
/// has 34), which made finding the zones of a 100,000-member build's records 3x faster.
#[derive(Default)]
struct Apexes {
    /// Each apex's wire form and name; its position is its slot.
    names: Vec<(Vec<u8>, Name)>,
    slots: HashMap<Vec<u8>, usize>,
    /// Distinct label counts of the apexes, deepest first.
    depths: Vec<usize>,
}

impl Apexes {
    fn insert(&mut self, wire: Vec<u8>, name: Name) {
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
    fn slot(&self, wire: &[u8]) -> Option<usize> {
        self.slots.get(wire).copied()
    }

    /// The slot of the apex a wire name belongs to: itself or its nearest ancestor among the
    /// apexes.
    fn closest(&self, wire: &[u8]) -> Option<usize> {
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

/// RDATA in wire form with no compression (pointers would be relative to the wrong message).
pub fn rdata_wire(rdata: &RData) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    rdata
        .emit(&mut enc)
        .expect("in-memory RDATA always encodes");
    buf
}

/// Sort key giving DNSSEC canonical name order (RFC 4034 6.1) with plain byte comparison:
/// labels from the root down, each followed by a 0 byte so that a label sorts before its
/// extensions (`a` < `ab`).
fn canonical_key(wire: &[u8]) -> Vec<u8> {
    let labels: Vec<&[u8]> = labels(wire).collect();
    let mut key = Vec::with_capacity(wire.len());
    for l in labels.iter().rev() {
        key.extend_from_slice(l);
        key.push(0);
    }
    key
}

fn content_hash(records: &RecordList) -> [u8; 32] {
    let mut h = Sha256::new();
    for r in records
        .iter()
        .filter(|r| r.record_type() != RecordType::SOA)
    {
        h.update(r.owner);
        h.update(r.rtype.to_be_bytes());
        h.update(r.ttl.to_be_bytes());
        h.update((r.rdata.len() as u16).to_be_bytes());
        h.update(r.rdata);
    }
    h.finalize().into()
}

/// Last serial and content hash of every zone, persisted in `state_dir` across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerialBook {
    zones: BTreeMap<String, SerialEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SerialEntry {
    hash: String,
    serial: u32,
}

/// RFC 1982 serial number arithmetic: is `a` after `b`?
fn serial_after(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl SerialBook {
    /// Gives every zone its serial and SOA. A zone whose content hash is unchanged keeps its
    /// serial; a changed or new zone gets the current Unix time, or last serial + 1 if that is
    /// not later (several changes in one second). A zone still waiting for its first sync
    /// shows its last serial and is not recorded: its content is not the real content yet.
    /// Returns whether the book changed.
    pub fn stamp(&mut self, zones: &mut Zones, now_unix: u32, settings: &Settings) -> bool {
        let before = self.clone();
        let all_complete = zones.zones.iter().all(|z| z.complete);
        let mut seen = BTreeSet::new();
        for z in &mut zones.zones {
            let key = z.apex.to_ascii();
            let hash = hex(&z.hash);
            let previous = self.zones.get(&key);
            let serial = match previous {
                Some(e) if e.hash == hash || !z.complete => e.serial,
                Some(e) if serial_after(now_unix, e.serial) => now_unix,
                Some(e) => e.serial.wrapping_add(1),
                None => now_unix,
            };
            if z.complete {
                self.zones.insert(key.clone(), SerialEntry { hash, serial });
            }
            seen.insert(key);
            z.serial = serial;
            let rname = Name::from_ascii("hostmaster")
                .and_then(|n| n.append_domain(&settings.nameserver))
                .expect("hostmaster.<domain> is a valid name");
            let soa = SOA::new(
                settings.nameserver.clone(),
                rname,
                serial,
                SOA_REFRESH,
                SOA_RETRY,
                SOA_EXPIRE,
                settings.negative_ttl,
            );
            (z.records).set_first(&Record::from_rdata(
                z.apex.clone(),
                settings.ttl,
                RData::SOA(soa),
            ));
        }
        // Forget zones that are gone, but only once the picture is whole: before the first
        // sync the reverse zones are not built yet and must keep their serials.
        if all_complete {
            self.zones.retain(|k, _| seen.contains(k));
        }
        *self != before
    }
}

/// RFC 1035 master-file text of every zone (the `zone` command, and how operators list hosts).
pub fn master_file(zones: &Zones) -> String {
    let mut out = String::new();
    for z in &zones.zones {
        out.push_str(&format!(
            "; zone {} serial {}{}\n$ORIGIN {}\n",
            z.apex,
            z.serial,
            if z.complete {
                ""
            } else {
                " (incomplete: a network has not synced yet)"
            },
            z.apex
        ));
        // SOA first, then canonical order (RFC 4034 6.1), as people expect to read a zone.
        let mut rest: Vec<ZoneRecord<'_>> = z.records.iter().skip(1).collect();
        rest.sort_by_cached_key(|r| (canonical_key(r.owner), r.rtype, r.rdata));
        for r in z.records.iter().take(1).chain(rest) {
            out.push_str(&format!("{}\n", r.to_record()));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
                n = crate::dns::wire::parent(at);
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

    fn network(id: &str, domain: &str) -> config::Network {
        config::Network {
            id: id.parse().unwrap(),
            domain: Name::from_ascii(domain).unwrap(),
            source: config::Source::File {
                members_file: "/dev/null".into(),
            },
            poll_interval: Duration::from_secs(30),
            include_unauthorized: false,
            push_dns: false,
        }
    }

    fn member(node: &str, name: &str, created: i64, ips: &[&str]) -> Member {
        Member {
            node: node.parse().unwrap(),
            name: name.into(),
            authorized: true,
            creation_time: Some(created),
            ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
            no_auto_assign_ips: false,
        }
    }

    fn settings() -> Settings {
        Settings {
            ttl: 60,
            negative_ttl: 30,
            nameserver: Name::from_ascii("backhaul.").unwrap(),
            nameserver_addresses: vec!["10.147.17.1".parse().unwrap()],
        }
    }

    fn snapshot(members: Vec<Member>) -> NetworkSnapshot {
        NetworkSnapshot {
            id: "8056c2e21c000001".parse().unwrap(),
            rfc4193: false,
            sixplane: false,
            routes: vec!["10.147.17.0/24".parse().unwrap()],
            members,
        }
    }

    /// The zones of one network with the test settings and no records files.
    fn build_one(net: &config::Network, snapshot: Option<&NetworkSnapshot>) -> Zones {
        build(
            &[Input {
                network: net,
                snapshot,
            }],
            &settings(),
            &FileRecords::default(),
        )
    }

    fn lines(zones: &Zones) -> Vec<String> {
        zones
            .zones
            .iter()
            .flat_map(|z| z.records.iter().map(|r| r.to_record().to_string()))
            .collect()
    }

    #[test]
    fn members_become_forward_and_reverse_records() {
        let net = network("8056c2e21c000001", "backhaul.");
        let snap = snapshot(vec![
            member("a45dc9d260", "DB", 1, &["10.147.17.5"]),
            member("e610b78bf1", "", 2, &["10.147.17.6"]),
        ]);
        let zones = build_one(&net, Some(&snap));
        let l = lines(&zones);
        for want in [
            "db.backhaul. 60 IN A 10.147.17.5",
            "zt-a45dc9d260.backhaul. 60 IN A 10.147.17.5",
            "zt-e610b78bf1.backhaul. 60 IN A 10.147.17.6",
            "5.17.147.10.in-addr.arpa. 60 IN PTR db.backhaul.",
            "6.17.147.10.in-addr.arpa. 60 IN PTR zt-e610b78bf1.backhaul.",
            "backhaul. 60 IN NS backhaul.",
            "17.147.10.in-addr.arpa. 60 IN NS backhaul.",
        ] {
            assert!(l.iter().any(|x| x == want), "missing {want} in {l:#?}");
        }
        let apexes: Vec<String> = zones.zones.iter().map(|z| z.apex.to_ascii()).collect();
        assert_eq!(apexes, ["17.147.10.in-addr.arpa.", "backhaul."]); // canonical order
        assert!(zones.zones.iter().all(|z| z.complete));
        assert_eq!(zones.members.values().sum::<usize>(), 2);
    }

    #[test]
    fn collision_oldest_wins_and_is_reported() {
        let net = network("8056c2e21c000001", "backhaul.");
        let snap = snapshot(vec![
            member("00000000bb", "web", 5, &["10.147.17.2"]),
            member("00000000aa", "Web", 5, &["10.147.17.3"]),
            member("00000000cc", "web", 1, &["10.147.17.4"]),
        ]);
        let zones = build_one(&net, Some(&snap));
        let l = lines(&zones);
        let web: Vec<&String> = l.iter().filter(|x| x.starts_with("web.")).collect();
        assert_eq!(web, ["web.backhaul. 60 IN A 10.147.17.4"]);
        assert_eq!(zones.conflicts.len(), 2);
        assert!(zones
            .conflicts
            .iter()
            .all(|c| c.winner.to_string() == "00000000cc"));
    }

    #[test]
    fn computed_ipv6_and_their_reverse_zones() {
        let net = network("8056c2e21c000001", "backhaul.");
        let mut snap = snapshot(vec![member("a45dc9d260", "db", 1, &[])]);
        snap.rfc4193 = true;
        snap.sixplane = true;
        let zones = build_one(&net, Some(&snap));
        let l = lines(&zones);
        assert!(l.contains(&"db.backhaul. 60 IN AAAA fd80:56c2:e21c:0:199:93a4:5dc9:d260".into()));
        let apexes: Vec<String> = zones.zones.iter().map(|z| z.apex.to_ascii()).collect();
        assert!(apexes.contains(&"3.9.9.9.1.0.0.0.0.0.c.1.2.e.2.c.6.5.0.8.d.f.ip6.arpa.".into()));
        assert_eq!(apexes.len(), 4, "{apexes:?}"); // forward, ipv4, rfc4193, one 6plane /80
    }

    #[test]
    fn content_hashes_are_stable() {
        // Serials survive restarts and upgrades through these hashes (state_dir/serials.json):
        // a change in how records are sorted, deduplicated or hashed would move every zone's
        // serial once and make every secondary transfer everything.
        let net = network("8056c2e21c000001", "backhaul.");
        let mut snap = snapshot(vec![
            member("a45dc9d260", "DB", 1, &["10.147.17.5"]),
            member("e610b78bf1", "", 2, &["10.147.17.6", "10.9.9.9"]),
            member("e610b78bf2", "db", 3, &["10.147.17.6"]),
        ]);
        snap.rfc4193 = true;
        let zones = build_one(&net, Some(&snap));
        let hashes: Vec<(String, String)> = (zones.zones.iter())
            .map(|z| (z.apex.to_ascii(), hex(&z.hash)))
            .collect();
        let want = [
            (
                "17.147.10.in-addr.arpa.",
                "61239ccd11d0e8e60e98112fd4472c97053eff6b3bccb6441958c19f57c4cd83",
            ),
            (
                "9.9.9.10.in-addr.arpa.",
                "b5dd3e090c545711bc097528c180635f794fa2a7f552fdc874e3d01af05d4f87",
            ),
            (
                "3.9.9.9.1.0.0.0.0.0.c.1.2.e.2.c.6.5.0.8.d.f.ip6.arpa.",
                "2e44d1716fe72c05a4a45d204ebb8980fd95c054082c0219254addfeed63b8e2",
            ),
            (
                "backhaul.",
                "8ab2635d96a9c66a0acdb2e69bce223acccab5997ccfd089cac5b6d172e9bf13",
            ),
        ];
        let want: Vec<(String, String)> = (want.iter())
            .map(|(a, h)| (a.to_string(), h.to_string()))
            .collect();
        assert_eq!(hashes, want);
    }

    #[test]
    fn unsynced_network_marks_zone_incomplete() {
        let net = network("8056c2e21c000001", "backhaul.");
        let zones = build_one(&net, None);
        assert_eq!(zones.zones.len(), 1);
        assert!(!zones.zones[0].complete);
    }

    #[test]
    fn serial_moves_only_on_change() {
        let net = network("8056c2e21c000001", "backhaul.");
        let make = |ip: &str| {
            let snap = snapshot(vec![member("a45dc9d260", "db", 1, &[ip])]);
            build_one(&net, Some(&snap))
        };
        let mut book = SerialBook::default();
        let mut z1 = make("10.147.17.5");
        assert!(book.stamp(&mut z1, 1000, &settings()));
        assert_eq!(z1.zones[0].serial, 1000);
        assert_eq!(z1.zones[0].records.get(0).record_type(), RecordType::SOA);
        let mut z2 = make("10.147.17.5");
        assert!(!book.stamp(&mut z2, 2000, &settings()));
        assert_eq!(z2.zones[0].serial, 1000);
        let mut z3 = make("10.147.17.9");
        book.stamp(&mut z3, 2000, &settings());
        assert_eq!(z3.zones[0].serial, 2000);
        let mut z4 = make("10.147.17.10");
        book.stamp(&mut z4, 2000, &settings()); // same second: +1
        assert_eq!(z4.zones[0].serial, 2001);
        // A restart: the not-yet-synced zone shows the old serial and does not disturb the
        // book, so the first real build keeps the serial too.
        let mut empty = build_one(&net, None);
        assert!(!book.stamp(&mut empty, 3000, &settings()));
        assert_eq!(empty.zones[0].serial, 2001);
        let mut z5 = make("10.147.17.10");
        assert!(!book.stamp(&mut z5, 3000, &settings()));
        assert!(z5
            .zones
            .iter()
            .all(|z| z.serial == 2001 || z.apex.to_ascii() != "backhaul."));
    }
}
