//! SOA serials: [`SerialBook`] gives each zone a serial that moves when, and only when, that
//! zone's content changed (RFC 1982 arithmetic), and puts the SOA at the zone's head. The
//! book is saved in `state_dir` by [`crate::state`], so serials survive restarts.

use std::collections::{BTreeMap, BTreeSet};

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record};
use serde::{Deserialize, Serialize};

use super::{Settings, Zones};

/// SOA timers for secondaries (RFC 1912 section 2.2 ranges).
const SOA_REFRESH: i32 = 3600;
const SOA_RETRY: i32 = 600;
const SOA_EXPIRE: i32 = 14 * 24 * 3600;

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
