//! The master-file (presentation) form of record types and RDATA (RFC 1035 5.1, RFC 3597):
//! type mnemonics, the layout of each type's RDATA as a list of [`Field`]s, and RDATA in wire
//! form written as text that NSD, Knot and BIND read back to the same bytes. The records
//! reader ([`crate::records`]) reads the same layouts; `backhaul-dns zone` writes them.

mod special;

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::RecordType;

use crate::dname::labels;

/// One piece of RDATA, as it is on the wire and as it is written in a zone file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    U8,
    U16,
    U32,
    /// A domain name, uncompressed on the wire.
    Name,
    /// One character-string (length byte, bytes), written quoted.
    Text,
    /// One or more character-strings up to the end.
    Texts,
    /// One character-string or nothing, at the end (ISDN's subaddress).
    OptText,
    /// A character-string written without quotes (CAA's tag).
    Tag,
    /// The rest of the RDATA as one quoted string with no length byte (URI's target, CAA's
    /// value).
    Rest,
    /// The rest as hexadecimal (digests, fingerprints, certificate data).
    Hex,
    /// The rest as base64 (keys, DHCID).
    Base64,
    V4,
    V6,
    /// 64 bits written as four groups of hexadecimal joined by `:` (ILNP, RFC 6742).
    Locator,
    /// The rest as a type bitmap (RFC 4034 4.1.2), written as type mnemonics.
    Bitmap,
    /// EUI-48 or EUI-64 (RFC 7043): bytes written as hex pairs joined by `-`.
    Eui(usize),
    /// The rest as an NSAP address (RFC 1706): `0x` and hexadecimal.
    Nsap,
}

use Field::*;

/// Mnemonics of the types hickory-proto has no name for (or, for DS, none without its DNSSEC
/// support); every type NSD reads from a zone file is named by this table or by hickory.
const NAMES: [(&str, u16); 27] = [
    ("RP", 17),
    ("AFSDB", 18),
    ("X25", 19),
    ("ISDN", 20),
    ("RT", 21),
    ("NSAP", 22),
    ("PX", 26),
    ("GPOS", 27),
    ("LOC", 29),
    ("KX", 36),
    ("A6", 38),
    ("DNAME", 39),
    ("APL", 42),
    ("DS", 43),
    ("DHCID", 49),
    ("SMIMEA", 53),
    ("HIP", 55),
    ("CSYNC", 62),
    ("ZONEMD", 63),
    ("SPF", 99),
    ("NID", 104),
    ("L32", 105),
    ("L64", 106),
    ("LP", 107),
    ("EUI48", 108),
    ("EUI64", 109),
    ("URI", 256),
];

/// Whether the type is one of those named by this module's own table: hickory-proto has no
/// text form for them, so the records reader reads them by their [`layout`] (or their own
/// form: LOC, APL, A6, HIP).
pub fn own_type(code: u16) -> bool {
    NAMES.iter().any(|(_, c)| *c == code)
}

/// The code of a type mnemonic (`MX`, `TYPE65534`); `None` for a name no one defines.
pub fn type_code(mnemonic: &str) -> Option<u16> {
    let upper = mnemonic.to_ascii_uppercase();
    if let Some(n) = upper.strip_prefix("TYPE") {
        if let Ok(code) = n.parse::<u16>() {
            return Some(code);
        }
    }
    if let Some((_, code)) = NAMES.iter().find(|(n, _)| *n == upper) {
        return Some(*code);
    }
    match upper.parse::<RecordType>() {
        Ok(RecordType::Unknown(_)) | Err(_) => None,
        Ok(t) => Some(u16::from(t)),
    }
}

/// The mnemonic of a type code, `TYPEnnn` for one without (RFC 3597 5).
pub fn type_name(code: u16) -> String {
    if let Some((name, _)) = NAMES.iter().find(|(_, c)| *c == code) {
        return (*name).to_owned();
    }
    match RecordType::from(code) {
        RecordType::Unknown(_) => format!("TYPE{code}"),
        t => t.to_string(),
    }
}

