//! Zone transfers (AXFR, RFC 5936; IXFR, RFC 1995) to the secondaries in `[transfer] allow`,
//! and NOTIFY (RFC 1996) to `[transfer] notify` when a zone's serial changes.

use std::net::SocketAddr;
use std::time::Duration;

use super::answer::Rcode;
use super::index::{RrSet, ZoneIndex};
use super::wire;
use crate::dname::{flags, opcode, rtype, wire_to_text, HEADER_LEN};
use crate::zone::serial_after;

/// Messages of a transfer stay well under the 64 KiB TCP limit.
const MESSAGE_TARGET: usize = 16 * 1024;

/// Whether `query` asks for a zone transfer (AXFR, or IXFR, which is answered with the whole
/// zone as RFC 1995 section 4 allows, or with the SOA alone when the secondary is current).
pub fn is_transfer(query: &[u8]) -> bool {
    wire::parse(query)
        .ok()
        .and_then(|r| r.question)
        .is_some_and(|q| q.qtype == rtype::AXFR || q.qtype == rtype::IXFR)
}

/// The messages answering a transfer request (`is_transfer`) from a client allowed to
/// transfer:
/// - a name that is not the apex of a zone we serve: NOTAUTH (RFC 5936 2.2.1);
/// - a zone not synced yet: SERVFAIL (never hand out a zone we have not seen whole);
/// - IXFR from a secondary whose serial is the current one or later (RFC 1982): the current
///   SOA alone, "up to date" (RFC 1995 2);
/// - over UDP, any other IXFR: the current SOA alone too, which tells the secondary to ask
///   over TCP (RFC 1995 2); AXFR over UDP: REFUSED (RFC 5936 4.2);
/// - otherwise the whole zone: SOA, every other record, SOA (for IXFR too, RFC 1995 4).
pub fn reply(zone: &ZoneIndex, query: &[u8], udp: bool) -> Vec<Vec<u8>> {
    let Ok(req) = wire::parse(query) else {
        return Vec::new();
    };
    let Some(q) = req.question.as_ref() else {
        return Vec::new();
    };
    if udp && q.qtype == rtype::AXFR {
        return vec![single(&req, query, Rcode::Refused, None)];
    }
    let Some((_, apex, meta)) = zone.zone_at_apex(q.name.wire()) else {
        return vec![single(&req, query, Rcode::NotAuth, None)];
    };
    let Some(soa) = apex.rrset(rtype::SOA).filter(|_| meta.complete) else {
        return vec![single(&req, query, Rcode::ServFail, None)];
    };
    if q.qtype == rtype::IXFR {
        let current = soa_serial(soa.wire);
        let theirs = ixfr_serial(query);
        let up_to_date = matches!((current, theirs), (Some(c), Some(t)) if !serial_after(c, t));
        if up_to_date || udp {
            return vec![single(&req, query, Rcode::NoError, Some(&soa))];
        }
    }
    axfr(zone, query).unwrap_or_default()
}

/// One message: the question, and the SOA when given.
fn single(req: &wire::Request<'_>, query: &[u8], rcode: Rcode, soa: Option<&RrSet>) -> Vec<u8> {
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

/// The offset just past a name at `at` (labels ending in the root or a compression pointer).
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
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

/// The messages of a full transfer: SOA, every other record, SOA. `None` when the question is
/// not the apex of a complete zone we serve.
fn axfr(zone: &ZoneIndex, query: &[u8]) -> Option<Vec<Vec<u8>>> {
    let req = wire::parse(query).ok()?;
    let q = req.question.as_ref()?;
    let (z, apex_node, meta) = zone.zone_at_apex(q.name.wire())?;
    if !meta.complete {
        return None; // never hand out a zone we have not synced yet
    }
    let soa = apex_node.rrset(rtype::SOA)?;
    let mut header = Vec::with_capacity(HEADER_LEN + q.end);
    header.extend_from_slice(&req.id.to_be_bytes());
    let f = flags::QR | flags::AA | (req.flags & flags::RD);
    header.extend_from_slice(&f.to_be_bytes());
    header.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    // The question is repeated in every message, so owners can point at the apex in it.
    header.extend_from_slice(&query[HEADER_LEN..q.end]);
    let mut out = Stream {
        header,
        messages: Vec::new(),
        current: Vec::new(),
        count: 0,
    };
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

/// Sends NOTIFY for the zone `apex` (lowercase wire name) to every target, retrying each up to
/// three times until it answers (RFC 1996 4.7).
pub async fn notify(apex: Vec<u8>, targets: Vec<SocketAddr>) {
    for target in targets {
        let apex = apex.clone();
        tokio::spawn(async move {
            let id: u16 = rand::random();
            let mut msg = id.to_be_bytes().to_vec();
            msg.extend_from_slice(&((u16::from(opcode::NOTIFY) << 11) | flags::AA).to_be_bytes());
            msg.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
            msg.extend_from_slice(&apex);
            msg.extend_from_slice(&rtype::SOA.to_be_bytes());
            msg.extend_from_slice(&1u16.to_be_bytes());
            let name = wire_to_text(&apex);
            for attempt in 1..=3 {
                match notify_once(&msg, id, target).await {
                    Ok(()) => {
                        tracing::debug!(zone = %name, %target, "NOTIFY acknowledged");
                        return;
                    }
                    Err(e) if attempt == 3 => tracing::warn!(zone = %name, %target, error = %e,
                        "secondary did not acknowledge NOTIFY; it will still refresh on its SOA timer"),
                    Err(_) => {}
                }
            }
        });
    }
}

async fn notify_once(msg: &[u8], id: u16, target: SocketAddr) -> std::io::Result<()> {
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().expect("valid")
    } else {
        "[::]:0".parse().expect("valid")
    };
    let sock = tokio::net::UdpSocket::bind(bind).await?;
    sock.connect(target).await?;
    sock.send(msg).await?;
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))??;
        if n >= HEADER_LEN && buf[..2] == id.to_be_bytes() && buf[2] & 0x80 != 0 {
            return Ok(());
        }
    }
}
