//! Members -> zones: the forward domain(s) and reverse zones, with SOA and NS at every apex.
//!
//! [`build`] is pure: plain snapshots in, plain records out. [`SerialBook`] then stamps each
//! zone's SOA with a serial that moves when, and only when, that zone's content changed.

use std::collections::{BTreeMap, BTreeSet};

// foldhash (seeded per process) instead of SipHash: the build hashes every owner name several
// times, and SipHash was 7% of a 100,000-member sync.
use foldhash::{HashSet, HashSetExt};

use std::net::IpAddr;

use crate::dname::{labels, name_wire, wire_name, wire_to_text};

use hickory_proto::rr::rdata::NS;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use sha2::{Digest, Sha256};

use crate::config::{self, Config};
use crate::ids::{NetworkId, NodeId};
use crate::names::{self, Conflict, Named, Override};
use crate::records::FileRecords;
use crate::reverse;
use crate::zerotier::{addresses, NetworkSnapshot};

mod apexes;
mod catalog;
pub mod directory;
pub mod journal;
mod list;
mod master;
mod public;
pub mod scopes;
mod serial;
pub mod services;
pub mod update;

use apexes::Apexes;
pub use catalog::member_zones;
pub use directory::{directory, Directory};
pub use journal::Journal;
pub use list::{RecordList, ZoneRecord};
pub use master::master_file;
pub use public::build_public;
pub use scopes::{Masks, ScopeMap};
pub use serial::{serial_after, SerialBook};
pub use services::{ServiceMember, ServicePlan};

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
    /// `[soa]`: names and timers of every SOA.
    pub soa: config::Soa,
    /// `[[service]]`.
    pub services: Vec<config::Service>,
    /// `[[scope]]`.
    pub scopes: Vec<config::Scope>,
    /// `[transfer] catalog`: the catalog zone's name.
    pub catalog: Option<Name>,
}

impl Settings {
    pub fn new(config: &Config) -> Settings {
        Settings {
            ttl: config.ttl,
            negative_ttl: config.negative_ttl,
            nameserver: config.domain.clone(),
            nameserver_addresses: Vec::new(),
            soa: config.soa.clone(),
            services: config.services.clone(),
            scopes: config.scopes.clone(),
            catalog: config.transfer.catalog.clone(),
        }
    }
}

/// One network's configuration and, once a sync succeeded, its members.
pub struct Input<'a> {
    pub network: &'a config::Network,
    pub snapshot: Option<&'a NetworkSnapshot>,
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
    /// The differences from older serials (IXFR), when zone transfers are configured: set by
    /// the builder after stamping, served with the zone.
    pub journal: Option<std::sync::Arc<Journal>>,
    /// A followed zone the primary has not confirmed for longer than its SOA expire: every
    /// query in it gets SERVFAIL, as secondaries answer (RFC 1035 3.3.13).
    pub expired: bool,
}

