//! Record data from master-file tokens ([`super::text`]): `[TTL] [CLASS] TYPE RDATA` into a
//! record. Character-strings (TXT, SPF, HINFO) and the RFC 3597 generic form
//! (`TYPE65534 \# 3 abcdef`) are built from the decoded bytes, since they may hold any byte;
//! so are the types NSD loads that hickory-proto has no text form (or no name) for: RP, LOC,
//! APL, DS, DHCID, ZONEMD, EUI48, EUI64, URI, AFSDB, KX. Every other type hickory-proto reads
//! from text prepared here (names made absolute, `@` replaced).

use hickory_proto::rr::rdata::{HINFO, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};
use hickory_proto::serialize::txt::{parse_ttl, Parser};

use super::text::{name, one_line, strings, unescape, Token};

/// Types NSD loads that hickory has no text form (or no name) for: their codes, and their
/// RDATA is built here ([`extra`]).
const EXTRA_TYPES: [(&str, u16); 12] = [
    ("RP", 17),
    ("LOC", 29),
    ("APL", 42),
    ("DS", 43),
    ("AFSDB", 18),
    ("KX", 36),
    ("DHCID", 49),
    ("ZONEMD", 63),
    ("SPF", 99),
    ("EUI48", 108),
    ("EUI64", 109),
    ("URI", 256),
];

