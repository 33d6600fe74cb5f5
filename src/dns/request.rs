//! The one request path: a request's bytes, the client, the transport and the current
//! [`Rules`] -> what to do ([`Action`]). Every decision about a request is made here, once,
//! in one order: parse, TSIG, transfers, the answer, rate limiting. UDP ([`super::udp`]) and
//! TCP ([`super::tcp`]) only read and write bytes, say who sent them ([`Client::new`], here
//! too) and enforce their own limits, so they agree by construction.

use std::net::IpAddr;

use super::answer::{
    self, malformed, reply_to, size_limit, truncated, Outcome, Policy, Rcode, Transport,
};
use super::context::Context;
use super::index::{Lookup, ZoneIndex};
use super::ratelimit::{Kind, Verdict};
use super::rules::Rules;
use super::transfer;
use super::tsig::{self, Checked};
use super::update::PendingUpdate;
use super::wire::{self, ParseError, Request};
use crate::clock;
use crate::dname::{opcode, rtype};

/// What the transport is to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the reply now in `out`.
    Reply,
    /// Send these messages, in order (a zone transfer, a signed reply; over UDP at most one).
    Messages(Vec<Vec<u8>>),
    /// Have the upstreams resolve it ([`Context::forwarded`]); with `chain`, `out` holds our
    /// answer whose CNAME chain leaves our zones, for them to complete.
    Forward { chain: bool },
    /// Send nothing: not a request, or over the rate limit.
    Drop,
    /// An UPDATE signed with a key allowed to update: have the builder apply it
    /// ([`super::update::answer`]), then send the reply it gives.
    Update(Box<PendingUpdate>),
}

/// Who sent a request, and what it may have done for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    pub policy: Policy,
}

impl Client {
    /// The client at `ip` under `rules` and `zone` (its ACL entry, scope and home subnet).
    /// Transports work this out once per client and batch: the same few clients send most
    /// requests.
    pub fn new(rules: &Rules, zone: &ZoneIndex, ip: IpAddr) -> Client {
        let policy = Policy {
            scope: zone.scope_of(ip),
            home: zone.home(ip),
            asker: Some(answer::Asker {
                ip,
                view: rules.view,
            }),
            ..rules.policy(ip)
        };
        Client { ip, policy }
    }
}

/// Decides what `query` from `from` gets over `transport`, with `rules` and `zone` as the
/// caller loaded them (one load per batch of requests; `from` made with the same). A reply
/// is written into `out`. With dnstap on, the exchange is reported (forwarded ones when the
/// upstreams have answered).
// Inlined into the transports' loops: passed through memory, the client's address and the
// parsed request were read back right after being written, a store-forwarding stall each.
#[inline(always)]
pub fn handle(
    ctx: &Context,
    rules: &Rules,
    zone: &ZoneIndex,
    query: &[u8],
    from: &Client,
    transport: Transport,
    out: &mut Vec<u8>,
) -> Action {
    let client = from.ip;
    let action = decide(ctx, rules, zone, query, from, transport, out);
    if let Some(tap) = &ctx.tap {
        let response = match &action {
            Action::Reply => Some(out.as_slice()),
            // A signed reply; a zone transfer's messages are not reported.
            Action::Messages(m) if m.len() == 1 => Some(m[0].as_slice()),
            _ => None,
        };
        if let Some(response) = response {
            let tcp = transport == Transport::Tcp;
            tap.observe(
                false,
                client,
                None,
                tcp,
                std::time::SystemTime::now(),
                query,
                response,
            );
        }
    }
    action
}