impl ZoneContent {
    /// A zone taken whole from another server (`[follow]`): `records` hold its SOA first,
    /// then the rest sorted as [`RecordList::sorted_subset`] sorts them; served with the
    /// primary's serial.
    pub fn followed(apex: Name, serial: u32, records: RecordList, expired: bool) -> ZoneContent {
        ZoneContent {
            hash: content_hash(&records),
            apex,
            complete: true,
            serial,
            records,
            journal: None,
            expired,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Zones {
    pub zones: Vec<ZoneContent>,
    /// Members that got at least their zt- name, per network.
    pub members: BTreeMap<NetworkId, usize>,
    /// Records derived from each network's members (A, AAAA, PTR).
    pub records_by_network: BTreeMap<NetworkId, usize>,
    pub conflicts: Vec<Conflict>,
    /// Member names taken over by a records-file record or a service of the same name.
    pub overridden: Vec<Override>,
    /// Every `[[service]]` with its members (the health checks' input).
    pub services: Vec<ServicePlan>,
    /// Who sees what (`[[scope]]`), for this build's names and members.
    pub scopes: std::sync::Arc<ScopeMap>,
    /// The networks' subnets (managed routes, RFC 4193 prefixes): a client's own subnet
    /// comes first in the addresses it is answered with.
    pub subnets: Vec<ipnet::IpNet>,
    /// The records RFC 2136 updates wrote that this build serves (sorted), marked as such in
    /// `zone` output.
    pub updated: RecordList,
}

impl Zones {
    pub fn record_count(&self) -> usize {
        self.zones.iter().map(|z| z.records.len()).sum()
    }
}

/// Builds every zone of the backhaul view from the networks' snapshots and the records files.
/// Pure and deterministic.
/// `updated`: what RFC 2136 updates wrote, which loses to every other source.
pub fn build(
    inputs: &[Input<'_>],
    settings: &Settings,
    files: &FileRecords,
    updated: &RecordList,
) -> Zones {
    let Settled {
        entries,
        apexes,
        incomplete,
        conflicts,
        overridden,
        reserved,
        plans,
    } = settle(inputs, settings, files, names::Report::Log);
    let (mut records, members, records_by_network) = member_records(&entries, &reserved, settings);
    services::push_records(&mut records, &plans);
    // The listen addresses are the apex's A/AAAA (the NS name's addresses), unless the records
    // file sets the apex's NS or addresses: then its records stand alone (one TTL per RRset,
    // RFC 2181 5.2, and no address of ours beside servers it names).
    let nameserver = name_wire(&settings.nameserver);
    let file_sets_apex = files.private.iter().any(|r| {
        matches!(
            r.record_type(),
            RecordType::NS | RecordType::A | RecordType::AAAA
        ) && name_wire(&r.name) == nameserver
    });
    if !file_sets_apex {
        for ip in &settings.nameserver_addresses {
            records.push_address(&nameserver, *ip, settings.ttl);
        }
    }
    for r in &files.private {
        records.push_record(r);
    }
    let apexes = place_apexes(apexes, &records);
    if let Some(public) = &files.public {
        public_fallback(&mut records, public, &apexes);
    }
    let updated = update::push_updated(&mut records, updated, &apexes);
    apex_ns(&mut records, &apexes, &files.private, settings);
    let file_owners: Vec<Vec<u8>> = files.private.iter().map(|r| name_wire(&r.name)).collect();
    let scopes = scopes::map(
        &settings.scopes,
        inputs,
        &entries,
        &settings.services,
        &file_owners,
        &records,
        &apexes,
    );
    // Each problem once per process, not at every build.
    static REPORTED: std::sync::LazyLock<crate::once::LogOnce<String>> =
        std::sync::LazyLock::new(Default::default);
    for problem in scopes
        .problems
        .iter()
        .filter(|p| REPORTED.first((*p).clone()))
    {
        tracing::warn!(%problem, "a scope cannot pick some members");
    }
    let mut zones = split(&records, &apexes, &incomplete);
    if let Some(name) = &settings.catalog {
        let members: Vec<&ZoneContent> = zones.iter().collect();
        let listing = catalog::catalog(name, &members, settings.ttl);
        zones.push(listing);
        zones.sort_by_cached_key(|z| canonical_key(&name_wire(&z.apex)));
    }
    Zones {
        zones,
        members,
        records_by_network,
        conflicts,
        overridden,
        services: plans,
        scopes: std::sync::Arc::new(scopes),
        subnets: subnets(inputs),
        updated,
    }
}

/// Every network's subnets, most specific first (a client's own subnet is the most specific
/// one holding its address).
fn subnets(inputs: &[Input<'_>]) -> Vec<ipnet::IpNet> {
    let mut out: Vec<ipnet::IpNet> = (inputs.iter())
        .filter_map(|i| i.snapshot)
        .flat_map(|s| {
            let rfc4193 = s.rfc4193.then(|| addresses::rfc4193_prefix(s.id).into());
            s.routes.iter().copied().chain(rfc4193)
        })
        .collect();
    out.sort_by_key(|n| std::cmp::Reverse(n.prefix_len()));
    out.dedup();
    out
}

/// Who gets which name: the members that get names (collisions settled, aliases given), the
/// zone apexes, and each service's members.
struct Settled<'a> {
    entries: Vec<Named<'a>>,
    apexes: BTreeSet<Name>,
    /// Domains of networks not synced yet.
    incomplete: HashSet<Name>,
    conflicts: Vec<Conflict>,
    overridden: Vec<Override>,
    /// Names members may not have: the records file's owners and the services' names.
    reserved: HashSet<Vec<u8>>,
    plans: Vec<ServicePlan>,
}

/// Steps 1 and 2: gathers the members and settles their names.
fn settle<'a>(
    inputs: &[Input<'a>],
    settings: &Settings,
    files: &FileRecords,
    report: names::Report,
) -> Settled<'a> {
    let Gathered {
        mut entries,
        apexes,
        incomplete,
    } = gather(inputs, settings);
    // A deliberate record in the records file, or a service's name, wins over a member-derived
    // name.
    let file_owners: HashSet<Vec<u8>> = files.private.iter().map(|r| name_wire(&r.name)).collect();
    let mut reserved = file_owners.clone();
    for (owner, srv) in services::owner_names(&settings.services) {
        reserved.extend(std::iter::once(owner).chain(srv));
    }
    let (mut conflicts, overridden) = names::resolve(&mut entries, &apexes, &reserved, report);
    let mut taken = reserved.clone();
    taken.extend(apexes.iter().map(name_wire));
    let domains: BTreeMap<NetworkId, Vec<u8>> = (inputs.iter())
        .map(|i| (i.network.id, name_wire(&i.network.domain)))
        .collect();
    let domain_of = |id: NetworkId| domains.get(&id).cloned().unwrap_or_default();
    conflicts.extend(names::resolve_aliases(
        &mut entries,
        domain_of,
        taken,
        report,
    ));
    give_wildcards(&mut entries, inputs, &reserved);
    let plans = services::select(&settings.services, &entries, inputs, &file_owners);
    Settled {
        entries,
        apexes,
        incomplete,
        conflicts,
        overridden,
        reserved,
        plans,
    }
}

/// `*.<name>` for the members that ask for it (`dns: *` in the description) or that their
/// network's `wildcard` selectors pick (RFC 4592: names that exist below stay themselves),
/// unless the records file or a service has that name.
fn give_wildcards(entries: &mut [Named<'_>], inputs: &[Input<'_>], reserved: &HashSet<Vec<u8>>) {
    let mut wanted: Vec<bool> = (entries.iter())
        .map(|e| e.member.hints.as_ref().is_some_and(|h| h.wildcard))
        .collect();
    if inputs.iter().any(|i| !i.network.wildcard.is_empty()) {
        let globs = (inputs.iter())
            .flat_map(|i| &i.network.wildcard)
            .any(|s| matches!(s, config::Selector::Glob(_)));
        let picker = scopes::Picker::new(entries, inputs, globs);
        let mut problems = Vec::new();
        for input in inputs {
            for selector in &input.network.wildcard {
                for i in picker.picked(selector, &mut problems) {
                    wanted[i] |= entries[i].network == input.network.id;
                }
            }
        }
    }
    for (e, wanted) in entries.iter_mut().zip(wanted) {
        let name = e.name();
        if !wanted || name.len() + 2 > crate::dname::MAX_NAME {
            continue;
        }
        let wire = [b"\x01*".as_slice(), name].concat();
        if !reserved.contains(&wire) {
            e.wildcard_wire = Some(wire);
        }
    }
}

/// What the networks contribute before names are settled.
struct Gathered<'a> {
    /// Members that get at least their zt- name.
    entries: Vec<Named<'a>>,
    /// Every zone apex: the domains, and reverse zones of routes and computed prefixes.
    apexes: BTreeSet<Name>,
    /// Domains of networks not synced yet.
    incomplete: HashSet<Name>,
}

/// Step 1: the members that get names (authorized, with addresses) and the zone apexes the
/// networks imply.
fn gather<'a>(inputs: &[Input<'a>], settings: &Settings) -> Gathered<'a> {
    let mut apexes: BTreeSet<Name> = BTreeSet::new();
    let mut incomplete: HashSet<Name> = HashSet::new();
    apexes.insert(settings.nameserver.clone());
    let mut entries: Vec<Named<'a>> = Vec::new();
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
            let entry = Named::new(snap.id, m, addrs, &domain_wire);
            if entry.custom_wire.is_none() && !m.name.trim().is_empty() {
                tracing::debug!(network = %snap.id, member = %m.node, name = %m.name, "no usable name: zt- name only");
            }
            entries.push(entry);
        }
    }
    Gathered {
        entries,
        apexes,
        incomplete,
    }
}