/// The RDATA layout of a type whose data is a plain sequence of fields; `None` for types with
/// forms of their own (LOC, APL, A6, HIP, SVCB, HTTPS) or without a known form.
pub fn layout(code: u16) -> Option<&'static [Field]> {
    Some(match code {
        1 => &[V4],
        2 | 5 | 12 | 39 => &[Name], // NS, CNAME, PTR, DNAME
        6 => &[Name, Name, U32, U32, U32, U32, U32],
        13 => &[Text, Text],                     // HINFO
        15 | 18 | 21 | 36 | 107 => &[U16, Name], // MX, AFSDB, RT, KX, LP
        16 | 99 => &[Texts],                     // TXT, SPF
        17 => &[Name, Name],                     // RP
        19 => &[Text],                           // X25
        20 => &[Text, OptText],                  // ISDN
        22 => &[Nsap],
        26 => &[U16, Name, Name],  // PX
        27 => &[Text, Text, Text], // GPOS
        28 => &[V6],
        33 => &[U16, U16, U16, Name],              // SRV
        35 => &[U16, U16, Text, Text, Text, Name], // NAPTR
        37 => &[U16, U16, U8, Base64],             // CERT
        43 | 59 => &[U16, U8, U8, Hex],            // DS, CDS
        44 => &[U8, U8, Hex],                      // SSHFP
        48 | 60 => &[U16, U8, U8, Base64],         // DNSKEY, CDNSKEY
        49 | 61 => &[Base64],                      // DHCID, OPENPGPKEY
        52 | 53 => &[U8, U8, U8, Hex],             // TLSA, SMIMEA
        62 => &[U32, U16, Bitmap],                 // CSYNC
        63 => &[U32, U8, U8, Hex],                 // ZONEMD
        104 | 106 => &[U16, Locator],              // NID, L64
        105 => &[U16, V4],                         // L32
        108 => &[Eui(6)],
        109 => &[Eui(8)],
        256 => &[U16, U16, Rest], // URI
        257 => &[U8, Tag, Rest],  // CAA
        _ => return None,
    })
}

/// One record as a master-file line: `owner TTL IN TYPE RDATA`, the RDATA in the type's own
/// form when it has one and the data fits it, else in the RFC 3597 generic form.
pub fn record_text(owner: &[u8], ttl: u32, code: u16, rdata: &[u8]) -> String {
    let data = rdata_text(code, rdata);
    let (mnemonic, data) = match data {
        Some(d) => (type_name(code), d),
        None => (format!("TYPE{code}"), generic(rdata)),
    };
    format!("{} {ttl} IN {mnemonic} {data}", name_text(owner))
}

/// RDATA in the type's own presentation form; `None` when the type has none here, when a
/// common zone reader does not know it, or when the bytes do not fit it (then only the
/// generic form says them exactly).
pub fn rdata_text(code: u16, rdata: &[u8]) -> Option<String> {
    let text = match code {
        // Read here in their own form, written in the generic one, which every zone reader
        // loads: NSD 4.6 has no text form for GPOS, A6 and HIP, Knot 3.2 none for X25,
        // ISDN, NSAP and PX.
        19 | 20 | 22 | 26 | 27 | 38 | 55 => return None,
        29 => special::loc(rdata)?,
        42 => special::apl(rdata)?,
        64 | 65 => special::svcb(rdata)?,
        _ => fields(layout(code)?, rdata)?,
    };
    Some(text)
}

/// `\# <length> <hex>` (RFC 3597 5).
pub fn generic(rdata: &[u8]) -> String {
    if rdata.is_empty() {
        "\\# 0".to_owned()
    } else {
        format!("\\# {} {}", rdata.len(), hex::encode(rdata))
    }
}

/// Reads RDATA from its start: each call takes what a field needs.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.rest.get(..n)?, self.rest.get(n..)?);
        self.rest = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An uncompressed name, in presentation form.
    fn name(&mut self) -> Option<String> {
        let mut len = 0;
        loop {
            let l = usize::from(*self.rest.get(len)?);
            if l > 63 {
                return None;
            }
            len += 1 + l;
            if l == 0 {
                break;
            }
        }
        (len <= 255).then_some(())?;
        self.take(len).map(name_text)
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }

    fn all(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
}

