//! Where a query is answered: request bytes + the current zone -> response bytes.
//!
//! The response is written straight into a reused buffer: the client's question copied as sent
//! (so its case is echoed), pre-encoded RRsets copied behind it, owner names compressed to the
//! question. Nothing here allocates once the buffer has grown.

use super::index::{Lookup, RrSet, ZoneIndex};
use super::wire::{self, ParseError, Request};
use crate::dname::{class, flags, opcode, rtype, HEADER_LEN, MAX_NAME};

/// The largest UDP response we send, whatever the client offers (DNS Flag Day 2020: avoids
/// IP fragmentation, which is lost or spoofable on many paths).
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// Without EDNS a UDP response is at most 512 bytes (RFC 1035 4.2.1).
const CLASSIC_UDP_PAYLOAD: usize = 512;

/// Response codes (RFC 1035, RFC 6891 for BADVERS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Rcode {
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NxDomain = 3,
    NotImp = 4,
    Refused = 5,
    /// Not authoritative for the zone (RFC 2136; RFC 5936 2.2.1 for transfers).
    NotAuth = 9,
    BadVers = 16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What happened, for the caller's logs and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to send (not a query, or too short to answer).
    Drop,
    Reply {
        rcode: Rcode,
        truncated: bool,
    },
    /// Not our name, and the client may have it resolved: hand it to the forwarder.
    Forward,
    /// `out` holds our answer, whose CNAME chain leads out of our zones; the client may have
    /// the rest resolved: the forwarder completes it.
    ForwardChain,
}

/// What this client may have done for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Inside the listening interfaces' subnets or `allow`; otherwise everything is REFUSED.
    pub allowed: bool,
    /// Forwarding is configured: other names are resolved instead of REFUSED.
    pub forward: bool,
}

/// Answers one request. On `Outcome::Reply`, `out` holds the whole response message.
/// A client that is not allowed gets REFUSED for everything, and is never forwarded for.
pub fn respond(
    zone: &ZoneIndex,
    query: &[u8],
    transport: Transport,
    policy: Policy,
    out: &mut Vec<u8>,
) -> Outcome {
    out.clear();
    let req = match wire::parse(query) {
        Ok(r) => r,
        Err(ParseError::Ignore) => return Outcome::Drop,
        Err(ParseError::FormErr) => return format_error(query, out),
    };
    let limit = size_limit(transport, &req);
    let mut w = Writer::start(out, &req, policy.allowed && policy.forward);
    let rcode = if !policy.allowed {
        Rcode::Refused
    } else {
        match decide(zone, &req, &mut w) {
            // Recursion only for those who ask for it (RD), as a resolver would.
            Decision::NotOurs if policy.forward && req.flags & flags::RD != 0 => {
                return Outcome::Forward
            }
            Decision::NotOurs => Rcode::Refused,
            Decision::LeavesZones => {
                let done = w.finish(&req, Rcode::NoError, limit);
                let resolve = policy.forward && req.flags & flags::RD != 0;
                return match done {
                    Outcome::Reply {
                        truncated: false, ..
                    } if resolve => Outcome::ForwardChain,
                    other => other,
                };
            }
            Decision::Answer(rcode) => rcode,
        }
    };
    w.finish(&req, rcode, limit)
}

/// A reply with only the question (when it parses) and `rcode`: for queries the zone handed
/// on ([`Outcome::Forward`]) that end up answered by no one else. Malformed queries get
/// FORMERR as in [`respond`]; nothing to reply to gives [`Outcome::Drop`].
/// `recursion_available`: the client may have names resolved (RA).
pub fn reply_with(
    query: &[u8],
    rcode: Rcode,
    transport: Transport,
    recursion_available: bool,
    out: &mut Vec<u8>,
) -> Outcome {
    out.clear();
    match wire::parse(query) {
        Ok(req) => {
            let limit = size_limit(transport, &req);
            Writer::start(out, &req, recursion_available).finish(&req, rcode, limit)
        }
        Err(ParseError::Ignore) => Outcome::Drop,
        Err(ParseError::FormErr) => format_error(query, out),
    }
}

/// The empty, truncated form of a response (TC=1, the question and `rcode` only), which rate
/// limiting sends instead of some responses: a real client retries over TCP.
pub fn truncated(query: &[u8], rcode: Rcode, policy: Policy, out: &mut Vec<u8>) -> Outcome {
    out.clear();
    match wire::parse(query) {
        // A limit of 0 bytes: nothing fits, so the sections are cut and TC is set.
        Ok(req) => {
            let ra = policy.allowed && policy.forward;
            Writer::start(out, &req, ra).finish(&req, rcode, 0)
        }
        Err(ParseError::Ignore) => Outcome::Drop,
        Err(ParseError::FormErr) => format_error(query, out),
    }
}

