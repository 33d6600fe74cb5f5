//! Writing a response in place ([`Writer`]): the header, the question as the client sent it,
//! RRsets copied from the zone with owners compressed to names already written, additional
//! addresses of targets ([`Targets`]), the OPT record, and truncation when it does not fit.

use super::{Outcome, Rcode, MAX_UDP_PAYLOAD};
use crate::dname::{flags, rtype, HEADER_LEN, MAX_NAME};
use crate::dns::index::{Lookup, RrSet, Visibility, ZoneIndex, ZoneMeta};
use crate::dns::wire::{lowercase_into, Request};

/// Where the target name starts in the RDATA of the types whose targets get their addresses in
/// the additional section (RFC 1034 3.6, RFC 2782): NS, MX (after the preference), SRV (after
/// priority, weight and port).
pub(super) fn target_offset(rtype: u16) -> Option<usize> {
    match rtype {
        rtype::NS => Some(0),
        rtype::MX => Some(2),
        rtype::SRV => Some(6),
        _ => None,
    }
}

/// The answered RRsets whose targets get their addresses in the additional section, noted
/// while the answer is written and looked up after it: with ANY (an apex with NS and MX),
/// one set's additional records must not land between the answer's RRsets.
#[derive(Default)]
pub(super) struct Targets<'a> {
    /// (the set, where it starts in the response, where the target starts in its RDATA)
    sets: [Option<(RrSet<'a>, usize, usize)>; 4],
}

impl<'a> Targets<'a> {
    pub(super) fn note(&mut self, set: RrSet<'a>, start: usize) {
        let Some(at) = target_offset(set.rtype) else {
            return;
        };
        if let Some(slot) = self.sets.iter_mut().find(|s| s.is_none()) {
            *slot = Some((set, start, at));
        }
    }

    pub(super) fn write(&self, w: &mut Writer<'_>, zone: &ZoneIndex, within: &ZoneMeta) {
        for (set, start, at) in self.sets.iter().flatten() {
            w.target_addresses(zone, within, set, *start, *at);
        }
    }
}

/// The largest offset a compression pointer can hold.
pub(super) const MAX_POINTER: usize = 0x3fff;

/// Builds a response in place: header, echoed question, sections, OPT.
pub(super) struct Writer<'a> {
    out: &'a mut Vec<u8>,
    question_end: usize,
    pub(super) authoritative: bool,
    /// RA: this client may have names resolved (RFC 1035 4.1.1: RA says whether recursion is
    /// available to it), on every answer, ours included.
    recursion_available: bool,
    ancount: u16,
    nscount: u16,
    /// Records in the additional section (OPT aside), and where that section starts: it is
    /// the first thing dropped when the response does not fit.
    arcount: u16,
    additional_at: usize,
    /// The client's scope: names it hides are left out of the additional section, and
    /// hidden members out of service answers.
    pub(super) scope: Option<u8>,
    /// The client's own subnet: addresses in it go first in an address RRset.
    pub(super) home: Option<ipnet::IpNet>,
}