/// RDATA read by its layout; `None` if it does not fit (short, long, a bad name).
fn fields(layout: &[Field], rdata: &[u8]) -> Option<String> {
    let mut r = Reader { rest: rdata };
    let mut parts: Vec<String> = Vec::with_capacity(layout.len());
    for field in layout {
        match field {
            U8 => parts.push(r.u8()?.to_string()),
            U16 => parts.push(r.u16()?.to_string()),
            U32 => parts.push(r.u32()?.to_string()),
            Name => parts.push(r.name()?),
            Text => parts.push(quoted(r.string()?)),
            Texts => {
                if r.rest.is_empty() {
                    return None;
                }
                while !r.rest.is_empty() {
                    parts.push(quoted(r.string()?));
                }
            }
            OptText => {
                if !r.rest.is_empty() {
                    parts.push(quoted(r.string()?));
                }
            }
            Tag => {
                let tag = r.string()?;
                if tag.is_empty() || !tag.iter().all(u8::is_ascii_alphanumeric) {
                    return None;
                }
                parts.push(String::from_utf8_lossy(tag).into_owned());
            }
            Rest => parts.push(quoted(r.all())),
            Hex => parts.push(hex::encode_upper(Some(r.all()).filter(|b| !b.is_empty())?)),
            Base64 => {
                use base64::Engine as _;
                let bytes = Some(r.all()).filter(|b| !b.is_empty())?;
                parts.push(base64::engine::general_purpose::STANDARD.encode(bytes));
            }
            V4 => {
                let b: [u8; 4] = r.take(4)?.try_into().ok()?;
                parts.push(Ipv4Addr::from(b).to_string());
            }
            V6 => {
                let b: [u8; 16] = r.take(16)?.try_into().ok()?;
                parts.push(Ipv6Addr::from(b).to_string());
            }
            Locator => {
                let b = r.take(8)?;
                let groups: Vec<String> = b
                    .chunks(2)
                    .map(|g| format!("{:04x}", u16::from_be_bytes([g[0], g[1]])))
                    .collect();
                parts.push(groups.join(":"));
            }
            Bitmap => {
                let types = bitmap_types(r.all())?;
                parts.extend(types.into_iter().map(type_name));
            }
            Eui(n) => {
                let b = r.take(*n)?;
                let pairs: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
                parts.push(pairs.join("-"));
            }
            Nsap => {
                let b = Some(r.all()).filter(|b| !b.is_empty())?;
                parts.push(format!("0x{}", hex::encode(b)));
            }
        }
    }
    r.rest.is_empty().then(|| parts.join(" "))
}

/// The types a type bitmap (RFC 4034 4.1.2) holds; `None` if it is malformed (windows out of
/// order, a length outside 1..=32, a window cut short).
pub fn bitmap_types(mut bitmap: &[u8]) -> Option<Vec<u16>> {
    let mut out = Vec::new();
    let mut last_window: Option<u8> = None;
    while !bitmap.is_empty() {
        let (&window, &len) = (bitmap.first()?, bitmap.get(1)?);
        if last_window.is_some_and(|w| w >= window) || !(1..=32).contains(&len) {
            return None;
        }
        last_window = Some(window);
        let bits = bitmap.get(2..2 + usize::from(len))?;
        for (i, byte) in bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    out.push(u16::from(window) << 8 | (i * 8 + bit) as u16);
                }
            }
        }
        bitmap = &bitmap[2 + usize::from(len)..];
    }
    Some(out)
}

/// A type bitmap (RFC 4034 4.1.2) holding `types`.
pub fn bitmap(types: &[u16]) -> Vec<u8> {
    let mut types = types.to_vec();
    types.sort_unstable();
    types.dedup();
    let mut out = Vec::new();
    for window in types.chunk_by(|a, b| a >> 8 == b >> 8) {
        let mut bits = [0u8; 32];
        for t in window {
            let low = usize::from(t & 0xff);
            bits[low / 8] |= 0x80 >> (low % 8);
        }
        let len = bits.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        out.push((window[0] >> 8) as u8);
        out.push(len as u8);
        out.extend_from_slice(&bits[..len]);
    }
    out
}

