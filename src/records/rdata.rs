//! Record data from master-file tokens ([`super::text`]): `[TTL] [CLASS] TYPE RDATA` into a
//! record. Character-strings (TXT, HINFO) and the RFC 3597 generic form
//! (`TYPE65534 \# 3 abcdef`) are built from the decoded bytes, since they may hold any byte;
//! so are the types NSD loads that hickory-proto has no text form (or no name) for, by their
//! [`crate::presentation`] layouts (RP, DS, DNAME, URI, L64, ...) or forms of their own (LOC,
//! APL, A6, HIP). Every other type hickory-proto reads from text prepared here (names made
//! absolute, `@` replaced).

use hickory_proto::rr::rdata::{HINFO, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};
use hickory_proto::serialize::txt::{parse_ttl, Parser};

use super::text::{name, one_line, strings, unescape, Token};
use crate::presentation::{self, Field};

/// RDATA read here, in wire form: the types hickory-proto has no text form for
/// ([`presentation::own_type`]), and every type laid out as plain fields, since hickory reads
/// `\DDD` in names as octal where RFC 1035 5.1 (and NSD) read decimal. `None` for the rest:
/// CAA and CERT (mnemonics hickory checks), SVCB and HTTPS.
fn own(code: u16, tokens: &[Token], origin: &Name) -> Result<Option<Vec<u8>>, String> {
    let laid_out = presentation::layout(code).is_some() && !matches!(code, 37 | 257);
    if !presentation::own_type(code) && !laid_out {
        return Ok(None);
    }
    let out = match code {
        29 => loc(tokens)?,
        38 => a6(tokens, origin)?,
        42 => apl(tokens)?,
        55 => hip(tokens, origin)?,
        _ => match presentation::layout(code) {
            Some(layout) => by_layout(layout, tokens, origin)?,
            None => return Ok(None),
        },
    };
    Ok(Some(out))
}

fn number(t: &Token, max: u64) -> Result<u64, String> {
    t.raw
        .parse::<u64>()
        .ok()
        .filter(|v| *v <= max)
        .ok_or_else(|| format!("{:?} is not a number up to {max}", t.raw))
}

fn name_wire(t: &Token, origin: &Name, out: &mut Vec<u8>) -> Result<(), String> {
    for label in name(t, origin)?.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    Ok(())
}

/// One character-string, at most 255 bytes, with its length byte.
fn string_wire(t: &Token, out: &mut Vec<u8>) -> Result<(), String> {
    let s = strings(std::slice::from_ref(t))?.pop().unwrap_or_default();
    out.push(s.len() as u8);
    out.extend_from_slice(&s);
    Ok(())
}

/// RDATA read field by field ([`Field`]): a field that takes "the rest" takes every token
/// left; too few or too many tokens is an error naming what the type takes.
fn by_layout(layout: &[Field], tokens: &[Token], origin: &Name) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    let expected = || {
        let names: Vec<String> = layout.iter().map(|f| format!("{f:?}")).collect();
        format!(
            "expected the fields {}, found {} token(s)",
            names.join(" "),
            tokens.len()
        )
    };
    for field in layout {
        let rest = &tokens[at.min(tokens.len())..];
        let one = rest.first().ok_or_else(expected);
        match field {
            Field::U8 => out.push(number(one?, 255)? as u8),
            Field::U16 => out.extend_from_slice(&(number(one?, 65535)? as u16).to_be_bytes()),
            Field::U32 => {
                out.extend_from_slice(&(number(one?, u64::from(u32::MAX))? as u32).to_be_bytes())
            }
            Field::Name => name_wire(one?, origin, &mut out)?,
            Field::Text | Field::Tag => string_wire(one?, &mut out)?,
            Field::OptText => {
                if let Some(t) = rest.first() {
                    string_wire(t, &mut out)?;
                }
            }
            Field::Texts => {
                for s in strings(rest)? {
                    out.push(s.len() as u8);
                    out.extend_from_slice(&s);
                }
                at = tokens.len();
                continue;
            }
            Field::Rest => out.extend(unescape(&one?.raw)?),
            Field::Hex | Field::Base64 | Field::Nsap | Field::Bitmap => {
                let joined: String = rest.iter().map(|t| t.raw.as_str()).collect();
                let bytes = match field {
                    Field::Hex => hex::decode(&joined).map_err(|e| format!("not hex: {e}"))?,
                    Field::Base64 => base64(&joined)?,
                    Field::Nsap => nsap(&joined)?,
                    _ => {
                        let types: Result<Vec<u16>, String> = (rest.iter())
                            .map(|t| {
                                presentation::type_code(&t.raw)
                                    .ok_or_else(|| format!("{:?} is not a record type", t.raw))
                            })
                            .collect();
                        presentation::bitmap(&types?)
                    }
                };
                if bytes.is_empty() && *field != Field::Bitmap {
                    return Err(expected());
                }
                out.extend(bytes);
                at = tokens.len();
                continue;
            }
            Field::V4 | Field::V6 => {
                let t = one?;
                let family = if *field == Field::V4 { "IPv4" } else { "IPv6" };
                match (field, t.raw.parse::<std::net::IpAddr>()) {
                    (Field::V4, Ok(std::net::IpAddr::V4(a))) => out.extend(a.octets()),
                    (Field::V6, Ok(std::net::IpAddr::V6(a))) => out.extend(a.octets()),
                    _ => return Err(format!("{:?} is not an {family} address", t.raw)),
                }
            }
            Field::Locator => {
                let t = one?;
                let groups: Vec<&str> = t.raw.split(':').collect();
                let values: Result<Vec<u16>, _> = (groups.iter())
                    .map(|g| {
                        (1..=4)
                            .contains(&g.len())
                            .then(|| u16::from_str_radix(g, 16).ok())
                            .flatten()
                            .ok_or(())
                    })
                    .collect();
                match values {
                    Ok(v) if v.len() == 4 => v.iter().for_each(|g| out.extend(g.to_be_bytes())),
                    _ => return Err(format!("{:?} is not four hex groups joined by ':'", t.raw)),
                }
            }
            Field::Eui(len) => {
                let t = one?;
                let parts: Vec<&str> = t.raw.split('-').collect();
                let bytes: Result<Vec<u8>, _> =
                    parts.iter().map(|p| u8::from_str_radix(p, 16)).collect();
                match bytes {
                    Ok(b) if b.len() == *len && parts.iter().all(|p| p.len() == 2) => out.extend(b),
                    _ => return Err(format!("{:?} is not {len} hex pairs joined by '-'", t.raw)),
                }
            }
        }
        at += 1;
    }
    if at < tokens.len() {
        return Err(expected());
    }
    Ok(out)
}

