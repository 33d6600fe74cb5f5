//! The types whose RDATA is not a plain run of fields: LOC (RFC 1876), APL (RFC 3123), SVCB
//! and HTTPS (RFC 9460). Each gives `None` for bytes that
//! do not fit the type, which then go out in the generic form.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{quoted, Reader};

/// LOC: `d m s.fff N|S d m s.fff E|W alt.ccm size.ccm hp.ccm vp.ccm`.
pub(super) fn loc(rdata: &[u8]) -> Option<String> {
    let mut r = Reader { rest: rdata };
    if r.u8()? != 0 {
        return None; // only version 0 has a text form
    }
    let (size, hp, vp) = (r.u8()?, r.u8()?, r.u8()?);
    let (lat, lon, alt) = (r.u32()?, r.u32()?, r.u32()?);
    if !r.rest.is_empty() {
        return None;
    }
    // Size and precisions: mantissa * 10^exponent centimetres, each digit at most 9.
    let metres = |b: u8| -> Option<String> {
        let (m, e) = (u64::from(b >> 4), u32::from(b & 0xf));
        (m <= 9 && e <= 9).then(|| centimetres((m * 10u64.pow(e)) as i64))
    };
    let coordinate = |v: u32, pos: char, neg: char| -> String {
        let offset = i64::from(v) - (1i64 << 31);
        let hemisphere = if offset < 0 { neg } else { pos };
        let ms = offset.unsigned_abs();
        let (d, rest) = (ms / 3_600_000, ms % 3_600_000);
        let (m, rest) = (rest / 60_000, rest % 60_000);
        format!("{d} {m} {}.{:03} {hemisphere}", rest / 1000, rest % 1000)
    };
    Some(format!(
        "{} {} {} {} {} {}",
        coordinate(lat, 'N', 'S'),
        coordinate(lon, 'E', 'W'),
        centimetres(i64::from(alt) - 10_000_000),
        metres(size)?,
        metres(hp)?,
        metres(vp)?
    ))
}

/// Centimetres as metres with two decimals and the unit: `-12.50m`.
fn centimetres(cm: i64) -> String {
    let sign = if cm < 0 { "-" } else { "" };
    let cm = cm.unsigned_abs();
    format!("{sign}{}.{:02}m", cm / 100, cm % 100)
}

/// APL: items `[!]family:address/prefix`, family 1 (IPv4) or 2 (IPv6); no items, no text.
pub(super) fn apl(rdata: &[u8]) -> Option<String> {
    let mut r = Reader { rest: rdata };
    let mut items = Vec::new();
    while !r.rest.is_empty() {
        let family = r.u16()?;
        let prefix = r.u8()?;
        let n_len = r.u8()?;
        let part = r.take(usize::from(n_len & 0x7f))?;
        let negate = if n_len & 0x80 != 0 { "!" } else { "" };
        let address = match family {
            1 if part.len() <= 4 && prefix <= 32 => {
                let mut a = [0u8; 4];
                a[..part.len()].copy_from_slice(part);
                Ipv4Addr::from(a).to_string()
            }
            2 if part.len() <= 16 && prefix <= 128 => {
                let mut a = [0u8; 16];
                a[..part.len()].copy_from_slice(part);
                Ipv6Addr::from(a).to_string()
            }
            _ => return None,
        };
        items.push(format!("{negate}{family}:{address}/{prefix}"));
    }
    (!items.is_empty()).then(|| items.join(" "))
}