/// RDATA of the [`EXTRA_TYPES`] in wire form; `None` for any other type.
fn extra(code: u16, tokens: &[Token], origin: &Name) -> Result<Option<Vec<u8>>, String> {
    let count = |n: usize| -> Result<(), String> {
        if tokens.len() == n {
            Ok(())
        } else {
            Err(format!("expected {n} fields, found {}", tokens.len()))
        }
    };
    let number = |t: &Token, max: u64| -> Result<u64, String> {
        t.raw
            .parse::<u64>()
            .ok()
            .filter(|v| *v <= max)
            .ok_or_else(|| format!("{:?} is not a number up to {max}", t.raw))
    };
    let mut out = Vec::new();
    let name_wire = |t: &Token, out: &mut Vec<u8>| -> Result<(), String> {
        for label in name(t, origin)?.iter() {
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
        out.push(0);
        Ok(())
    };
    match code {
        // RP: mailbox, TXT name (RFC 1183 2.2).
        17 => {
            count(2)?;
            name_wire(&tokens[0], &mut out)?;
            name_wire(&tokens[1], &mut out)?;
        }
        // AFSDB (RFC 1183 1), KX (RFC 2230): a 16-bit number and a name.
        18 | 36 => {
            count(2)?;
            out.extend_from_slice(&(number(&tokens[0], 65535)? as u16).to_be_bytes());
            name_wire(&tokens[1], &mut out)?;
        }
        // LOC (RFC 1876 3).
        29 => out = loc(tokens)?,
        // APL (RFC 3123 5): [!]family:address/prefix, each item.
        42 => {
            for t in tokens {
                let (negate, item) = match t.raw.strip_prefix('!') {
                    Some(rest) => (0x80u8, rest),
                    None => (0, t.raw.as_str()),
                };
                let (family, net) = item
                    .split_once(':')
                    .ok_or_else(|| format!("{:?} is not family:address/prefix", t.raw))?;
                let net: ipnet::IpNet = net
                    .parse()
                    .map_err(|_| format!("{net:?} is not an address/prefix"))?;
                let (code, bytes) = match (family, net) {
                    ("1", ipnet::IpNet::V4(n)) => (1u16, n.network().octets().to_vec()),
                    ("2", ipnet::IpNet::V6(n)) => (2u16, n.network().octets().to_vec()),
                    _ => return Err(format!("{:?}: family 1 is IPv4, 2 is IPv6", t.raw)),
                };
                // The address without its trailing zero bytes (RFC 3123 4.1).
                let len = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
                out.extend_from_slice(&code.to_be_bytes());
                out.push(net.prefix_len());
                out.push(negate | len as u8);
                out.extend_from_slice(&bytes[..len]);
            }
        }
        // DS (RFC 4034 5.3): key tag, algorithm, digest type, hex digest.
        43 => {
            if tokens.len() < 4 {
                return Err("DS takes a key tag, an algorithm, a digest type and a digest".into());
            }
            out.extend_from_slice(&(number(&tokens[0], 65535)? as u16).to_be_bytes());
            out.push(number(&tokens[1], 255)? as u8);
            out.push(number(&tokens[2], 255)? as u8);
            let digest: String = tokens[3..].iter().map(|t| t.raw.as_str()).collect();
            out.extend(hex::decode(&digest).map_err(|e| format!("digest is not hex: {e}"))?);
        }
        // DHCID (RFC 4701): base64.
        49 => {
            let text: String = tokens.iter().map(|t| t.raw.as_str()).collect();
            out = base64(&text)?;
            if out.is_empty() {
                return Err("DHCID needs its base64 data".into());
            }
        }
        // ZONEMD (RFC 8976): serial, scheme, hash algorithm, hex digest.
        63 => {
            if tokens.len() < 4 {
                return Err("ZONEMD takes a serial, a scheme, an algorithm and a digest".into());
            }
            out.extend_from_slice(&(number(&tokens[0], u64::from(u32::MAX))? as u32).to_be_bytes());
            out.push(number(&tokens[1], 255)? as u8);
            out.push(number(&tokens[2], 255)? as u8);
            let digest: String = tokens[3..].iter().map(|t| t.raw.as_str()).collect();
            out.extend(hex::decode(&digest).map_err(|e| format!("digest is not hex: {e}"))?);
        }
        // SPF (RFC 7208 3.1, obsolete but loaded): TXT's format.
        99 => {
            for s in strings(tokens)? {
                out.push(s.len() as u8);
                out.extend_from_slice(&s);
            }
        }
        // EUI48, EUI64 (RFC 7043): hex pairs joined by '-'.
        108 | 109 => {
            count(1)?;
            let len = if code == 108 { 6 } else { 8 };
            let parts: Vec<&str> = tokens[0].raw.split('-').collect();
            let bytes: Result<Vec<u8>, _> =
                parts.iter().map(|p| u8::from_str_radix(p, 16)).collect();
            match bytes {
                Ok(b) if b.len() == len && parts.iter().all(|p| p.len() == 2) => out = b,
                _ => {
                    return Err(format!(
                        "{:?} is not {len} hex pairs joined by '-'",
                        tokens[0].raw
                    ))
                }
            }
        }
        // URI (RFC 7553): priority, weight, and the target as one quoted string.
        256 => {
            count(3)?;
            out.extend_from_slice(&(number(&tokens[0], 65535)? as u16).to_be_bytes());
            out.extend_from_slice(&(number(&tokens[1], 65535)? as u16).to_be_bytes());
            out.extend(unescape(&tokens[2].raw)?);
        }
        _ => return Ok(None),
    }
    Ok(Some(out))
}

/// LOC RDATA (RFC 1876): `d [m [s]] N|S d [m [s]] E|W alt[m] [size[m] [hp[m] [vp[m]]]]`.
fn loc(tokens: &[Token]) -> Result<Vec<u8>, String> {
    let words: Vec<&str> = tokens.iter().map(|t| t.raw.as_str()).collect();
    let bad = || format!("{:?} is not a LOC position (RFC 1876 3)", words.join(" "));
    // One coordinate: degrees, optional minutes and seconds, then the hemisphere letter.
    let mut at = 0;
    let mut coordinate = |pos: &[char; 2], max_deg: f64| -> Result<u32, String> {
        let mut parts = Vec::new();
        while let Some(w) = words.get(at) {
            at += 1;
            if let Some(h) = w
                .chars()
                .next()
                .filter(|c| w.len() == 1 && pos.contains(&c.to_ascii_uppercase()))
            {
                let v: Vec<f64> = parts
                    .iter()
                    .map(|p: &&str| p.parse::<f64>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| bad())?;
                let (d, m, s) = (
                    v.first().copied().unwrap_or(0.0),
                    v.get(1).copied().unwrap_or(0.0),
                    v.get(2).copied().unwrap_or(0.0),
                );
                if parts.is_empty() || parts.len() > 3 || d > max_deg || m >= 60.0 || s >= 60.0 {
                    return Err(bad());
                }
                let ms = ((d * 3600.0 + m * 60.0 + s) * 1000.0).round() as i64;
                let signed = if h.to_ascii_uppercase() == pos[0] {
                    ms
                } else {
                    -ms
                };
                return Ok((i64::from(1u32 << 31) + signed) as u32);
            }
            parts.push(w);
        }
        Err(bad())
    };
    let lat = coordinate(&['N', 'S'], 90.0)?;
    let lon = coordinate(&['E', 'W'], 180.0)?;
    let meters = |w: &str| -> Result<f64, String> {
        w.trim_end_matches(['m', 'M'])
            .parse::<f64>()
            .map_err(|_| bad())
    };
    let rest = &words[at..];
    let alt = meters(rest.first().ok_or_else(bad)?)?;
    // Size and precisions as mantissa * 10^exponent centimetres, one byte each.
    let size_byte = |m: f64| -> u8 {
        let mut cm = (m * 100.0).round() as u64;
        let mut exp = 0u8;
        while cm >= 10 && exp < 9 {
            cm = (cm + 5) / 10;
            exp += 1;
        }
        ((cm.min(9) as u8) << 4) | exp
    };
    let size = rest.get(1).map(|w| meters(w)).transpose()?.unwrap_or(1.0);
    let hp = rest
        .get(2)
        .map(|w| meters(w))
        .transpose()?
        .unwrap_or(10_000.0);
    let vp = rest.get(3).map(|w| meters(w)).transpose()?.unwrap_or(10.0);
    let mut out = vec![0, size_byte(size), size_byte(hp), size_byte(vp)];
    out.extend_from_slice(&lat.to_be_bytes());
    out.extend_from_slice(&lon.to_be_bytes());
    let alt = ((alt * 100.0).round() as i64 + 10_000_000).clamp(0, i64::from(u32::MAX)) as u32;
    out.extend_from_slice(&alt.to_be_bytes());
    Ok(out)
}

/// Standard base64 (RFC 4648 4), as zone files write DHCID and key data.
fn base64(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("not base64: {e}"))
}

