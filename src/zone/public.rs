//! The public view (`[public]`): one zone at the domain, from the public records file alone.

use hickory_proto::rr::rdata::NS;
use hickory_proto::rr::{RData, Record, RecordType};

use super::{content_hash, RecordList, Settings, ZoneContent, Zones};
use crate::dname::name_wire;

/// The public view: one zone at the domain holding the public records file only (never a
/// member record), with our SOA, and our NS unless the file lists its own.
/// `settings.nameserver_addresses` are the public addresses.
/// `updated`: what RFC 2136 updates wrote in this view, at names the file leaves free.
pub fn build_public(records: &[Record], settings: &Settings, updated: &RecordList) -> Zones {
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
    let mut apexes = super::apexes::Apexes::default();
    apexes.insert(apex_wire.clone(), apex.clone());
    let updated = super::update::push_updated(&mut out, updated, &apexes);
    let out = out.sorted();
    Zones {
        zones: vec![ZoneContent {
            hash: content_hash(&out),
            apex,
            complete: true,
            serial: 0,
            records: out,
            journal: None,
            expired: false,
        }],
        updated,
        ..Zones::default()
    }
}
