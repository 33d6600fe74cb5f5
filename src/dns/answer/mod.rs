//! Where a query is answered: request bytes + the current zone -> response bytes.
//!
//! The response is written straight into a reused buffer: the client's question copied as sent
//! (so its case is echoed), pre-encoded RRsets copied behind it, owner names compressed to the
//! question. Nothing here allocates once the buffer has grown.

mod whoami;
mod writer;

use writer::{Targets, Writer, MAX_POINTER};

use super::index::{Lookup, RrSet, Visibility, ZoneIndex, ZoneMeta};
use super::wire::{self, lowercase_into, ParseError, Request};
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
    /// A name that would exist is too long (RFC 6672 2.2: a DNAME's substitution overflows).
    YxDomain = 6,
    /// RFC 2136 prerequisites: an RRset that should not exist does, or one that should does not.
    YxRrSet = 7,
    NxRrSet = 8,
    /// Not authoritative for the zone (RFC 2136; RFC 5936 2.2.1 for transfers).
    NotAuth = 9,
    /// A name outside the zone of an UPDATE (RFC 2136).
    NotZone = 10,
    BadVers = 16,
}

impl Rcode {
    /// The RCODE of a number (an UPDATE's outcome); one we never send is SERVFAIL.
    pub fn from_u16(code: u16) -> Rcode {
        match code {
            0 => Rcode::NoError,
            1 => Rcode::FormErr,
            3 => Rcode::NxDomain,
            4 => Rcode::NotImp,
            5 => Rcode::Refused,
            6 => Rcode::YxDomain,
            7 => Rcode::YxRrSet,
            8 => Rcode::NxRrSet,
            9 => Rcode::NotAuth,
            10 => Rcode::NotZone,
            16 => Rcode::BadVers,
            _ => Rcode::ServFail,
        }
    }
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
    /// The request carries TSIG: [`super::request`] checks it, answers and signs. `out` is
    /// empty.
    Signed(usize),
}

/// What this client may have done for it. The default: nothing (REFUSED), no scope, no
/// subnet, no `_whoami`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Inside the listening interfaces' subnets or `allow`; otherwise everything is REFUSED.
    pub allowed: bool,
    /// Forwarding is configured: other names are resolved instead of REFUSED.
    pub forward: bool,
    /// The client's `[[scope]]`, if it is in one: the names that scope hides do not exist.
    pub scope: Option<u8>,
    /// The client's own network subnet: a name's addresses in it come first.
    pub home: Option<ipnet::IpNet>,
    /// Who asks, for `_whoami.<zone>` (`None`: not answered, as for any other name).
    pub asker: Option<Asker>,
}

/// The client as `_whoami` tells it: its address and the view it asks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asker {
    pub ip: std::net::IpAddr,
    pub view: crate::view::View,
}

/// Answers one request given as bytes (parses it, then [`answer`]); a request carrying TSIG
/// is handed back as [`Outcome::Signed`]. For callers outside the request pipeline
/// ([`super::request`]): benchmarks and the secondaries' own checks.
pub fn respond(
    zone: &ZoneIndex,
    query: &[u8],
    transport: Transport,
    policy: Policy,
    out: &mut Vec<u8>,
) -> Outcome {
    out.clear();
    match wire::parse(query) {
        Ok(req) if req.tsig.is_some() => Outcome::Signed(req.tsig.unwrap_or_default()),
        Ok(req) => answer(zone, &req, transport, policy, out),
        Err(ParseError::Ignore) => Outcome::Drop,
        Err(ParseError::FormErr) => format_error(query, out),
    }
}

