//! DNS request parsing (RFC 1035 4.1, RFC 6891 OPT): just what answering needs, no allocation.

use crate::dname::{flags, rtype, HEADER_LEN, MAX_NAME};

/// The QTYPE of a message's first question, found without parsing the rest (for counters and
/// the query log). `None` when there is no well-formed question.
pub fn qtype(message: &[u8]) -> Option<u16> {
    if message.get(4..6)? == [0, 0] {
        return None;
    }
    let mut pos = HEADER_LEN;
    loop {
        let len = usize::from(*message.get(pos)?);
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        pos += 1 + len;
    }
    let t = message.get(pos + 1..pos + 3)?;
    Some(u16::from_be_bytes([t[0], t[1]]))
}

/// The RCODE of a message (its header's low four bits; the extended bits of an OPT aside),
/// for counters and logs. `None` when shorter than a header.
pub fn rcode(message: &[u8]) -> Option<u16> {
    if message.len() < HEADER_LEN {
        return None;
    }
    Some(u16::from(message[3] & 0x0f))
}

/// ANCOUNT of a message: how many records its answer section holds (0 when shorter than a
/// header).
pub fn answer_count(message: &[u8]) -> u16 {
    match message.get(6..8) {
        Some(c) => u16::from_be_bytes([c[0], c[1]]),
        None => 0,
    }
}

/// The question name as the client sent it (plain labels, validated), borrowed from the
/// request: parsing copies nothing, and the answer lowercases it while copying it into its
/// own buffer anyway.
#[derive(Clone, Copy)]
pub struct QName<'a> {
    raw: &'a [u8],
}

impl<'a> QName<'a> {
    /// The name in wire form, in the client's case.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// `\x02db\x08backhaul\x00`, lowercase: the key the zone index is built on.
    pub fn lower(&self) -> Lowered {
        let mut out = Lowered {
            buf: [0; MAX_NAME],
            len: self.raw.len(),
        };
        lowercase_into(&mut out.buf, self.raw);
        out
    }
}

/// A lowercase copy of a question name.
pub struct Lowered {
    buf: [u8; MAX_NAME],
    len: usize,
}