#[inline(always)]
fn decide(
    ctx: &Context,
    rules: &Rules,
    zone: &ZoneIndex,
    query: &[u8],
    from: &Client,
    transport: Transport,
    out: &mut Vec<u8>,
) -> Action {
    out.clear();
    let (client, policy) = (from.ip, from.policy);
    let req = match wire::parse(query) {
        Ok(req) => req,
        Err(ParseError::Ignore) => return Action::Drop,
        Err(ParseError::FormErr) => {
            malformed(query, out);
            // Header only, no larger than the query: slipping it would change nothing.
            return match limit(ctx, rules, client, policy, transport, || (Kind::Error, 0)) {
                Verdict::Drop => Action::Drop,
                _ => Action::Reply,
            };
        }
    };
    if let Some(at) = req.tsig {
        return signed(ctx, rules, zone, &req, at, client, transport, policy, out);
    }
    if req.opcode == opcode::UPDATE {
        // Only signed updates are taken (RFC 2136 3.3 leaves the policy to the server).
        ctx.unsigned_update(client);
        reply_to(&req, Rcode::Refused, transport, false, out);
        return Action::Reply;
    }
    if req.opcode == opcode::NOTIFY && rules.follow.is_some() {
        notified(ctx, rules, &req, client, None, transport, out);
        return Action::Reply;
    }
    if is_transfer(&req) {
        if rules.transfer_allowed(client, None) {
            return transfer(ctx, zone, &req, client, None, transport);
        }
        if rules.transfer_listed(client) {
            // Its allow entry names a key: REFUSED below, as to anyone else.
            ctx.unsigned_transfer(client);
        }
    }
    match answer::answer(zone, &req, transport, policy, out) {
        Outcome::Reply { rcode, .. } => {
            let what = || class(rules, zone, &req, rcode, out);
            match limit(ctx, rules, client, policy, transport, what) {
                Verdict::Send => Action::Reply,
                Verdict::Slip => {
                    truncated(&req, rcode, ra(policy), out);
                    Action::Reply
                }
                Verdict::Drop => Action::Drop,
            }
        }
        outcome @ (Outcome::Forward | Outcome::ForwardChain) => {
            match limit(ctx, rules, client, policy, transport, || (Kind::Forward, 0)) {
                Verdict::Send => Action::Forward {
                    chain: outcome == Outcome::ForwardChain,
                },
                Verdict::Slip => {
                    truncated(&req, Rcode::NoError, ra(policy), out);
                    Action::Reply
                }
                Verdict::Drop => Action::Drop,
            }
        }
        // `answer` never hands TSIG back: it was dealt with above.
        Outcome::Drop | Outcome::Signed(_) => Action::Drop,
    }
}

/// A NOTIFY (RFC 1996) to a follower: from its primary's address (unsigned, or signed with
/// the `[follow]` key), acknowledged and handed to the follower, which checks the zone's SOA
/// itself (so an unsigned one can do no more than hasten that); from anyone else REFUSED.
fn notified(
    ctx: &Context,
    rules: &Rules,
    req: &Request<'_>,
    client: IpAddr,
    key: Option<&hickory_proto::rr::Name>,
    transport: Transport,
    out: &mut Vec<u8>,
) {
    let from_primary = (rules.follow.as_ref())
        .is_some_and(|f| f.primary == client && (key.is_none() || key == f.key.as_ref()));
    let question = req.question.as_ref().filter(|q| q.qtype == rtype::SOA);
    let rcode = match question {
        Some(q) if from_primary => {
            ctx.notified(q.name.lower().wire());
            Rcode::NoError
        }
        None if from_primary => Rcode::FormErr,
        _ => {
            ctx.notify_refused(client);
            Rcode::Refused
        }
    };
    reply_to(req, rcode, transport, false, out);
}

/// Whether the request asks for a zone transfer (AXFR or IXFR).
pub fn is_transfer(req: &Request<'_>) -> bool {
    req.opcode == opcode::QUERY
        && (req.question.as_ref()).is_some_and(|q| q.qtype == rtype::AXFR || q.qtype == rtype::IXFR)
}

/// RA: the client may have names resolved.
fn ra(policy: Policy) -> bool {
    policy.allowed && policy.forward
}

/// The class of the response in `out` and the name it is about, as rate limiting counts it:
/// answers and NODATA by the name and type asked, NXDOMAIN by the zone (so random names under
/// one zone share one bucket), referrals by the delegation, errors by the client alone. Only
/// worked out for clients that are limited (the lookup again costs a few hash probes).
fn class(
    rules: &Rules,
    zone: &ZoneIndex,
    req: &Request<'_>,
    rcode: Rcode,
    out: &[u8],
) -> (Kind, u64) {
    let Some(q) = req.question.as_ref() else {
        return (Kind::Error, 0);
    };
    let lowered = q.name.lower();
    let name = lowered.wire();
    let key = |n: &[u8], t: u16| rules.limiter.name_key(n, t);
    match rcode {
        Rcode::NoError if wire::answer_count(out) > 0 => (Kind::Answer, key(name, q.qtype)),
        Rcode::NoError => match zone.lookup(name) {
            Lookup::Referral(_, _, cut_len) => (
                Kind::Referral,
                key(&name[name.len().saturating_sub(cut_len)..], 0),
            ),
            _ => (Kind::NoData, key(name, q.qtype)),
        },
        Rcode::NxDomain => match zone.lookup(name) {
            Lookup::NxDomain(meta) => (
                Kind::NxDomain,
                key(&name[name.len().saturating_sub(meta.apex_len())..], 0),
            ),
            // At the end of a CNAME chain: the name asked.
            _ => (Kind::NxDomain, key(name, 0)),
        },
        _ => (Kind::Error, 0),
    }
}

/// The rate limiter's verdict on a UDP response (`what`: its class and name); TCP is never
/// limited (its source address cannot be spoofed).
fn limit(
    ctx: &Context,
    rules: &Rules,
    client: IpAddr,
    policy: Policy,
    transport: Transport,
    what: impl FnOnce() -> (Kind, u64),
) -> Verdict {
    match transport {
        Transport::Tcp => Verdict::Send,
        Transport::Udp => ctx.rate_check(rules, client, policy, what),
    }
}