/// Answers one parsed request (its TSIG, if any, already checked and stripped). On
/// `Outcome::Reply`, `out` holds the whole response message. A client that is not allowed
/// gets REFUSED for everything, and is never forwarded for.
pub fn answer(
    zone: &ZoneIndex,
    req: &Request<'_>,
    transport: Transport,
    policy: Policy,
    out: &mut Vec<u8>,
) -> Outcome {
    out.clear();
    let limit = size_limit(transport, req);
    let mut w = Writer::start(out, req, policy.allowed && policy.forward);
    w.scope = policy.scope;
    w.home = policy.home;
    let rcode = if !policy.allowed {
        Rcode::Refused
    } else {
        let told = policy
            .asker
            .and_then(|asker| whoami::answer(zone, req, asker, &mut w));
        match told.map_or_else(|| decide(zone, req, &mut w), Decision::Answer) {
            // Recursion only for those who ask for it (RD), as a resolver would.
            Decision::NotOurs if policy.forward && req.flags & flags::RD != 0 => {
                return Outcome::Forward
            }
            Decision::NotOurs => Rcode::Refused,
            Decision::LeavesZones => {
                let done = w.finish(req, Rcode::NoError, limit);
                let resolve = policy.forward && req.flags & flags::RD != 0;
                return match done {
                    Outcome::Reply {
                        truncated: false, ..
                    } if resolve => Outcome::ForwardChain,
                    other => other,
                };
            }
            Decision::Referral if policy.forward && req.flags & flags::RD != 0 => {
                return Outcome::Forward
            }
            Decision::Referral => Rcode::NoError,
            Decision::Answer(rcode) => rcode,
        }
    };
    w.finish(req, rcode, limit)
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
        Ok(req) => reply_to(&req, rcode, transport, recursion_available, out),
        Err(ParseError::Ignore) => Outcome::Drop,
        Err(ParseError::FormErr) => format_error(query, out),
    }
}

/// [`reply_with`] for a parsed request.
pub fn reply_to(
    req: &Request<'_>,
    rcode: Rcode,
    transport: Transport,
    recursion_available: bool,
    out: &mut Vec<u8>,
) -> Outcome {
    out.clear();
    let limit = size_limit(transport, req);
    Writer::start(out, req, recursion_available).finish(req, rcode, limit)
}

/// The empty, truncated form of a response (TC=1, the question and `rcode` only), which rate
/// limiting sends instead of some responses, and a signed reply with no room for its
/// signature: a real client retries over TCP.
pub fn truncated(req: &Request<'_>, rcode: Rcode, recursion_available: bool, out: &mut Vec<u8>) {
    out.clear();
    // A limit of 0 bytes: nothing fits, so the sections are cut and TC is set.
    Writer::start(out, req, recursion_available).finish(req, rcode, 0);
}