/// SVCB and HTTPS: `priority target key=value ...` (RFC 9460 2.1), values in the forms of
/// RFC 9460 7 (comma-separated lists without spaces); a key without a named form as
/// `keyNNNNN="..."`.
pub(super) fn svcb(rdata: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let mut r = Reader { rest: rdata };
    let priority = r.u16()?;
    let mut out = format!("{priority} {}", r.name()?);
    let mut last: Option<u16> = None;
    while !r.rest.is_empty() {
        let key = r.u16()?;
        // Keys in strictly increasing order (RFC 9460 2.2), as a reader checks too.
        if last.is_some_and(|l| l >= key) {
            return None;
        }
        last = Some(key);
        let len = usize::from(r.u16()?);
        let value = r.take(len)?;
        let mut v = Reader { rest: value };
        let text = match key {
            // mandatory: the keys, by name.
            0 => {
                let mut keys = Vec::new();
                while !v.rest.is_empty() {
                    keys.push(key_name(v.u16()?));
                }
                Some(keys.join(",")).filter(|k| !k.is_empty())?
            }
            // alpn: the protocol ids; one holding a comma or backslash would need two levels
            // of escaping, which the generic form spares.
            1 => {
                let mut ids = Vec::new();
                while !v.rest.is_empty() {
                    let id = v.string().filter(|id| {
                        !id.is_empty()
                            && id
                                .iter()
                                .all(|b| b.is_ascii_graphic() && !b",\\\"".contains(b))
                    })?;
                    ids.push(String::from_utf8_lossy(id).into_owned());
                }
                Some(ids.join(",")).filter(|k| !k.is_empty())?
            }
            2 if value.is_empty() => {
                out.push_str(" no-default-alpn");
                continue;
            }
            3 => v.u16()?.to_string(),
            4 => {
                let mut list = Vec::new();
                while !v.rest.is_empty() {
                    let b: [u8; 4] = v.take(4)?.try_into().ok()?;
                    list.push(Ipv4Addr::from(b).to_string());
                }
                Some(list.join(",")).filter(|k| !k.is_empty())?
            }
            5 if !value.is_empty() => base64::engine::general_purpose::STANDARD.encode(value),
            6 => {
                let mut list = Vec::new();
                while !v.rest.is_empty() {
                    let b: [u8; 16] = v.take(16)?.try_into().ok()?;
                    list.push(Ipv6Addr::from(b).to_string());
                }
                Some(list.join(",")).filter(|k| !k.is_empty())?
            }
            2..=6 => return None,
            _ => {
                v.rest = &[];
                quoted(value)
            }
        };
        if !v.rest.is_empty() {
            return None;
        }
        out.push(' ');
        out.push_str(&key_name(key));
        out.push('=');
        out.push_str(&text);
    }
    Some(out)
}

/// A SvcParamKey's name (RFC 9460 14.3.2): the named ones, else `keyNNNNN`.
fn key_name(key: u16) -> String {
    match key {
        0 => "mandatory".into(),
        1 => "alpn".into(),
        2 => "no-default-alpn".into(),
        3 => "port".into(),
        4 => "ipv4hint".into(),
        5 => "ech".into(),
        6 => "ipv6hint".into(),
        _ => format!("key{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::rdata_text;

    #[test]
    fn loc_apl_and_svcb_in_their_own_form() {
        // 52 22 23.000 N 4 53 32.000 E -2.00m 1.00m 10000.00m 10.00m
        let lat = ((1u64 << 31) + ((52 * 3600 + 22 * 60 + 23) * 1000)) as u32;
        let lon = ((1u64 << 31) + ((4 * 3600 + 53 * 60 + 32) * 1000)) as u32;
        let mut loc = vec![0, 0x12, 0x16, 0x13];
        for v in [lat, lon, 10_000_000 - 200] {
            loc.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(
            rdata_text(29, &loc).unwrap(),
            "52 22 23.000 N 4 53 32.000 E -2.00m 1.00m 10000.00m 10.00m"
        );
        let apl = [0, 1, 24, 3, 192, 168, 1, 0, 2, 0, 0x80];
        assert_eq!(rdata_text(42, &apl).unwrap(), "1:192.168.1.0/24 !2:::/0");
        // NSD does not read these in their own form: the generic one.
        assert_eq!(rdata_text(38, &[0; 17]), None);
        let svcb = [
            [0, 1, 0].as_slice(),
            &[0, 1, 0, 6, 2, b'h', b'2', 2, b'h', b'3'],
            &[0, 3, 0, 2, 0x05, 0xdc],
            &[0, 4, 0, 4, 10, 0, 0, 1],
        ]
        .concat();
        assert_eq!(
            rdata_text(65, &svcb).unwrap(),
            "1 . alpn=h2,h3 port=1500 ipv4hint=10.0.0.1"
        );
        // Keys out of order: not a valid SVCB, only the generic form says it.
        let swapped = [
            [0, 1, 0].as_slice(),
            &[0, 3, 0, 2, 0, 1],
            &[0, 1, 0, 3, 2, b'h', b'2'],
        ]
        .concat();
        assert_eq!(rdata_text(64, &swapped), None);
    }
}