/// One record entry, after its owner: `[TTL] [CLASS] TYPE RDATA` (TTL and class in either
/// order). `default_ttl`: the TTL of a record without one.
pub(super) fn record(
    owner: Name,
    rest: &[Token],
    origin: &Name,
    default_ttl: u32,
) -> Result<Record, String> {
    let mut ttl = None;
    let mut class_seen = false;
    let mut at = 0;
    while at < rest.len() {
        let word = rest[at].raw.to_ascii_uppercase();
        if !rest[at].quoted && ttl.is_none() && word.starts_with(|c: char| c.is_ascii_digit()) {
            ttl = Some(parse_ttl(&word).map_err(|e| format!("bad TTL {:?}: {e}", rest[at].raw))?);
        } else if !rest[at].quoted && !class_seen && (word == "IN" || is_other_class(&word)) {
            if word != "IN" {
                return Err(format!("class {word} is not served: only IN records"));
            }
            class_seen = true;
        } else {
            break;
        }
        at += 1;
    }
    let Some(type_token) = rest.get(at) else {
        return Err("no record type".into());
    };
    let rtype = record_type(&type_token.raw)?;
    let rdata = &rest[at + 1..];
    let ttl = ttl.unwrap_or(default_ttl);
    let data = if rdata.first().is_some_and(|t| t.raw == "\\#" && !t.quoted) {
        generic(rtype, &rdata[1..])?
    } else {
        match rtype {
            RecordType::TXT => RData::TXT(TXT::from_bytes(
                strings(rdata)?.iter().map(Vec::as_slice).collect(),
            )),
            RecordType::HINFO => {
                let mut s = strings(rdata)?;
                if s.len() != 2 {
                    return Err("HINFO takes two strings: CPU and OS".into());
                }
                let os = s.pop().unwrap_or_default();
                let cpu = s.pop().unwrap_or_default();
                RData::HINFO(HINFO::from_bytes(cpu.into(), os.into()))
            }
            other => match extra(u16::from(other), rdata, origin)? {
                Some(bytes) => RData::Unknown {
                    code: other,
                    // Empty data (an APL with no items) is valid; `NULL::with` wants some.
                    rdata: if bytes.is_empty() {
                        hickory_proto::rr::rdata::NULL::new()
                    } else {
                        hickory_proto::rr::rdata::NULL::with(bytes)
                    },
                },
                None => through_hickory(rtype, rdata, origin)?,
            },
        }
    };
    let mut record = Record::from_rdata(owner, ttl, data);
    record.ttl = ttl;
    Ok(record)
}