/// A name in wire form as a master file writes it: absolute, the characters a zone file
/// gives meaning to (`. \ " ( ) ; @ $` and blanks) escaped with `\`, other bytes outside
/// printable ASCII as decimal `\DDD` (RFC 1035 5.1; never octal).
pub fn name_text(wire: &[u8]) -> String {
    let mut out = String::with_capacity(wire.len() + 1);
    for label in labels(wire) {
        for &b in label {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                0x21..=0x7e => out.push(char::from(b)),
                _ => {
                    let _ = write!(out, "\\{b:03}");
                }
            }
        }
        out.push('.');
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// A character-string in quotes: `"` and `\` escaped, bytes outside printable ASCII as
/// `\DDD` (RFC 1035 5.1).
pub fn quoted(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
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

    #[test]
    fn names_escape_in_decimal() {
        assert_eq!(
            name_text(b"\x0aweird name\x07example\x00"),
            "weird\\032name.example."
        );
        assert_eq!(name_text(b"\x03a.b\x02@;\x00"), "a\\.b.\\@\\;.");
        assert_eq!(name_text(b"\x00"), ".");
    }

    #[test]
    fn types_by_name_and_code() {
        for (name, code) in [
            ("DS", 43),
            ("MX", 15),
            ("DNAME", 39),
            ("L64", 106),
            ("TYPE65534", 65534),
        ] {
            assert_eq!(type_code(name), Some(code));
        }
        assert_eq!(type_code("NOPE"), None);
        assert_eq!(type_name(43), "DS");
        assert_eq!(type_name(65534), "TYPE65534");
        assert_eq!(type_code(&type_name(62)), Some(62));
    }

    #[test]
    fn layouts_write_the_data_or_give_way_to_the_generic_form() {
        assert_eq!(rdata_text(15, b"\x00\x0a\x04mail\x00").unwrap(), "10 mail.");
        let ds = [0x30, 0x39, 8, 2, 0xab, 0xcd];
        assert_eq!(rdata_text(43, &ds).unwrap(), "12345 8 2 ABCD");
        // A trailing byte, a missing field, an empty digest: not this type's form.
        assert_eq!(rdata_text(15, b"\x00\x0a\x04mail\x00\x01"), None);
        assert_eq!(rdata_text(43, &ds[..4]), None);
        assert_eq!(rdata_text(1, &[1, 2, 3]), None);
        assert_eq!(
            rdata_text(
                106,
                &[0, 10, 0x20, 0x01, 0x0d, 0xb8, 0x11, 0x40, 0x10, 0x00]
            )
            .unwrap(),
            "10 2001:0db8:1140:1000"
        );
        assert_eq!(
            rdata_text(108, &[0, 0x11, 0x22, 0x33, 0x44, 0x55]).unwrap(),
            "00-11-22-33-44-55"
        );
        assert_eq!(
            rdata_text(20, b"\x03123"),
            None,
            "ISDN: Knot reads only the generic form"
        );
        assert_eq!(
            rdata_text(257, b"\x00\x05issueexample.net").unwrap(),
            "0 issue \"example.net\""
        );
        assert_eq!(generic(&[]), "\\# 0");
        assert_eq!(
            record_text(b"\x01x\x00", 60, 65534, &[1, 2]),
            "x. 60 IN TYPE65534 \\# 2 0102"
        );
    }

    #[test]
    fn bitmaps_round_trip() {
        let types = [1, 2, 6, 15, 28, 46, 47, 256];
        let b = bitmap(&types);
        assert_eq!(bitmap_types(&b).unwrap(), types);
        assert_eq!(
            rdata_text(
                62,
                &[[0, 0, 0, 66, 0, 3].as_slice(), &bitmap(&[1, 28])].concat()
            )
            .unwrap(),
            "66 3 A AAAA"
        );
        assert_eq!(bitmap_types(&[0, 0]), None);
        assert_eq!(bitmap_types(&[1, 1, 0x80, 0, 1, 0x80]), None);
    }
}
