//! DNS names as bytes (lowercase uncompressed wire form, labels, parents) and the DNS
//! constants every layer shares. Ground floor: imports nothing of ours.
//!
//! The zone build, the index and the query path all compare names as lowercase wire bytes:
//! hashing and comparing bytes beats `hickory_proto::rr::Name` by a wide margin at 100,000
//! members, and a query's name arrives in this form anyway.

use hickory_proto::rr::Name;

/// Longest name in wire form (RFC 1035 2.3.4).
pub const MAX_NAME: usize = 255;
/// Longest label (RFC 1035 2.3.4).
pub const MAX_LABEL: usize = 63;
/// Fixed DNS message header size (RFC 1035 4.1.1).
pub const HEADER_LEN: usize = 12;

/// Record types (RFC 1035 3.2.2, 3.2.3; RFC 3596; RFC 6891; RFC 1995).
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const DNAME: u16 = 39;
    pub const DS: u16 = 43;
    pub const OPT: u16 = 41;
    pub const TSIG: u16 = 250;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const MAILB: u16 = 253;
    pub const MAILA: u16 = 254;
    pub const ANY: u16 = 255;
}

/// Classes (RFC 1035 3.2.4, 3.2.5).
pub mod class {
    pub const IN: u16 = 1;
    pub const ANY: u16 = 255;
}

/// Opcodes (RFC 1035 4.1.1, RFC 1996).
pub mod opcode {
    pub const QUERY: u8 = 0;
    pub const NOTIFY: u8 = 4;
    pub const UPDATE: u8 = 5;
}

/// Flag bits of the header's second 16-bit word.
pub mod flags {
    pub const QR: u16 = 0x8000;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
    pub const CD: u16 = 0x0010;
}

/// Lowercase uncompressed wire form of a name.
pub fn name_wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// The labels of an uncompressed wire name, first to last (the root is none). A length that
/// runs past the end stops the walk.
pub fn labels(wire: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = wire;
    std::iter::from_fn(move || {
        let len = usize::from(*rest.first().filter(|l| **l != 0)?);
        let label = rest.get(1..1 + len)?;
        rest = &rest[1 + len..];
        Some(label)
    })
}

/// A name from its uncompressed wire form (as [`name_wire`] gives it). Wire forms this crate
/// builds always convert; anything else (a label hickory refuses) gives the root rather than
/// a panic.
pub fn wire_name(wire: &[u8]) -> Name {
    Name::from_labels(labels(wire)).unwrap_or_else(|_| Name::root())
}

/// `db.backhaul.` from wire form, for logs.
pub fn wire_to_text(wire: &[u8]) -> String {
    let mut out = String::new();
    for label in labels(wire) {
        out.push_str(&String::from_utf8_lossy(label));
        out.push('.');
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// The wire name with its first label removed; `None` for the root.
pub fn parent(wire: &[u8]) -> Option<&[u8]> {
    match wire.first() {
        Some(0) | None => None,
        Some(&len) => wire.get(1 + usize::from(len)..),
    }
}

/// Whether the wire name `name` is `ancestor` or below it (label by label, not by bytes).
pub fn is_at_or_below(name: &[u8], ancestor: &[u8]) -> bool {
    let mut at = Some(name);
    while let Some(n) = at {
        if n.len() < ancestor.len() {
            return false;
        }
        if n == ancestor {
            return true;
        }
        at = parent(n);
    }
    false
}

/// The offset just past the name at `at` in a message (labels ending in the root or in a
/// compression pointer); `None` if it runs off the end or holds a reserved label type.
pub fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len & 0xc0 {
            0 if len == 0 => return Some(at + 1),
            0 => at += 1 + usize::from(len),
            0xc0 => return msg.get(at + 1).map(|_| at + 2),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_text_and_names_from_wire() {
        let wire = b"\x02db\x08Backhaul\x00";
        assert_eq!(labels(wire).collect::<Vec<_>>(), [&b"db"[..], b"Backhaul"]);
        assert_eq!(wire_to_text(wire), "db.Backhaul.");
        assert_eq!(wire_to_text(b"\x00"), ".");
        assert_eq!(wire_name(wire).to_ascii(), "db.Backhaul.");
        // A length past the end (a malformed name) ends the walk.
        assert_eq!(wire_to_text(b"\x02db\x09back"), "db.");
        assert_eq!(parent(wire), Some(&b"\x08Backhaul\x00"[..]));
        assert_eq!(parent(b"\x00"), None);
    }
}
