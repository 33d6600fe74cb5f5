//! SOA serials: [`SerialBook`] gives each zone a serial that moves when, and only when, that
//! zone's content changed (RFC 1982 arithmetic), and puts the SOA at the zone's head. The
//! book is saved in `state_dir` by [`crate::state`], so serials survive restarts.

use std::collections::{BTreeMap, BTreeSet};

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde::{Deserialize, Serialize};

use super::{Settings, ZoneContent, Zones};
use crate::dname::{name_wire, wire_name};

/// The SOA's MNAME: `[soa] mname`, else the first NS name at the zone's apex (so it names a
/// server that answers), else the server's own name.
fn mname(z: &ZoneContent, settings: &Settings) -> Name {
    if let Some(m) = &settings.soa.mname {
        return m.clone();
    }
    let apex = name_wire(&z.apex);
    (z.records.iter())
        .filter(|r| r.rtype == u16::from(RecordType::NS) && r.owner == apex.as_slice())
        .map(|r| wire_name(r.rdata))
        .min_by_key(|n| n.to_ascii())
        .unwrap_or_else(|| settings.nameserver.clone())
}

/// The SOA's RNAME: `[soa] rname`, else `hostmaster.<domain>` (or the domain itself in the
/// rare case that is too long for one more label).
fn rname(settings: &Settings) -> Name {
    if let Some(r) = &settings.soa.rname {
        return r.clone();
    }
    Name::from_ascii("hostmaster")
        .and_then(|n| n.append_domain(&settings.nameserver))
        .unwrap_or_else(|_| settings.nameserver.clone())
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
pub fn serial_after(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

pub(super) fn hex(bytes: &[u8]) -> String {
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
            let soa = soa_record(z, serial, settings);
            (z.records).set_first(&soa);
        }
        // Forget zones that are gone, but only once the picture is whole: before the first
        // sync the reverse zones are not built yet and must keep their serials.
        if all_complete {
            self.zones.retain(|k, _| seen.contains(k));
        }
        *self != before
    }

    /// A zone whose content a dynamic update just changed (its records and hash already
    /// the new ones): the next serial, the current Unix time or the last serial + 1 if that
    /// is not later, with its SOA put first.
    pub fn advance(&mut self, z: &mut ZoneContent, now_unix: u32, settings: &Settings) {
        let key = z.apex.to_ascii();
        let last = self.zones.get(&key).map_or(z.serial, |e| e.serial);
        let serial = if serial_after(now_unix, last) {
            now_unix
        } else {
            last.wrapping_add(1)
        };
        let hash = hex(&z.hash);
        self.zones.insert(key, SerialEntry { hash, serial });
        z.serial = serial;
        let soa = soa_record(z, serial, settings);
        z.records.set_first(&soa);
    }
}

/// The SOA of `z` at `serial`.
fn soa_record(z: &ZoneContent, serial: u32, settings: &Settings) -> Record {
    let soa = SOA::new(
        mname(z, settings),
        rname(settings),
        serial,
        settings.soa.refresh as i32,
        settings.soa.retry as i32,
        settings.soa.expire as i32,
        settings.negative_ttl,
    );
    Record::from_rdata(z.apex.clone(), settings.ttl, RData::SOA(soa))
}
