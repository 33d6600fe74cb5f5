//! RFC 1035 master-file text of the zones: what `backhaul-dns zone` prints.

use super::{canonical_key, ZoneRecord, Zones};

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
            out.push_str(&presentation(&r));
            if is_updated(&zones.updated, &r) {
                out.push_str(" ; updated (RFC 2136)");
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// Whether `r` is one of the records updates wrote (`updated` is sorted by owner, type,
/// RDATA).
fn is_updated(updated: &super::RecordList, r: &ZoneRecord<'_>) -> bool {
    fn key<'a>(x: &ZoneRecord<'a>) -> (&'a [u8], u16, &'a [u8]) {
        (x.owner, x.rtype, x.rdata)
    }
    let (mut lo, mut hi) = (0, updated.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        match key(&updated.get(mid)).cmp(&key(r)) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

/// One record in master-file form that NSD, Knot and BIND read back to the same data.
fn presentation(r: &ZoneRecord<'_>) -> String {
    crate::presentation::record_text(r.owner, r.ttl, r.rtype, r.rdata)
}