/// FORMERR with the header only: the rest could not be trusted enough to echo.
fn format_error(query: &[u8], out: &mut Vec<u8>) -> Outcome {
    let flag_word = u16::from_be_bytes([query[2], query[3]]);
    out.extend_from_slice(&query[0..2]);
    let f = flags::QR | (flag_word & (0x7800 | flags::RD | flags::CD)) | Rcode::FormErr as u16;
    out.extend_from_slice(&f.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    Outcome::Reply {
        rcode: Rcode::FormErr,
        truncated: false,
    }
}

/// The largest response the client takes over this transport.
fn size_limit(transport: Transport, req: &Request<'_>) -> usize {
    match (transport, req.edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => CLASSIC_UDP_PAYLOAD,
        (Transport::Udp, Some(e)) => usize::from(e.udp_size.clamp(512, MAX_UDP_PAYLOAD)),
    }
}

enum Decision {
    Answer(Rcode),
    /// Outside every zone we serve.
    NotOurs,
    /// Answered with a CNAME chain whose last target is outside our zones.
    LeavesZones,
}

impl From<Rcode> for Decision {
    fn from(r: Rcode) -> Decision {
        Decision::Answer(r)
    }
}

/// Chooses the answer and writes its answer and authority sections.
fn decide(zone: &ZoneIndex, req: &Request<'_>, w: &mut Writer<'_>) -> Decision {
    // RFC 6891 6.1.3: we speak EDNS version 0 only.
    if req.edns.is_some_and(|e| e.version > 0) {
        return Rcode::BadVers.into();
    }
    if req.opcode != opcode::QUERY {
        return Rcode::NotImp.into();
    }
    let Some(q) = &req.question else {
        return Rcode::FormErr.into();
    };
    if q.qclass != class::IN && q.qclass != class::ANY {
        return Rcode::Refused.into();
    }
    match q.qtype {
        rtype::OPT => return Rcode::FormErr.into(),
        // Transfers for `[transfer] allow` are served over TCP before this (dns::transfer);
        // everyone else, and UDP, is refused.
        rtype::AXFR | rtype::IXFR => return Rcode::Refused.into(),
        rtype::MAILA | rtype::MAILB => return Rcode::NotImp.into(),
        _ => {}
    }
    answer_name(zone, q.name.wire(), q.qtype, w)
}

/// Longest CNAME chain followed inside our zones (BIND uses 16; real chains are 1 or 2 long).
const MAX_CHAIN: usize = 8;

/// Answers `qtype` at `qname`, following CNAMEs while they stay inside our zones (RFC 1034
/// 4.3.2): each CNAME goes into the answer and the chase goes on at its target, whose records
/// are written with the CNAME's RDATA as their (compressed) owner. The RCODE is that of the
/// last name of the chain (RFC 6604): a CNAME to a missing in-zone name is NXDOMAIN.
fn answer_name(zone: &ZoneIndex, qname: &[u8], qtype: u16, w: &mut Writer<'_>) -> Decision {
    let mut name = [0u8; MAX_NAME];
    let mut len = qname.len();
    name[..len].copy_from_slice(qname);
    // Where the current name sits in the response: the question, then each CNAME's RDATA.
    let mut owner_at = HEADER_LEN;
    // The CNAME nodes followed so far: a loop stops at its first repeat, so each RR is in
    // the answer once (as NSD and Knot answer).
    let mut followed = [std::ptr::null::<u8>(); MAX_CHAIN + 1];
    for hop in 0..=MAX_CHAIN {
        let found = match zone.lookup(&name[..len]) {
            Lookup::NotOurs if hop == 0 => return Decision::NotOurs,
            // The chain leaves our zones: the forwarder may complete it, else the client's
            // resolver follows it from here.
            Lookup::NotOurs => return Decision::LeavesZones,
            Lookup::NxDomain(meta) => {
                if !meta.complete {
                    return w.server_failure();
                }
                w.authoritative |= hop == 0;
                w.negative_soa(owner_at, len, meta.apex_len(), &meta.negative_soa);
                return Rcode::NxDomain.into();
            }
            Lookup::Found(node, meta) => (node, meta),
        };
        let (node, meta) = found;
        w.authoritative |= hop == 0;
        let mut answered = false;
        for set in node.rrsets() {
            if set.rtype == qtype || qtype == rtype::ANY {
                w.answer(&set, owner_at);
                answered = true;
            }
        }
        if answered {
            return Rcode::NoError.into();
        }
        if let Some(cname) = node.rrsets().find(|s| s.rtype == rtype::CNAME) {
            let id = node.prefix.as_ptr();
            if followed[..hop].contains(&id) {
                return Rcode::NoError.into();
            }
            followed[hop] = id;
            let start = w.answer(&cname, owner_at);
            // The record is `owner(2) TYPE CLASS TTL RDLENGTH(10) target`.
            let target = &cname.wire[12..];
            owner_at = start + 12;
            if owner_at > MAX_POINTER || target.len() > MAX_NAME {
                return Rcode::NoError.into();
            }
            len = target.len();
            for (d, s) in name.iter_mut().zip(target) {
                // Length octets are below 64, so lowercasing leaves them alone.
                *d = s.to_ascii_lowercase();
            }
            continue;
        }
        if !meta.complete {
            return w.server_failure();
        }
        // NODATA (RFC 2308 2.2): NOERROR, empty answer, SOA in authority.
        w.negative_soa(owner_at, len, meta.apex_len(), &meta.negative_soa);
        return Rcode::NoError.into();
    }
    // A chain this long is a loop or a mistake: what was found so far is the answer.
    Rcode::NoError.into()
}

/// The largest offset a compression pointer can hold.
const MAX_POINTER: usize = 0x3fff;

/// Builds a response in place: header, echoed question, sections, OPT.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    question_end: usize,
    authoritative: bool,
    /// RA: this client may have names resolved (RFC 1035 4.1.1: RA says whether recursion is
    /// available to it), on every answer, ours included.
    recursion_available: bool,
    ancount: u16,
    nscount: u16,
}