fn is_other_class(word: &str) -> bool {
    matches!(word, "CH" | "CS" | "HS" | "ANY" | "NONE") || word.starts_with("CLASS")
}

/// `A`, `TXT`, ... or `TYPE65534` (RFC 3597 5).
fn record_type(raw: &str) -> Result<RecordType, String> {
    let upper = raw.to_ascii_uppercase();
    if let Some(n) = upper.strip_prefix("TYPE") {
        if let Ok(code) = n.parse::<u16>() {
            return Ok(RecordType::from(code));
        }
    }
    if let Some((_, code)) = EXTRA_TYPES.iter().find(|(n, _)| *n == upper) {
        return Ok(RecordType::from(*code));
    }
    if upper == "DNAME" {
        return Err("DNAME is not supported: use a CNAME per name".into());
    }
    match upper.parse::<RecordType>() {
        Ok(RecordType::Unknown(_)) | Err(_) => Err(format!(
            "unknown record type {raw}: write it as TYPEnnn \\# <length> <hex> (RFC 3597)"
        )),
        Ok(t) => Ok(t),
    }
}

/// RFC 3597 generic RDATA: `\# <length> <hex>...`, read as the type's own RDATA when the
/// type is one hickory knows (so `TYPE1 \# 4 0a000001` is an ordinary A record).
fn generic(rtype: RecordType, tokens: &[Token]) -> Result<RData, String> {
    let Some((len, hex_tokens)) = tokens.split_first() else {
        return Err("\\# needs a length".into());
    };
    let len: u16 = len
        .raw
        .parse()
        .map_err(|_| format!("\\# length {:?} is not a number", len.raw))?;
    let text: String = hex_tokens.iter().map(|t| t.raw.as_str()).collect();
    let bytes = hex::decode(&text).map_err(|e| format!("\\# data is not hex: {e}"))?;
    if bytes.len() != usize::from(len) {
        return Err(format!(
            "\\# says {len} bytes but its data has {}",
            bytes.len()
        ));
    }
    let mut decoder = BinDecoder::new(&bytes);
    let data = RData::read(&mut decoder, rtype, Restrict::new(len))
        .map_err(|e| format!("the data is not a valid {rtype}: {e}"))?;
    if decoder.index() != bytes.len() {
        return Err(format!("the data is longer than a {rtype} record"));
    }
    Ok(data)
}

/// Any other type: hickory reads the RDATA from text with `@` made the origin, and names
/// made absolute here (so that its own name parsing only sees plain, absolute names).
fn through_hickory(rtype: RecordType, tokens: &[Token], origin: &Name) -> Result<RData, String> {
    let mut text = format!("placeholder. 0 IN {rtype}");
    for t in tokens {
        text.push(' ');
        if t.quoted {
            text.push('"');
            text.push_str(&t.raw);
            text.push('"');
        } else if t.raw == "@" {
            text.push_str(&origin.to_ascii());
        } else {
            text.push_str(&t.raw);
        }
    }
    text.push('\n');
    let parsed = Parser::new(text, None, Some(origin.clone()))
        .parse()
        .map_err(|e| one_line(&e.to_string()))?;
    let record = (parsed.1.into_values())
        .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>())
        .next()
        .ok_or("no record read")?;
    Ok(record.data)
}