/// FORMERR for a request that does not parse, header only (see [`format_error`]). The
/// request is at least a header long ([`wire::parse`] ignores shorter ones).
pub fn malformed(query: &[u8], out: &mut Vec<u8>) {
    out.clear();
    format_error(query, out);
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

/// The largest response the client takes over this transport: over UDP its EDNS size within
/// bounds, 512 without EDNS.
pub fn size_limit(transport: Transport, req: &Request<'_>) -> usize {
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
    /// The name is delegated: the referral is written (NS in authority, glue).
    Referral,
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
    answer_name(zone, q.name.raw(), q.qtype, w)
}

/// Longest CNAME chain followed inside our zones (BIND uses 16; real chains are 1 or 2 long).
const MAX_CHAIN: usize = 8;

/// Answers `qtype` at `qname`, following CNAMEs while they stay inside our zones (RFC 1034
/// 4.3.2): each CNAME goes into the answer and the chase goes on at its target, whose records
/// are written with the CNAME's RDATA as their (compressed) owner. The RCODE is that of the
/// last name of the chain (RFC 6604): a CNAME to a missing in-zone name is NXDOMAIN.
/// `qname` is in the client's case: it is lowercased here, where it is copied anyway.
fn answer_name(zone: &ZoneIndex, qname: &[u8], qtype: u16, w: &mut Writer<'_>) -> Decision {
    let mut name = [0u8; MAX_NAME];
    let mut len = qname.len();
    lowercase_into(&mut name, qname);
    // Where the current name sits in the response: the question, then each CNAME's RDATA.
    let mut owner_at = HEADER_LEN;
    // The CNAME nodes followed so far: a loop stops at its first repeat, so each RR is in
    // the answer once (as NSD and Knot answer).
    let mut followed = [std::ptr::null::<u8>(); MAX_CHAIN + 1];
    for hop in 0..=MAX_CHAIN {
        let found = zone.lookup(&name[..len]);
        if found.meta().is_some_and(|m| m.expired) {
            return w.server_failure().into();
        }
        let found = match found {
            Lookup::NotOurs if hop == 0 => return Decision::NotOurs,
            // DS lives at the parent side of a cut (RFC 4035 2.4): ours to answer.
            // A delegation or a DNAME the client's scope hides does not exist, nor what is
            // below it.
            Lookup::Referral(node, meta, _) | Lookup::Redirect(node, meta, _)
                if zone.visibility(&node, w.scope) != Visibility::Visible =>
            {
                return missing(w, meta, hop, owner_at, len);
            }
            Lookup::Referral(cut, meta, cut_len)
                if hop == 0 && cut_len == len && qtype == rtype::DS =>
            {
                (cut, meta)
            }
            // Delegated to other servers: a referral (AA clear, RFC 1034 4.3.2), or, for a
            // client that may have names resolved, resolution through them.
            Lookup::Referral(cut, meta, cut_len) if hop == 0 => {
                if let Some(ns) = cut.rrset(rtype::NS) {
                    let start = w.authority(&ns, owner_at + len - cut_len);
                    w.target_addresses(zone, meta, &ns, start, 0);
                }
                return Decision::Referral;
            }
            // A CNAME into a delegated name leaves what we answer for: the chain, then the
            // delegation's NS set and glue, as NSD and Knot answer it (a resolver follows the
            // referral from there).
            Lookup::Referral(cut, meta, cut_len) => {
                if let Some(ns) = cut.rrset(rtype::NS) {
                    let start = w.authority(&ns, owner_at + len - cut_len);
                    w.target_addresses(zone, meta, &ns, start, 0);
                }
                return Decision::LeavesZones;
            }
            // Below a DNAME (RFC 6672 3.1): the DNAME, the CNAME it stands for, and the chase
            // goes on at that CNAME's target.
            Lookup::Redirect(node, _, owner_len) => {
                w.authoritative |= hop == 0;
                let id = node.prefix.as_ptr();
                let Some(dname) = node
                    .rrset(rtype::DNAME)
                    .filter(|_| !followed[..hop].contains(&id))
                else {
                    return Rcode::NoError.into();
                };
                followed[hop] = id;
                let start = w.answer(&dname, owner_at + len - owner_len);
                // One record (a second DNAME at a name is refused when files are read):
                // `owner(2) TYPE CLASS TTL RDLENGTH(10) target`.
                let (Some(ttl), Some(target)) = (dname.wire.get(6..10), dname.wire.get(12..))
                else {
                    return Rcode::NoError.into();
                };
                let prefix_len = len - owner_len;
                if prefix_len + target.len() > MAX_NAME {
                    return Rcode::YxDomain.into();
                }
                let ttl = [ttl[0], ttl[1], ttl[2], ttl[3]];
                let cname_at = w.synthesized_cname(owner_at, prefix_len, ttl, target);
                if qtype == rtype::CNAME {
                    return Rcode::NoError.into();
                }
                owner_at = cname_at + 12;
                if owner_at > MAX_POINTER || start > MAX_POINTER {
                    return Rcode::NoError.into();
                }
                lowercase_into(&mut name[prefix_len..], target);
                len = prefix_len + target.len();
                continue;
            }
            // The chain leaves our zones: the forwarder may complete it, else the client's
            // resolver follows it from here.
            Lookup::NotOurs => return Decision::LeavesZones,
            Lookup::NxDomain(meta) => return missing(w, meta, hop, owner_at, len),
            Lookup::Found(node, meta) => (node, meta),
        };
        let (node, meta) = found;
        match zone.visibility(&node, w.scope) {
            Visibility::Visible => {}
            // A name hidden from the client's scope is answered as one that never existed;
            // so is a name only a hidden wildcard would stand in for.
            Visibility::Gone => return missing(w, meta, hop, owner_at, len),
            Visibility::NoData if is_wildcard(node.prefix) && !is_wildcard(&name[..len]) => {
                return missing(w, meta, hop, owner_at, len)
            }
            Visibility::NoData => {
                w.authoritative |= hop == 0;
                if !meta.complete {
                    return w.server_failure().into();
                }
                w.negative_soa(owner_at, len, meta.apex_len(), &meta.negative_soa);
                return Rcode::NoError.into();
            }
        }
        w.authoritative |= hop == 0;
        if node.is_live() {
            let table = zone.live();
            if let Some(live) = table.get(&name[..len]) {
                let mut answered = false;
                let mut targets = Targets::default();
                let hides = w.scope.is_some_and(|s| zone.scopes().hides_addresses(s));
                for (first, second) in live.answer_sets(qtype, rtype::ANY) {
                    let addresses = matches!(first.rtype, rtype::A | rtype::AAAA);
                    if hides || (w.home.is_some() && addresses) {
                        // Without the members the client's scope hides; those in the client's
                        // subnet first, each part in the order of rotation.
                        let (scope, rtype, home) = (w.scope, first.rtype, w.home);
                        for near in [true, false] {
                            let keep = |rdata: &[u8]| {
                                visible_member(zone, scope, rtype, rdata)
                                    && (!addresses || in_home(home, rdata) == near)
                            };
                            let (_, a) = w.answer_some(&first, owner_at, keep);
                            let (_, b) = w.answer_some(&second, owner_at, keep);
                            answered |= a + b > 0;
                            if !addresses {
                                break;
                            }
                        }
                        continue;
                    }
                    let start = w.answer(&first, owner_at);
                    if second.count > 0 {
                        w.answer(&second, owner_at);
                    }
                    answered = true;
                    targets.note(first, start);
                }
                targets.write(w, zone, meta);
                if !answered {
                    w.negative_soa(owner_at, len, meta.apex_len(), &meta.negative_soa);
                }
                return Rcode::NoError.into();
            }
        }
        let mut answered = false;
        let mut targets = Targets::default();
        // ANY: one RRset (RFC 8482 4.1, as NSD answers it), a small and common one.
        let any = (qtype == rtype::ANY)
            .then(|| any_choice(|| node.rrsets()))
            .flatten();
        for set in node.rrsets() {
            if set.rtype == qtype || any == Some(set.rtype) {
                let start = w.answer(&set, owner_at);
                answered = true;
                targets.note(set, start);
            }
        }
        targets.write(w, zone, meta);
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
            lowercase_into(&mut name, target);
            continue;
        }
        if !meta.complete {
            return w.server_failure().into();
        }
        // NODATA (RFC 2308 2.2): NOERROR, empty answer, SOA in authority.
        w.negative_soa(owner_at, len, meta.apex_len(), &meta.negative_soa);
        return Rcode::NoError.into();
    }
    // A chain this long is a loop or a mistake: what was found so far is the answer.
    Rcode::NoError.into()
}