impl<'a> Writer<'a> {
    fn start(out: &'a mut Vec<u8>, req: &Request<'_>, recursion_available: bool) -> Writer<'a> {
        out.extend_from_slice(&[0; HEADER_LEN]);
        if let Some(q) = &req.question {
            out.extend_from_slice(&req.raw[HEADER_LEN..q.end]);
        }
        let question_end = out.len();
        Writer {
            out,
            question_end,
            authoritative: false,
            recursion_available,
            ancount: 0,
            nscount: 0,
        }
    }

    /// Copies an RRset into the answer with its owner compressed to the name at `owner_at`;
    /// returns where it starts. At the question (offset 12) the stored wire is copied whole.
    fn answer(&mut self, set: &RrSet, owner_at: usize) -> usize {
        let start = self.out.len();
        self.ancount += set.count;
        if owner_at == HEADER_LEN {
            self.out.extend_from_slice(set.wire);
            return start;
        }
        let pointer = (0xc000 | owner_at as u16).to_be_bytes();
        let mut rest = set.wire;
        while rest.len() >= 12 {
            let rdlength = usize::from(u16::from_be_bytes([rest[10], rest[11]]));
            let end = (12 + rdlength).min(rest.len());
            self.out.extend_from_slice(&pointer);
            self.out.extend_from_slice(&rest[2..end]);
            rest = &rest[end..];
        }
        start
    }

    /// SERVFAIL with nothing in the sections (a zone not synced yet cannot vouch for a miss).
    fn server_failure(&mut self) -> Decision {
        self.out.truncate(self.question_end);
        self.ancount = 0;
        self.nscount = 0;
        self.authoritative = false;
        Rcode::ServFail.into()
    }

    /// The zone's SOA in the authority section; its owner (the apex) is a suffix of the name
    /// at `name_at` (the question or a CNAME target), so it is a pointer into that name.
    fn negative_soa(&mut self, name_at: usize, name_len: usize, apex_len: usize, soa_tail: &[u8]) {
        let offset = (name_at + name_len - apex_len) as u16;
        self.out.extend_from_slice(&(0xc000 | offset).to_be_bytes());
        self.out.extend_from_slice(soa_tail);
        self.nscount += 1;
    }

    fn finish(self, req: &Request<'_>, rcode: Rcode, limit: usize) -> Outcome {
        let code = rcode as u16;
        let mut f = flags::QR
            | (u16::from(req.opcode) << 11)
            | (req.flags & (flags::RD | flags::CD))
            | (code & 0xf);
        if self.authoritative {
            f |= flags::AA;
        }
        if self.recursion_available {
            f |= flags::RA;
        }
        let (mut ancount, mut nscount) = (self.ancount, self.nscount);
        let opt_len = if req.edns.is_some() { 11 } else { 0 };
        let truncated = self.out.len() + opt_len > limit;
        if truncated {
            // RFC 2181 9: never a partial RRset; the client retries over TCP.
            self.out.truncate(self.question_end);
            ancount = 0;
            nscount = 0;
            f |= flags::TC;
        }
        if let Some(edns) = req.edns {
            // OPT: root owner, our payload size, extended RCODE high bits, version 0, DO echoed.
            self.out.push(0);
            self.out.extend_from_slice(&rtype::OPT.to_be_bytes());
            self.out.extend_from_slice(&MAX_UDP_PAYLOAD.to_be_bytes());
            self.out.push((code >> 4) as u8);
            self.out.push(0);
            self.out
                .extend_from_slice(&(if edns.dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
            self.out.extend_from_slice(&[0, 0]);
        }
        let qdcount = u16::from(req.question.is_some());
        let header = &mut self.out[..HEADER_LEN];
        header[0..2].copy_from_slice(&req.id.to_be_bytes());
        header[2..4].copy_from_slice(&f.to_be_bytes());
        header[4..6].copy_from_slice(&qdcount.to_be_bytes());
        header[6..8].copy_from_slice(&ancount.to_be_bytes());
        header[8..10].copy_from_slice(&nscount.to_be_bytes());
        header[10..12].copy_from_slice(&u16::from(req.edns.is_some()).to_be_bytes());
        Outcome::Reply { rcode, truncated }
    }
}