impl Lowered {
    pub fn wire(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Copies the wire name `name` into `into`, lowercase (length octets are below 64, so
/// lowercasing leaves them alone).
#[inline]
pub fn lowercase_into(into: &mut [u8], name: &[u8]) {
    // Eight bytes at a time (every query's name goes through here): a third of the
    // instructions of a byte-by-byte loop, which the compiler does not widen by itself.
    let n = name.len().min(into.len());
    let mut to = into[..n].chunks_exact_mut(8);
    let mut from = name[..n].chunks_exact(8);
    for (d, s) in (&mut to).zip(&mut from) {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(s);
        d.copy_from_slice(&lowercase8(u64::from_le_bytes(eight)).to_le_bytes());
    }
    for (d, s) in to.into_remainder().iter_mut().zip(from.remainder()) {
        *d = s.to_ascii_lowercase();
    }
}

/// The eight bytes of `x` with ASCII `A`-`Z` made lowercase, the rest unchanged: a byte is
/// uppercase when its low seven bits are at least `A` (adding 0x3f carries into bit 7) and
/// below `[` (adding 0x25 does not), and its own bit 7 is clear; then 0x20 is added.
#[inline]
fn lowercase8(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low = x & LOW7;
    let from_a = low + 0x3f3f_3f3f_3f3f_3f3f;
    let past_z = low + 0x2525_2525_2525_2525;
    let upper = from_a & !past_z & !x & HIGH;
    x | (upper >> 2)
}

#[derive(Clone, Copy)]
pub struct Question<'a> {
    pub name: QName<'a>,
    pub qtype: u16,
    pub qclass: u16,
    /// Offset just past QCLASS: `query[HEADER_LEN..end]` is the question as the client sent it.
    pub end: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    pub udp_size: u16,
    pub version: u8,
    pub dnssec_ok: bool,
}

pub struct Request<'a> {
    pub raw: &'a [u8],
    pub id: u16,
    pub flags: u16,
    pub opcode: u8,
    pub qdcount: u16,
    /// The first question; `None` when QDCOUNT is 0.
    pub question: Option<Question<'a>>,
    pub edns: Option<Edns>,
    /// Where the request's TSIG record starts (RFC 8945): the last record, when it has one.
    pub tsig: Option<usize>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not worth an answer: shorter than a header, or itself a response (answering responses
    /// invites loops between servers).
    Ignore,
    /// Malformed: answer FORMERR with the header's id.
    FormErr,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

#[inline(always)]
pub fn parse(raw: &[u8]) -> Result<Request<'_>, ParseError> {
    let Some(header) = raw.first_chunk::<HEADER_LEN>() else {
        return Err(ParseError::Ignore);
    };
    let word = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    let (id, flag_word) = (word(0), word(2));
    if flag_word & flags::QR != 0 {
        return Err(ParseError::Ignore);
    }
    let (qdcount, ancount, nscount, arcount) = (word(4), word(6), word(8), word(10));
    if qdcount > 1 {
        return Err(ParseError::FormErr);
    }
    let mut pos = HEADER_LEN;
    let question = if qdcount == 1 {
        let (name, after) = question_name(raw, pos)?;
        let qtype = be16(raw, after).ok_or(ParseError::FormErr)?;
        let qclass = be16(raw, after + 2).ok_or(ParseError::FormErr)?;
        pos = after + 4;
        Some(Question {
            name,
            qtype,
            qclass,
            end: pos,
        })
    } else {
        None
    };
    for _ in 0..(u32::from(ancount) + u32::from(nscount)) {
        let (kind, next, _) = skip_record(raw, pos)?;
        if kind == rtype::TSIG {
            return Err(ParseError::FormErr); // RFC 8945 5.1: only last of the additional
        }
        pos = next;
    }
    let mut edns = None;
    let mut tsig = None;
    for i in 0..arcount {
        let (kind, next, owner_is_root) = skip_record(raw, pos)?;
        if kind == rtype::TSIG {
            if i + 1 != arcount {
                return Err(ParseError::FormErr);
            }
            tsig = Some(pos);
        }
        if kind == rtype::OPT {
            // RFC 6891 6.1.1: one OPT, owned by the root; anything else is FORMERR.
            if edns.is_some() || !owner_is_root {
                return Err(ParseError::FormErr);
            }
            let fixed = pos + 1;
            let udp_size = be16(raw, fixed + 2).ok_or(ParseError::FormErr)?;
            let version = raw[fixed + 5];
            let dnssec_ok = raw[fixed + 6] & 0x80 != 0;
            edns = Some(Edns {
                udp_size,
                version,
                dnssec_ok,
            });
        }
        pos = next;
    }
    Ok(Request {
        raw,
        id,
        flags: flag_word,
        opcode: ((flag_word >> 11) & 0xf) as u8,
        qdcount,
        question,
        edns,
        tsig,
    })
}

/// The question name: plain labels only. A compression pointer here could only point back
/// into the header, so it is malformed.
fn question_name(raw: &[u8], start: usize) -> Result<(QName<'_>, usize), ParseError> {
    let mut pos = start;
    loop {
        // A label running past the end fails at the next read; the loop ends within
        // `raw.len()` steps, and the length is checked once at the end.
        let len = usize::from(*raw.get(pos).ok_or(ParseError::FormErr)?);
        if len & 0xc0 != 0 {
            return Err(ParseError::FormErr);
        }
        pos += 1 + len;
        if len == 0 {
            break;
        }
    }
    if pos - start > MAX_NAME {
        return Err(ParseError::FormErr);
    }
    let raw = raw.get(start..pos).ok_or(ParseError::FormErr)?;
    Ok((QName { raw }, pos))
}

/// Skips one resource record; returns its type, the offset after it, and whether its owner is
/// the root name.
fn skip_record(raw: &[u8], mut pos: usize) -> Result<(u16, usize, bool), ParseError> {
    let start = pos;
    loop {
        let len = *raw.get(pos).ok_or(ParseError::FormErr)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                pos += 1;
                break;
            }
            0x00 => pos += 1 + usize::from(len),
            0xc0 => {
                pos += 2;
                break;
            }
            _ => return Err(ParseError::FormErr),
        }
        if pos - start > MAX_NAME {
            return Err(ParseError::FormErr);
        }
    }
    let owner_is_root = pos == start + 1;
    let kind = be16(raw, pos).ok_or(ParseError::FormErr)?;
    let rdlen = usize::from(be16(raw, pos + 8).ok_or(ParseError::FormErr)?);
    let end = pos + 10 + rdlen;
    if end > raw.len() {
        return Err(ParseError::FormErr);
    }
    Ok((kind, end, owner_is_root))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], extra_ar: &[u8], arcount: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        q.extend_from_slice(&arcount.to_be_bytes());
        q.extend_from_slice(name);
        q.extend_from_slice(&[0, 1, 0, 1]);
        q.extend_from_slice(extra_ar);
        q
    }

    const OPT: [u8; 11] = [0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0];

    #[test]
    fn lowercasing_matches_the_byte_by_byte_rule_for_every_byte_and_length() {
        // Every byte value at every position of an 8-byte word, and every tail length.
        let all: Vec<u8> = (0..=255u8).collect();
        for shift in 0..8 {
            let name: Vec<u8> = all
                .iter()
                .cycle()
                .skip(shift)
                .take(256 + shift)
                .copied()
                .collect();
            for len in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 255, name.len()] {
                let mut into = [0xaau8; 300];
                lowercase_into(&mut into, &name[..len]);
                let want: Vec<u8> = name[..len].iter().map(u8::to_ascii_lowercase).collect();
                assert_eq!(&into[..len], &want[..], "shift {shift} len {len}");
                assert!(
                    into[len..].iter().all(|b| *b == 0xaa),
                    "wrote past the name"
                );
            }
        }
        // A shorter buffer takes what fits.
        let mut small = [0u8; 5];
        lowercase_into(&mut small, b"ABCDEFGHIJ");
        assert_eq!(&small, b"abcde");
    }

    #[test]
    fn parses_question_and_edns() {
        let q = query(b"\x02Db\x08BackHaul\x00", &OPT, 1);
        let r = parse(&q).unwrap();
        assert_eq!(r.id, 0x1234);
        let question = r.question.unwrap();
        assert_eq!(question.name.lower().wire(), b"\x02db\x08backhaul\x00");
        assert_eq!(question.name.raw(), b"\x02Db\x08BackHaul\x00");
        assert_eq!(question.qtype, 1);
        assert_eq!(question.end, 12 + 13 + 4);
        assert_eq!(
            r.edns,
            Some(Edns {
                udp_size: 1232,
                version: 0,
                dnssec_ok: true
            })
        );
    }

    #[test]
    fn malformed_inputs() {
        assert_eq!(parse(&[0; 5]).err(), Some(ParseError::Ignore));
        let mut resp = query(b"\x00", &[], 0);
        resp[2] |= 0x80;
        assert_eq!(parse(&resp).err(), Some(ParseError::Ignore));
        let truncated = query(b"\x05ab", &[], 0);
        assert_eq!(parse(&truncated[..15]).err(), Some(ParseError::FormErr));
        let pointer = query(b"\xc0\x0c", &[], 0);
        assert_eq!(parse(&pointer).err(), Some(ParseError::FormErr));
        let mut two_opt = OPT.to_vec();
        two_opt.extend_from_slice(&OPT);
        assert_eq!(
            parse(&query(b"\x00", &two_opt, 2)).err(),
            Some(ParseError::FormErr)
        );
        let long = [b"\x3f".as_slice(), &[b'a'; 63]].concat().repeat(5);
        let name = [long.as_slice(), b"\x00"].concat();
        assert_eq!(
            parse(&query(&name, &[], 0)).err(),
            Some(ParseError::FormErr)
        );
    }

    #[test]
    fn never_panics_on_prefixes() {
        let q = query(b"\x02db\x08backhaul\x00", &OPT, 1);
        for n in 0..q.len() {
            let _ = parse(&q[..n]);
        }
    }
}