impl<'a> Writer<'a> {
    pub(super) fn start(
        out: &'a mut Vec<u8>,
        req: &Request<'_>,
        recursion_available: bool,
    ) -> Writer<'a> {
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
            arcount: 0,
            additional_at: 0,
            scope: None,
            home: None,
        }
    }

    /// The A and AAAA records of the targets of `set` (NS, MX, SRV) that lie in the zone
    /// `within` (the zone the set was answered from: never another zone's data, as NSD),
    /// written at `start` of the answer, into the additional section; each target once. `at`:
    /// where the target starts in each record's RDATA. The owners point at the targets in the
    /// answer.
    pub(super) fn target_addresses(
        &mut self,
        zone: &ZoneIndex,
        within: &ZoneMeta,
        set: &RrSet,
        start: usize,
        at: usize,
    ) {
        if self.arcount == 0 {
            self.additional_at = self.out.len();
        }
        // Targets already looked up (two MX to one host: its addresses once).
        let mut done: [&[u8]; 8] = [&[]; 8];
        let mut pos = 0;
        for _ in 0..set.count {
            let Some(header) = set.wire.get(pos..pos + 12) else {
                return;
            };
            let rdlen = usize::from(u16::from_be_bytes([header[10], header[11]]));
            let Some(target) = set.wire.get(pos + 12 + at.min(rdlen)..pos + 12 + rdlen) else {
                return;
            };
            let target_at = start + pos + 12 + at;
            pos += 12 + rdlen;
            let mut name = [0u8; MAX_NAME];
            let len = target.len().min(MAX_NAME);
            lowercase_into(&mut name, &target[..len]);
            let name = &name[..len];
            let seen = done.iter().any(|d| d.eq_ignore_ascii_case(target));
            if seen || target_at > MAX_POINTER || name.len() < 2 {
                continue;
            }
            if let Some(slot) = done.iter_mut().find(|d| d.is_empty()) {
                *slot = target;
            }
            let node = match zone.lookup(name) {
                Lookup::Found(node, meta) if std::ptr::eq(meta, within) => Some(node),
                // Glue: the addresses of a name below a delegation of this zone.
                Lookup::Referral(_, meta, _) if std::ptr::eq(meta, within) => zone.exact(name),
                _ => None,
            };
            let node = node.filter(|n| zone.visibility(n, self.scope) == Visibility::Visible);
            if let Some(node) = node {
                for rtype in [rtype::A, rtype::AAAA] {
                    if let Some(addresses) = node.rrset(rtype) {
                        self.answer(&addresses, target_at);
                        // `answer` counted them as answers: they are additional.
                        self.ancount -= addresses.count;
                        self.arcount += addresses.count;
                    }
                }
            }
        }
    }

    /// Copies an RRset into the answer with its owner compressed to the name at `owner_at`;
    /// returns where it starts. At the question (offset 12) the stored wire is copied whole.
    pub(super) fn answer(&mut self, set: &RrSet, owner_at: usize) -> usize {
        if self.home.is_some() && set.count > 1 && matches!(set.rtype, rtype::A | rtype::AAAA) {
            // The client's own subnet first (a host on two networks is reached on its own).
            let home = self.home;
            let (start, _) = self.answer_some(set, owner_at, |r| super::in_home(home, r));
            self.answer_some(set, owner_at, |r| !super::in_home(home, r));
            return start;
        }
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

    /// The CNAME a DNAME stands for (RFC 6672 3.1): owned by the name at `owner_at`, its
    /// target that name's first `prefix_len` bytes (its labels below the DNAME's owner, in the
    /// case they were written) followed by the DNAME's `target`, with the DNAME's `ttl`.
    /// Written uncompressed, like every name the chase goes on from; returns where it starts.
    pub(super) fn synthesized_cname(
        &mut self,
        owner_at: usize,
        prefix_len: usize,
        ttl: [u8; 4],
        target: &[u8],
    ) -> usize {
        let start = self.out.len();
        self.out
            .extend_from_slice(&(0xc000 | owner_at as u16).to_be_bytes());
        self.out.extend_from_slice(&rtype::CNAME.to_be_bytes());
        self.out.extend_from_slice(&1u16.to_be_bytes());
        self.out.extend_from_slice(&ttl);
        self.out
            .extend_from_slice(&((prefix_len + target.len()) as u16).to_be_bytes());
        self.out.extend_from_within(owner_at..owner_at + prefix_len);
        self.out.extend_from_slice(target);
        self.ancount += 1;
        start
    }

    /// [`Self::answer`] for the records of `set` that `keep` keeps (by their RDATA): a
    /// service's answer without the members the client's scope hides. Returns where it starts
    /// and how many it wrote.
    pub(super) fn answer_some(
        &mut self,
        set: &RrSet,
        owner_at: usize,
        keep: impl Fn(&[u8]) -> bool,
    ) -> (usize, u16) {
        let start = self.out.len();
        let pointer = (0xc000 | owner_at as u16).to_be_bytes();
        let mut rest = set.wire;
        let mut written = 0;
        while rest.len() >= 12 {
            let rdlength = usize::from(u16::from_be_bytes([rest[10], rest[11]]));
            let end = (12 + rdlength).min(rest.len());
            if keep(&rest[12..end]) {
                self.out.extend_from_slice(&pointer);
                self.out.extend_from_slice(&rest[2..end]);
                written += 1;
            }
            rest = &rest[end..];
        }
        self.ancount += written;
        (start, written)
    }

    /// Copies an RRset into the authority section (a referral's NS); see [`Self::answer`].
    pub(super) fn authority(&mut self, set: &RrSet, owner_at: usize) -> usize {
        let start = self.answer(set, owner_at);
        self.ancount -= set.count;
        self.nscount += set.count;
        start
    }

    /// SERVFAIL with nothing in the sections (a zone not synced yet cannot vouch for a miss).
    pub(super) fn server_failure(&mut self) -> Rcode {
        self.out.truncate(self.question_end);
        self.ancount = 0;
        self.nscount = 0;
        self.authoritative = false;
        Rcode::ServFail
    }

    /// The zone's SOA in the authority section; its owner (the apex) is a suffix of the name
    /// at `name_at` (the question or a CNAME target), so it is a pointer into that name.
    pub(super) fn negative_soa(
        &mut self,
        name_at: usize,
        name_len: usize,
        apex_len: usize,
        soa_tail: &[u8],
    ) {
        let offset = (name_at + name_len - apex_len) as u16;
        self.out.extend_from_slice(&(0xc000 | offset).to_be_bytes());
        self.out.extend_from_slice(soa_tail);
        self.nscount += 1;
    }

    pub(super) fn finish(self, req: &Request<'_>, rcode: Rcode, limit: usize) -> Outcome {
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
        let (mut ancount, mut nscount, mut arcount) = (self.ancount, self.nscount, self.arcount);
        let opt_len = if req.edns.is_some() { 11 } else { 0 };
        if arcount > 0 && self.out.len() + opt_len > limit {
            // Additional addresses are a courtesy: dropped before anything is truncated.
            self.out.truncate(self.additional_at);
            arcount = 0;
        }
        let truncated = self.out.len() + opt_len > limit;
        if truncated {
            // RFC 2181 9: never a partial RRset; the client retries over TCP.
            self.out.truncate(self.question_end);
            ancount = 0;
            nscount = 0;
            f |= flags::TC;
        }
        if let Some(edns) = req.edns {
            // OPT: root owner, our payload size, extended RCODE high bits, version 0, DO echoed,
            // no options. Put together first and added with one copy.
            let [t0, t1] = rtype::OPT.to_be_bytes();
            let [s0, s1] = MAX_UDP_PAYLOAD.to_be_bytes();
            let dnssec_ok = if edns.dnssec_ok { 0x80 } else { 0 };
            let opt = [0, t0, t1, s0, s1, (code >> 4) as u8, 0, dnssec_ok, 0, 0, 0];
            self.out.extend_from_slice(&opt);
        }
        let qdcount = u16::from(req.question.is_some());
        let header = &mut self.out[..HEADER_LEN];
        header[0..2].copy_from_slice(&req.id.to_be_bytes());
        header[2..4].copy_from_slice(&f.to_be_bytes());
        header[4..6].copy_from_slice(&qdcount.to_be_bytes());
        header[6..8].copy_from_slice(&ancount.to_be_bytes());
        header[8..10].copy_from_slice(&nscount.to_be_bytes());
        let additional = arcount + u16::from(req.edns.is_some());
        header[10..12].copy_from_slice(&additional.to_be_bytes());
        Outcome::Reply { rcode, truncated }
    }
}