/// An NSAP address (RFC 1706 5): `0x`, then hexadecimal with `.` anywhere between digits.
fn nsap(text: &str) -> Result<Vec<u8>, String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .ok_or_else(|| format!("{text:?}: an NSAP address starts with 0x"))?;
    hex::decode(digits.replace('.', "")).map_err(|e| format!("{text:?} is not hex: {e}"))
}

/// A6 (RFC 2874 3.1.1): prefix length, an IPv6 address holding the suffix, and the prefix's
/// name when the prefix length is not 0.
fn a6(tokens: &[Token], origin: &Name) -> Result<Vec<u8>, String> {
    let bad = || {
        "A6 takes a prefix length (0-128), an IPv6 address, and a name unless the prefix length is 0".to_owned()
    };
    let prefix = number(tokens.first().ok_or_else(bad)?, 128)? as u8;
    let address: std::net::Ipv6Addr = (tokens.get(1).ok_or_else(bad)?.raw)
        .parse()
        .map_err(|_| bad())?;
    let suffix_len = usize::from(128 - prefix).div_ceil(8);
    let mut out = vec![prefix];
    out.extend_from_slice(&address.octets()[16 - suffix_len..]);
    match (prefix, tokens.get(2), tokens.len()) {
        (0, None, 2) => {}
        (1.., Some(t), 3) => name_wire(t, origin, &mut out)?,
        _ => return Err(bad()),
    }
    Ok(out)
}

/// HIP (RFC 8005 3): algorithm, HIT in hex, public key in base64, rendezvous servers.
fn hip(tokens: &[Token], origin: &Name) -> Result<Vec<u8>, String> {
    let bad = || {
        "HIP takes an algorithm, a HIT (hex), a public key (base64) and rendezvous servers"
            .to_owned()
    };
    if tokens.len() < 3 {
        return Err(bad());
    }
    let algorithm = number(&tokens[0], 255)? as u8;
    let hit = hex::decode(&tokens[1].raw).map_err(|e| format!("the HIT is not hex: {e}"))?;
    let key = base64(&tokens[2].raw)?;
    let (Ok(hit_len), Ok(key_len)) = (u8::try_from(hit.len()), u16::try_from(key.len())) else {
        return Err(bad());
    };
    if hit.is_empty() || key.is_empty() {
        return Err(bad());
    }
    let mut out = vec![hit_len, algorithm];
    out.extend_from_slice(&key_len.to_be_bytes());
    out.extend(hit);
    out.extend(key);
    for t in &tokens[3..] {
        name_wire(t, origin, &mut out)?;
    }
    Ok(out)
}

/// APL RDATA (RFC 3123 5): `[!]family:address/prefix` per item.
fn apl(tokens: &[Token]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
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
    Ok(out)
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
            other => match own(u16::from(other), rdata, origin)? {
                Some(bytes) => from_wire(other, &bytes)?,
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
    presentation::type_code(raw)
        .map(RecordType::from)
        .ok_or_else(|| {
            format!("unknown record type {raw}: write it as TYPEnnn \\# <length> <hex> (RFC 3597)")
        })
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
    from_wire(rtype, &bytes)
}

/// RDATA of `rtype` from its wire form: hickory's own value for a type it knows (an A is an
/// A, whichever way it was written), the bytes as they are for one it does not.
fn from_wire(rtype: RecordType, bytes: &[u8]) -> Result<RData, String> {
    let len = u16::try_from(bytes.len()).map_err(|_| "the data is over 65,535 bytes".to_owned())?;
    if matches!(rtype, RecordType::Unknown(_)) || presentation::own_type(u16::from(rtype)) {
        return Ok(RData::Unknown {
            code: rtype,
            // Empty data (an APL with no items) is valid; `NULL::with` wants some.
            rdata: if bytes.is_empty() {
                hickory_proto::rr::rdata::NULL::new()
            } else {
                hickory_proto::rr::rdata::NULL::with(bytes.to_vec())
            },
        });
    }
    let mut decoder = BinDecoder::new(bytes);
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