/// NXDOMAIN for the name at `owner_at` (`len` bytes): the zone's SOA in authority; SERVFAIL
/// while the zone has not synced (it cannot vouch for a miss yet).
fn missing(
    w: &mut Writer<'_>,
    meta: &ZoneMeta,
    hop: usize,
    owner_at: usize,
    len: usize,
) -> Decision {
    if !meta.complete {
        return w.server_failure().into();
    }
    w.authoritative |= hop == 0;
    w.negative_soa(owner_at, len, meta.apex_len(), &meta.negative_soa);
    Rcode::NxDomain.into()
}

/// Whether the address of an A or AAAA record's RDATA lies in `home` (false without one).
pub(super) fn in_home(home: Option<ipnet::IpNet>, rdata: &[u8]) -> bool {
    let ip: Option<std::net::IpAddr> = match rdata.len() {
        4 => <[u8; 4]>::try_from(rdata).ok().map(Into::into),
        16 => <[u8; 16]>::try_from(rdata).ok().map(Into::into),
        _ => None,
    };
    home.zip(ip).is_some_and(|(net, ip)| net.contains(&ip))
}

/// Whether a wire name's first label is `*`.
fn is_wildcard(name: &[u8]) -> bool {
    name.starts_with(b"\x01*")
}

/// Whether a record of a service's answer stays for `scope`: an address of a member the scope
/// does not hide, an SRV whose target it sees.
fn visible_member(zone: &ZoneIndex, scope: Option<u8>, rtype: u16, rdata: &[u8]) -> bool {
    let Some(scope) = scope else {
        return true;
    };
    let ip: Option<std::net::IpAddr> = match rtype {
        rtype::A => <[u8; 4]>::try_from(rdata).ok().map(Into::into),
        rtype::AAAA => <[u8; 16]>::try_from(rdata).ok().map(Into::into),
        rtype::SRV => {
            let mut target = [0u8; MAX_NAME];
            let name = rdata.get(6..).unwrap_or_default();
            let len = name.len().min(MAX_NAME);
            lowercase_into(&mut target, &name[..len]);
            return match zone.lookup(&target[..len]) {
                Lookup::Found(node, _) => {
                    zone.visibility(&node, Some(scope)) == Visibility::Visible
                }
                _ => true,
            };
        }
        _ => None,
    };
    ip.is_none_or(|ip| !zone.scopes().address_hidden(ip, scope))
}

