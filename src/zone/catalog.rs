//! The RFC 9432 catalog zone (version 2, `[transfer] catalog`): one zone listing every zone
//! served, for secondaries (NSD 4.9+, Knot, BIND, PowerDNS) to follow without naming each one.

use hickory_proto::rr::rdata::{NS, PTR, TXT};
use hickory_proto::rr::{Name, RData, Record};
use sha2::{Digest, Sha256};

use super::{content_hash, list::RecordList, ZoneContent};
use crate::dname::{name_wire, rtype};

/// The catalog `name` listing `members` (the apexes of every other zone). Member ids are
/// derived from each zone's name, so they stay the same across restarts and config order.
/// Complete only once every member is: a catalog missing the reverse zones of a network that
/// has not synced yet would make secondaries drop them.
pub(super) fn catalog(name: &Name, members: &[&ZoneContent], ttl: u32) -> ZoneContent {
    let mut records = RecordList::default();
    let at =
        |label: &str| -> Option<Name> { Name::from_ascii(label).ok()?.append_domain(name).ok() };
    // RFC 9432 4.1: a single NS whose target is "invalid.".
    let invalid = Name::from_ascii("invalid.").unwrap_or_else(|_| Name::root());
    records.push_record(&Record::from_rdata(
        name.clone(),
        ttl,
        RData::NS(NS(invalid)),
    ));
    if let Some(version) = at("version") {
        let txt = RData::TXT(TXT::new(vec!["2".to_owned()]));
        records.push_record(&Record::from_rdata(version, ttl, txt));
    }
    for zone in members {
        let Some(owner) = at(&format!("{}.zones", member_id(&zone.apex))) else {
            continue;
        };
        let target = RData::PTR(PTR(zone.apex.clone()));
        records.push_record(&Record::from_rdata(owner, ttl, target));
    }
    let records = records.sorted();
    ZoneContent {
        apex: name.clone(),
        complete: members.iter().all(|z| z.complete),
        hash: content_hash(&records),
        serial: 0,
        records,
        journal: None,
        expired: false,
    }
}

/// The member zones a catalog lists (RFC 9432 4.1: the PTR targets at `<id>.zones.<catalog>`),
/// lowercase, each once; `None` unless the catalog is of a version we read (2).
pub fn member_zones(catalog: &Name, records: &RecordList) -> Option<Vec<Name>> {
    let at = |label: &str| {
        Some(name_wire(
            &Name::from_ascii(label).ok()?.append_domain(catalog).ok()?,
        ))
    };
    let (version, zones) = (at("version")?, at("zones")?);
    let mut versions = records
        .iter()
        .filter(|r| r.owner == version.as_slice() && r.rtype == rtype::TXT);
    // TXT RDATA of one string: its length, then "2".
    if !versions.all(|r| r.rdata == b"\x012") {
        return None;
    }
    let mut members: Vec<Name> = records
        .iter()
        .filter(|r| r.rtype == rtype::PTR && r.owner.ends_with(&zones))
        // `<id>.zones.<catalog>` exactly: one label above `zones`.
        .filter(|r| usize::from(r.owner[0]) + 1 + zones.len() == r.owner.len())
        .map(|r| crate::dname::wire_name(r.rdata).to_lowercase())
        .filter(|n| !n.is_root())
        .collect();
    members.sort();
    members.dedup();
    Some(members)
}

/// A member zone's id: 16 hex digits of the SHA-256 of its lowercase wire name.
fn member_id(apex: &Name) -> String {
    let digest = Sha256::digest(name_wire(apex));
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_on_the_name_only() {
        let a = member_id(&Name::from_ascii("backhaul.").unwrap());
        assert_eq!(a, member_id(&Name::from_ascii("BackHaul.").unwrap()));
        assert_ne!(
            a,
            member_id(&Name::from_ascii("17.147.10.in-addr.arpa.").unwrap())
        );
        assert_eq!(a.len(), 16);
    }
}
