//! Zone transfers (AXFR, RFC 5936; IXFR, RFC 1995) to the secondaries in `[transfer] allow`
//! (NOTIFY, which tells them to ask, is [`super::notify`]).

use std::net::IpAddr;

use super::answer::Rcode;
use super::index::{RrSet, ZoneIndex};
use super::wire::Request;
use crate::config::{self, TransferAllow};
use crate::dname::{class, flags, rtype, skip_name, HEADER_LEN};
use crate::zone::{serial_after, ZoneRecord};
use hickory_proto::rr::Name;

/// Messages of a transfer stay well under the 64 KiB TCP limit.
const MESSAGE_TARGET: usize = 16 * 1024;

/// Who may transfer, and with which keys (`[transfer] allow`; the keys themselves are the
/// rules' [`super::rules::Rules::keys`]), swapped whole on reload.
#[derive(Default)]
pub struct Transfers {
    allow: Vec<TransferAllow>,
}

impl Transfers {
    pub fn new(config: &config::Transfer) -> Transfers {
        Transfers {
            allow: config.allow.clone(),
        }
    }

    /// Whether some `allow` entry holds `client` (with or without a key).
    pub fn listed(&self, client: IpAddr) -> bool {
        self.allow.iter().any(|a| a.network.contains(&client))
    }

    /// Whether `client` may transfer with a request signed by `key` (already checked), or
    /// unsigned (`None`): an entry holding it names no key, or names this one.
    pub fn allows(&self, client: IpAddr, key: Option<&Name>) -> bool {
        (self.allow.iter())
            .filter(|a| a.network.contains(&client))
            .any(|a| a.key.is_none() || a.key.as_ref() == key)
    }
}

/// What a transfer request got, for the log line and the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The whole zone, asked for with AXFR.
    Axfr,
    /// The differences since the secondary's serial (RFC 1995 4).
    Ixfr,
    /// The whole zone in answer to an IXFR: the journal does not reach back to the
    /// secondary's serial (or it sent none).
    IxfrWhole,
    /// The current SOA alone: the secondary is current, or, over UDP, the differences do not
    /// fit (it then asks over TCP).
    SoaOnly,
    /// An error reply (NOTAUTH, SERVFAIL, REFUSED).
    Refused,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Axfr => "axfr",
            Kind::Ixfr => "ixfr",
            Kind::IxfrWhole => "ixfr-whole-zone",
            Kind::SoaOnly => "soa-only",
            Kind::Refused => "refused",
        }
    }
}

/// The messages answering a transfer request, and what they are.
pub struct Reply {
    pub messages: Vec<Vec<u8>>,
    pub kind: Kind,
    /// The serial the secondary said it has (IXFR).
    pub from: Option<u32>,
    /// Our serial.
    pub serial: Option<u32>,
}