/// The one RRset type an ANY query is answered with (RFC 8482 4.1): the first of SOA, A,
/// AAAA, MX, PTR the name has, else its first other type (CNAME aside: a CNAME is the answer
/// to everything), else none.
fn any_choice<'a, I: Iterator<Item = RrSet<'a>>>(sets: impl Fn() -> I) -> Option<u16> {
    const PREFERRED: [u16; 5] = [rtype::SOA, rtype::A, rtype::AAAA, rtype::MX, rtype::PTR];
    let has = |t: u16| sets().any(|s| s.rtype == t);
    PREFERRED
        .into_iter()
        .find(|t| has(*t))
        .or_else(|| sets().map(|s| s.rtype).find(|t| *t != rtype::CNAME))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Soa;
    use crate::records::{self, FileRecords};
    use crate::zone::{self, SerialBook, Settings};
    use hickory_proto::op::Message;
    use hickory_proto::rr::Name;

    /// The backhaul zone holding just the records of `text` (a records file).
    fn index(text: &str) -> ZoneIndex {
        let domain = Name::from_ascii("backhaul.").unwrap();
        let settings = Settings {
            ttl: 60,
            negative_ttl: 30,
            nameserver: domain.clone(),
            nameserver_addresses: Vec::new(),
            soa: Soa::default(),
            services: Vec::new(),
            scopes: Vec::new(),
            catalog: None,
        };
        let parsed = records::parse(text, &domain, &[], 60).unwrap();
        let files = FileRecords {
            private: parsed.into_iter().map(|r| r.record).collect(),
            public: None,
            included: Vec::new(),
            delegations: Vec::new(),
        };
        let mut zones = zone::build(&[], &settings, &files, &Default::default());
        SerialBook::default().stamp(&mut zones, 1, &settings);
        ZoneIndex::compile(&zones)
    }

    fn ask(zone: &ZoneIndex, name: &str, qtype: u16, transport: Transport) -> Message {
        let mut q = vec![0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.trim_end_matches('.').split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0]);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        let policy = Policy {
            allowed: true,
            ..Policy::default()
        };
        let mut out = Vec::new();
        respond(zone, &q, transport, policy, &mut out);
        Message::from_vec(&out).unwrap()
    }

    #[test]
    fn target_addresses_are_dropped_before_the_answer_is_truncated() {
        let mut text = String::from("@ MX 10 big\n@ MX 20 big\n");
        for i in 1..=60 {
            text.push_str(&format!("big AAAA fd00::{i:x}\n"));
        }
        let zone = index(&text);
        // Over UDP without EDNS (512 bytes) the MX fit, the 60 addresses do not: dropped, and
        // the answer is whole, not truncated.
        let m = ask(&zone, "backhaul.", rtype::MX, Transport::Udp);
        assert_eq!(m.answers.len(), 2);
        assert!(m.additionals.is_empty() && !m.metadata.truncation);
        // Over TCP everything fits: the target's addresses, once for its two MX.
        let m = ask(&zone, "backhaul.", rtype::MX, Transport::Tcp);
        assert_eq!((m.answers.len(), m.additionals.len()), (2, 60));
        assert!(m
            .additionals
            .iter()
            .all(|r| r.name.to_ascii() == "big.backhaul."));
    }

    #[test]
    fn below_a_dname_the_dname_its_cname_and_the_chase() {
        let far = [
            "x".repeat(60),
            "y".repeat(60),
            "z".repeat(60),
            "w".repeat(50),
        ]
        .join(".");
        let zone = index(&format!(
            "old DNAME new\na.new A 10.0.0.1\nlong DNAME {far}.\n"
        ));
        let m = ask(&zone, "a.old.backhaul.", rtype::A, Transport::Udp);
        let got: Vec<(String, u16)> = (m.answers.iter())
            .map(|r| (r.name.to_ascii(), u16::from(r.record_type())))
            .collect();
        assert_eq!(
            got,
            [
                ("old.backhaul.".to_owned(), rtype::DNAME),
                ("a.old.backhaul.".to_owned(), rtype::CNAME),
                ("a.new.backhaul.".to_owned(), rtype::A),
            ]
        );
        assert!(m.metadata.authoritative);
        // The CNAME asked for: the DNAME and the CNAME, no chase.
        let m = ask(&zone, "a.old.backhaul.", rtype::CNAME, Transport::Udp);
        assert_eq!(m.answers.len(), 2);
        // At the DNAME's own name it is an ordinary name.
        let m = ask(&zone, "old.backhaul.", rtype::A, Transport::Udp);
        assert!(
            m.answers.is_empty()
                && m.metadata.response_code == hickory_proto::op::ResponseCode::NoError
        );
        // A substitution past 255 bytes: YXDOMAIN, with the DNAME.
        let long = format!("{}.long.backhaul.", "q".repeat(60));
        let m = ask(&zone, &long, rtype::A, Transport::Tcp);
        assert_eq!(
            m.metadata.response_code,
            hickory_proto::op::ResponseCode::YXDomain
        );
        assert_eq!(m.answers.len(), 1);
    }
}
