//! RFC 1035 master-file text of the zones: what `backhaul-dns zone` prints.

use super::{canonical_key, ZoneRecord, Zones};
use hickory_proto::rr::{RData, RecordType};

use crate::dname::wire_to_text;

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
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// One record in master-file form that NSD, Knot and BIND read back to the same data:
/// character-strings quoted and escaped (RFC 1035 5.1), RDATA that cannot be shown otherwise
/// in the RFC 3597 generic form.
fn presentation(r: &ZoneRecord<'_>) -> String {
    let record = r.to_record().filter(|rec| {
        // A type hickory has no name or text form for: the generic form keeps it exact.
        !matches!(rec.record_type(), RecordType::Unknown(_) | RecordType::NULL)
            && !matches!(rec.data, RData::Unknown { .. })
    });
    let Some(record) = record else {
        return format!(
            "{} {} IN TYPE{} \\# {} {}",
            wire_to_text(r.owner),
            r.ttl,
            r.rtype,
            r.rdata.len(),
            hex::encode(r.rdata)
        );
    };
    let strings = |list: &[&[u8]]| list.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(" ");
    let rdata = match &record.data {
        RData::TXT(txt) => strings(&txt.txt_data.iter().map(AsRef::as_ref).collect::<Vec<_>>()),
        RData::HINFO(h) => strings(&[&h.cpu, &h.os]),
        other => other.to_string(),
    };
    format!(
        "{} {} IN {} {}",
        record.name,
        record.ttl,
        record.record_type(),
        rdata
    )
}

/// A character-string in quotes: `"` and `\` escaped, bytes outside printable ASCII as
/// `\DDD` (RFC 1035 5.1).
fn quoted(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_and_escaped() {
        assert_eq!(quoted(b"v=spf1 -all"), "\"v=spf1 -all\"");
        assert_eq!(quoted(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quoted(&[b'x', 0, 200, b'\n']), "\"x\\000\\200\\010\"");
    }
}