/// A transfer for a client allowed to have it (signed with `key`, or unsigned).
fn transfer(
    ctx: &Context,
    zone: &ZoneIndex,
    req: &Request<'_>,
    client: IpAddr,
    key: Option<&hickory_proto::rr::Name>,
    transport: Transport,
) -> Action {
    let udp = (transport == Transport::Udp).then(|| size_limit(transport, req));
    let reply = transfer::reply(zone, req, udp);
    ctx.transferred(req, &reply, client, key);
    Action::Messages(reply.messages)
}

/// A request carrying TSIG (RFC 8945): checked against the keys, then answered as an unsigned
/// one would be, and every reply message signed. A failed check gets the NOTAUTH reply RFC
/// 8945 5.2 prescribes, logged once per source.
#[allow(clippy::too_many_arguments)] // one request's parts, named at the call site
fn signed(
    ctx: &Context,
    rules: &Rules,
    zone: &ZoneIndex,
    req: &Request<'_>,
    tsig_at: usize,
    client: IpAddr,
    transport: Transport,
    policy: Policy,
    out: &mut Vec<u8>,
) -> Action {
    // The public view knows only the keys its [[update]] tables name (BADKEY for others).
    let (key, unsigned, mut signer) =
        match tsig::check(&rules.keys, req.raw, tsig_at, clock::unix_now()) {
            Checked::Valid {
                key,
                unsigned,
                signer,
            } => (key, unsigned, signer),
            Checked::Failed { error, key, reply } => {
                let error = tsig::error_name(error);
                ctx.tsig_failure(client, &key, error);
                // TSIG errors (BADKEY to any stranger) are limited like other errors.
                return match limit(ctx, rules, client, policy, transport, || (Kind::Error, 0)) {
                    Verdict::Send => Action::Messages(vec![reply]),
                    Verdict::Slip => {
                        truncated(req, Rcode::NotAuth, false, out);
                        Action::Reply
                    }
                    Verdict::Drop => Action::Drop,
                };
            }
            Checked::Malformed => {
                reply_to(req, Rcode::FormErr, transport, false, out);
                return Action::Reply;
            }
        };
    // The request without its TSIG parses as the request did.
    let Ok(inner) = wire::parse(&unsigned) else {
        reply_to(req, Rcode::FormErr, transport, false, out);
        return Action::Reply;
    };
    let udp_limit = match transport {
        Transport::Udp => Some(size_limit(transport, &inner).saturating_sub(signer.overhead())),
        Transport::Tcp => None,
    };
    if inner.opcode == opcode::UPDATE && rules.may_update(&key) {
        return Action::Update(Box::new(PendingUpdate {
            message: inner.raw.to_vec(),
            key,
            view: rules.view,
            signer,
            transport,
        }));
    }
    let mut messages = if inner.opcode == opcode::UPDATE {
        ctx.update_key_not_allowed(client, &key);
        let mut m = Vec::new();
        reply_to(&inner, Rcode::Refused, transport, false, &mut m);
        vec![m]
    } else if inner.opcode == opcode::NOTIFY && rules.follow.is_some() {
        let mut m = Vec::new();
        notified(ctx, rules, &inner, client, Some(&key), transport, &mut m);
        vec![m]
    } else if is_transfer(&inner) {
        if rules.transfer_allowed(client, Some(&key)) {
            let reply = transfer::reply(zone, &inner, udp_limit);
            ctx.transferred(&inner, &reply, client, Some(&key));
            reply.messages
        } else {
            ctx.transfer_key_not_allowed(client, &key);
            let mut m = Vec::new();
            reply_to(&inner, Rcode::Refused, transport, false, &mut m);
            vec![m]
        }
    } else {
        let policy = Policy {
            // A secondary signing with its key may ask (its SOA checks) from anywhere its
            // allow entry holds; nothing is forwarded for a signed request.
            allowed: policy.allowed || rules.transfer_allowed(client, Some(&key)),
            forward: false,
            scope: policy.scope,
            home: policy.home,
            asker: policy.asker,
        };
        let mut m = Vec::new();
        match answer::answer(zone, &inner, transport, policy, &mut m) {
            Outcome::Reply { .. } => vec![m],
            _ => Vec::new(),
        }
    };
    for m in &mut messages {
        if udp_limit.is_some_and(|limit| m.len() > limit) {
            // No room for the signature: the question alone, TC set (the client retries
            // over TCP).
            truncated(&inner, Rcode::NoError, false, m);
        }
        signer.sign(m);
    }
    Action::Messages(messages)
}