/// Step 2: every member's A/AAAA (under the names it won, unless the records file has that
/// owner) and PTR records, in one list; with the member and record counts per network.
fn member_records(
    entries: &[Named<'_>],
    file_owners: &HashSet<Vec<u8>>,
    settings: &Settings,
) -> (
    RecordList,
    BTreeMap<NetworkId, usize>,
    BTreeMap<NetworkId, usize>,
) {
    // Every record in one list first; each zone then takes its own, sorted. Sized up front:
    // growing it by doubling touched twice the memory, and fresh pages cost a fault each.
    let mut records = RecordList::default();
    let (mut count, mut bytes) = (0, 0);
    for e in entries {
        let (n, len) = (e.owners()).fold((0, 0), |(n, len), o| (n + 1, len + o.len()));
        let target = e.ptr_target().len();
        for ip in &e.addresses {
            let (rdata, ptr) = if ip.is_ipv4() { (4, 30) } else { (16, 74) };
            count += n + 1;
            bytes += len + n * rdata + ptr + target;
        }
    }
    records.reserve(count, bytes);
    let mut members: BTreeMap<NetworkId, HashSet<NodeId>> = BTreeMap::new();
    let mut records_by_network: BTreeMap<NetworkId, usize> = BTreeMap::new();
    for e in entries {
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
    let members = members.into_iter().map(|(k, v)| (k, v.len())).collect();
    (records, members, records_by_network)
}

/// Step 3: the apexes of the zones served. A PTR outside every reverse zone (an address no
/// managed route covers) gets a zone of its own, authoritative for exactly that name and
/// nothing around it; nested apexes fold into the outer zone (which simply holds the names).
fn place_apexes(wanted: BTreeSet<Name>, records: &RecordList) -> Apexes {
    // From here on names are compared as lowercase wire bytes: hashing beats Name ordering
    // by a wide margin at 100,000 members.
    let mut all = Apexes::default();
    for a in wanted {
        all.insert(name_wire(&a), a);
    }
    for r in records.iter() {
        if r.rtype == u16::from(RecordType::PTR) && all.closest(r.owner).is_none() {
            all.insert(r.owner.to_vec(), wire_name(r.owner));
        }
    }
    let mut by_depth: Vec<(Vec<u8>, Name)> = all.names;
    by_depth.sort_by_key(|(_, n)| n.num_labels());
    let mut apexes = Apexes::default();
    for (wire, name) in by_depth {
        if apexes.closest(&wire).is_none() {
            apexes.insert(wire, name);
        }
    }
    apexes
}

/// Step 4: names the backhaul view lacks fall back to the public view's records: a whole name
/// at a time, except at an apex, which always holds our SOA and NS, where it goes type by
/// type.
fn public_fallback(records: &mut RecordList, public: &[Record], apexes: &Apexes) {
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

/// Step 5: our NS at every apex, unless the records file lists the apex's NS itself (to name
/// secondaries).
fn apex_ns(records: &mut RecordList, apexes: &Apexes, file: &[Record], settings: &Settings) {
    let file_ns: HashSet<Vec<u8>> = (file.iter())
        .filter(|r| r.record_type() == RecordType::NS)
        .map(|r| name_wire(&r.name))
        .collect();
    for (wire, apex) in &apexes.names {
        if !file_ns.contains(wire) {
            records.push_record(&Record::from_rdata(
                apex.clone(),
                settings.ttl,
                RData::NS(NS(settings.nameserver.clone())),
            ));
        }
    }
}

/// Step 6: each zone takes its records from the list, sorted and hashed; zones in canonical
/// order of their apexes.
fn split(records: &RecordList, apexes: &Apexes, incomplete: &HashSet<Name>) -> Vec<ZoneContent> {
    let mut picked: Vec<Vec<u32>> = vec![Vec::new(); apexes.names.len()];
    for (i, r) in records.iter().enumerate() {
        match apexes.closest(r.owner) {
            Some(slot) => picked[slot].push(i as u32),
            // Every owner is at or under the domain (the records files are checked for it),
            // and every member record under an apex made for it: this cannot happen.
            None => tracing::error!(owner = %wire_to_text(r.owner),
                "a record outside every zone was left out (a bug: please report it)"),
        }
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
                journal: None,
                expired: false,
            }
        })
        .collect();
    zones.sort_by_cached_key(|z| canonical_key(&name_wire(&z.apex)));
    zones
}

/// Sort key giving DNSSEC canonical name order (RFC 4034 6.1) with plain byte comparison:
/// labels from the root down, each followed by a 0 byte so that a label sorts before its
/// extensions (`a` < `ab`).
pub(crate) fn canonical_key(wire: &[u8]) -> Vec<u8> {
    let labels: Vec<&[u8]> = labels(wire).collect();
    let mut key = Vec::with_capacity(wire.len());
    for l in labels.iter().rev() {
        key.extend_from_slice(l);
        key.push(0);
    }
    key
}

pub(crate) fn content_hash(records: &RecordList) -> [u8; 32] {
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

#[cfg(test)]
mod tests {
    use super::serial::hex;
    use super::*;
    use crate::zerotier::Member;
    use std::time::Duration;

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
            wildcard: Vec::new(),
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
            hints: None,
            last_seen: None,
        }
    }

    fn settings() -> Settings {
        Settings {
            ttl: 60,
            negative_ttl: 30,
            nameserver: Name::from_ascii("backhaul.").unwrap(),
            nameserver_addresses: vec!["10.147.17.1".parse().unwrap()],
            soa: config::Soa::default(),
            services: Vec::new(),
            scopes: Vec::new(),
            catalog: None,
        }
    }

    fn snapshot(members: Vec<Member>) -> NetworkSnapshot {
        NetworkSnapshot {
            id: "8056c2e21c000001".parse().unwrap(),
            rfc4193: false,
            sixplane: false,
            routes: vec!["10.147.17.0/24".parse().unwrap()],
            members,
            tags: Vec::new(),
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
            &RecordList::default(),
        )
    }

    fn lines(zones: &Zones) -> Vec<String> {
        zones
            .zones
            .iter()
            .flat_map(|z| z.records.iter().map(|r| r.to_record().unwrap().to_string()))
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