/// The messages answering a transfer request ([`super::request::is_transfer`]) from a client allowed to
/// transfer. `udp`: the request came over UDP and the reply must fit in this many bytes.
/// - a name that is not the apex of a zone we serve: NOTAUTH (RFC 5936 2.2.1);
/// - a zone not synced yet: SERVFAIL (never hand out a zone we have not seen whole);
/// - AXFR over UDP: REFUSED (RFC 5936 4.2);
/// - IXFR from a secondary whose serial is the current one or later (RFC 1982): the current
///   SOA alone, "up to date" (RFC 1995 2);
/// - IXFR from a serial the journal holds: the differences since, condensed (RFC 1995 4);
///   over UDP only if they fit in one message, else the current SOA alone, which tells the
///   secondary to ask over TCP (RFC 1995 2);
/// - any other IXFR, and AXFR: the whole zone, SOA, every other record, SOA (over UDP the
///   SOA alone).
pub fn reply(zone: &ZoneIndex, req: &Request<'_>, udp: Option<usize>) -> Reply {
    let refused = |messages| Reply {
        messages,
        kind: Kind::Refused,
        from: None,
        serial: None,
    };
    let query = req.raw;
    let Some(q) = req.question.as_ref() else {
        return refused(Vec::new());
    };
    if udp.is_some() && q.qtype == rtype::AXFR {
        return refused(vec![single(req, query, Rcode::Refused, None)]);
    }
    let Some((_, apex, meta)) = zone.zone_at_apex(q.name.lower().wire()) else {
        return refused(vec![single(req, query, Rcode::NotAuth, None)]);
    };
    let Some(soa) = apex
        .rrset(rtype::SOA)
        .filter(|_| meta.complete && !meta.expired)
    else {
        return refused(vec![single(req, query, Rcode::ServFail, None)]);
    };
    let serial = soa_serial(soa.wire);
    let soa_only = |from| Reply {
        messages: vec![single(req, query, Rcode::NoError, Some(&soa))],
        kind: Kind::SoaOnly,
        from,
        serial,
    };
    let mut kind = Kind::Axfr;
    let mut from = None;
    if q.qtype == rtype::IXFR {
        from = ixfr_serial(query);
        kind = Kind::IxfrWhole;
        if matches!((serial, from), (Some(c), Some(t)) if !serial_after(c, t)) {
            return soa_only(from);
        }
        // The journal must end at the serial served, or its changes lead elsewhere.
        let journal = (meta.journal.as_deref()).filter(|j| j.last_serial() == serial);
        if let Some(condensed) = from.zip(journal).and_then(|(f, j)| j.since(f)) {
            let messages = ixfr(req, query, meta.apex.len(), &soa, &condensed);
            let fits = |limit| messages.len() == 1 && messages[0].len() <= limit;
            return match udp {
                Some(limit) if !fits(limit) => soa_only(from),
                _ => Reply {
                    messages,
                    kind: Kind::Ixfr,
                    from,
                    serial,
                },
            };
        }
    }
    if udp.is_some() {
        return soa_only(from);
    }
    Reply {
        messages: axfr(zone, req).unwrap_or_default(),
        kind,
        from,
        serial,
    }
}

/// The condensed differences as IXFR messages: the current SOA, the old SOA, the deleted
/// records, the current SOA, the added records, the current SOA (RFC 1995 4).
fn ixfr(
    req: &Request<'_>,
    query: &[u8],
    apex_len: usize,
    soa: &RrSet,
    changes: &crate::zone::journal::Condensed<'_>,
) -> Vec<Vec<u8>> {
    let mut out = Stream::new(req, query);
    out.rrset(&[], soa);
    out.zone_record(apex_len, &changes.old_soa);
    for r in &changes.deleted {
        out.zone_record(apex_len, r);
    }
    out.rrset(&[], soa);
    for r in &changes.added {
        out.zone_record(apex_len, r);
    }
    out.rrset(&[], soa);
    out.finish()
}

/// One message: the question, and the SOA when given.
fn single(req: &Request<'_>, query: &[u8], rcode: Rcode, soa: Option<&RrSet>) -> Vec<u8> {
    let end = req.question.as_ref().map_or(HEADER_LEN, |q| q.end);
    let mut m = Vec::with_capacity(end + soa.map_or(0, |s| s.wire.len()));
    m.extend_from_slice(&req.id.to_be_bytes());
    let aa = if rcode == Rcode::NotAuth || rcode == Rcode::Refused {
        0
    } else {
        flags::AA
    };
    let f = flags::QR
        | (u16::from(req.opcode) << 11)
        | aa
        | (req.flags & flags::RD)
        | (rcode as u16 & 0xf);
    m.extend_from_slice(&f.to_be_bytes());
    m.extend_from_slice(&u16::from(end > HEADER_LEN).to_be_bytes());
    m.extend_from_slice(&u16::from(soa.is_some()).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&query[HEADER_LEN..end]);
    if let Some(soa) = soa {
        m.extend_from_slice(soa.wire);
    }
    m
}

/// The serial of an SOA RRset as stored (`C0 0C | fixed | MNAME RNAME SERIAL ...`, names
/// uncompressed).
fn soa_serial(wire: &[u8]) -> Option<u32> {
    let rdata = wire.get(12..)?;
    let after_names = skip_name(rdata, 0).and_then(|at| skip_name(rdata, at))?;
    let s = rdata.get(after_names..after_names + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The serial an IXFR request carries: the SOA in its authority section (RFC 1995 3).
fn ixfr_serial(query: &[u8]) -> Option<u32> {
    let ancount = u16::from_be_bytes([*query.get(6)?, *query.get(7)?]);
    let nscount = u16::from_be_bytes([*query.get(8)?, *query.get(9)?]);
    if ancount != 0 || nscount == 0 {
        return None;
    }
    // Past the question: its name, type and class.
    let at = skip_name(query, HEADER_LEN)? + 4;
    // The authority record: owner, type, class, TTL, RDLENGTH, then MNAME RNAME SERIAL.
    let at = skip_name(query, at)?;
    if u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]) != rtype::SOA {
        return None;
    }
    let rdata = at + 10;
    let after_names = skip_name(query, rdata).and_then(|p| skip_name(query, p))?;
    let s = query.get(after_names..after_names + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The messages of a full transfer: SOA, every other record, SOA. `None` when the question is
/// not the apex of a complete zone we serve.
fn axfr(zone: &ZoneIndex, req: &Request<'_>) -> Option<Vec<Vec<u8>>> {
    let query = req.raw;
    let q = req.question.as_ref()?;
    let (z, apex_node, meta) = zone.zone_at_apex(q.name.lower().wire())?;
    if !meta.complete {
        return None; // never hand out a zone we have not synced yet
    }
    let soa = apex_node.rrset(rtype::SOA)?;
    let mut out = Stream::new(req, query);
    out.rrset(&[], &soa);
    for node in zone.names_in(z) {
        let prefix = node.prefix;
        for set in node.rrsets() {
            if !(prefix.is_empty() && set.rtype == rtype::SOA) {
                out.rrset(prefix, &set);
            }
        }
    }
    out.rrset(&[], &soa);
    Some(out.finish())
}

struct Stream {
    header: Vec<u8>,
    messages: Vec<Vec<u8>>,
    current: Vec<u8>,
    count: u16,
}

impl Stream {
    /// Messages answering `req`: each repeats the question, so owners can point at the apex
    /// in it.
    fn new(req: &Request<'_>, query: &[u8]) -> Stream {
        let end = req.question.as_ref().map_or(HEADER_LEN, |q| q.end);
        let mut header = Vec::with_capacity(end);
        header.extend_from_slice(&req.id.to_be_bytes());
        let f = flags::QR | flags::AA | (req.flags & flags::RD);
        header.extend_from_slice(&f.to_be_bytes());
        header.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        header.extend_from_slice(&query[HEADER_LEN..end]);
        Stream {
            header,
            messages: Vec::new(),
            current: Vec::new(),
            count: 0,
        }
    }

    /// Appends a record of the journal (its owner in full, at or under the apex).
    fn zone_record(&mut self, apex_len: usize, r: &ZoneRecord<'_>) {
        let prefix = &r.owner[..r.owner.len().saturating_sub(apex_len)];
        let mut tail = Vec::with_capacity(10 + r.rdata.len());
        tail.extend_from_slice(&r.rtype.to_be_bytes());
        tail.extend_from_slice(&class::IN.to_be_bytes());
        tail.extend_from_slice(&r.ttl.to_be_bytes());
        tail.extend_from_slice(&(r.rdata.len() as u16).to_be_bytes());
        tail.extend_from_slice(r.rdata);
        self.record(prefix, &tail);
    }

    /// Appends every record of `set`, owned by `prefix` labels + the apex.
    fn rrset(&mut self, prefix: &[u8], set: &RrSet) {
        // Each record in `set.wire`: C0 0C | TYPE CLASS TTL RDLENGTH | RDATA.
        let mut pos = 0;
        while pos + 12 <= set.wire.len() {
            let rdlen = usize::from(u16::from_be_bytes([set.wire[pos + 10], set.wire[pos + 11]]));
            let tail = &set.wire[pos + 2..pos + 12 + rdlen];
            self.record(prefix, tail);
            pos += 12 + rdlen;
        }
    }

    fn record(&mut self, prefix: &[u8], tail: &[u8]) {
        if self.current.is_empty() {
            self.current.extend_from_slice(&self.header);
        }
        if self.current.len() + prefix.len() + 2 + tail.len() > MESSAGE_TARGET && self.count > 0 {
            self.flush();
            self.current.extend_from_slice(&self.header);
        }
        self.current.extend_from_slice(prefix);
        self.current.extend_from_slice(&[0xc0, 0x0c]);
        self.current.extend_from_slice(tail);
        self.count += 1;
    }

    fn flush(&mut self) {
        let mut m = std::mem::take(&mut self.current);
        m[6..8].copy_from_slice(&self.count.to_be_bytes());
        self.messages.push(m);
        self.count = 0;
    }

    fn finish(mut self) -> Vec<Vec<u8>> {
        if self.count > 0 {
            self.flush();
        }
        self.messages
    }
}
