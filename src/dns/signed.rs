//! Requests that carry a TSIG record (RFC 8945): checked against `[[transfer.key]]`, then
//! answered by the same code as unsigned ones (queries by [`super::answer`], transfers by
//! [`super::transfer`]), every reply message signed. A failed check gets the NOTAUTH reply
//! RFC 8945 5.2 prescribes, logged once per source.

use std::net::IpAddr;

use super::answer::{reply_with, respond, udp_reply_size, Outcome, Rcode, Transport};
use super::context::Context;
use super::index::ZoneIndex;
use super::transfer;
use super::tsig::{self, Checked};
use crate::clock;

/// The reply messages to the signed request `query` (its TSIG record at `tsig_at`), in order:
/// one, or the messages of a zone transfer.
pub fn replies(
    ctx: &Context,
    zone: &ZoneIndex,
    query: &[u8],
    tsig_at: usize,
    transport: Transport,
    client: IpAddr,
) -> Vec<Vec<u8>> {
    let transfers = ctx.transfer.load();
    // The public view knows no keys: every key is unknown there (BADKEY).
    let empty = tsig::Keyring::default();
    let keys = match ctx.view {
        crate::view::View::Backhaul => &transfers.keys,
        crate::view::View::Public => &empty,
    };
    let (key, unsigned, mut signer) = match tsig::check(keys, query, tsig_at, clock::unix_now()) {
        Checked::Valid {
            key,
            unsigned,
            signer,
        } => (key, unsigned, signer),
        Checked::Failed { error, key, reply } => {
            let error = tsig::error_name(error);
            ctx.telemetry.tsig_failure(error);
            if ctx.tsig_reported.first(client, error) {
                tracing::warn!(%client, key = %key, error,
                    "refused a signed request: {}", advice(error));
            }
            return vec![reply];
        }
        Checked::Malformed => {
            let mut out = Vec::new();
            return match reply_with(query, Rcode::FormErr, transport, false, &mut out) {
                Outcome::Drop => Vec::new(),
                _ => vec![out],
            };
        }
    };
    let udp_limit = match transport {
        Transport::Udp => Some(udp_reply_size(&unsigned).saturating_sub(signer.overhead())),
        Transport::Tcp => None,
    };
    let mut messages = if transfer::is_transfer(&unsigned) {
        if ctx.transfer_allowed(client, Some(&key)) {
            let reply = transfer::reply(zone, &unsigned, udp_limit);
            ctx.transferred(&unsigned, &reply, client, Some(&key));
            reply.messages
        } else {
            if ctx.tsig_reported.first(client, "key not allowed") {
                tracing::warn!(%client, key = %key,
                    "refused a transfer signed with a key no [transfer] allow entry for this address names");
            }
            refused(&unsigned, transport)
        }
    } else {
        let policy = ctx.policy(client);
        let policy = crate::dns::answer::Policy {
            // A secondary signing with its key may ask (its SOA checks) from anywhere its
            // allow entry holds; nothing is forwarded for a signed request.
            allowed: policy.allowed || ctx.transfer_allowed(client, Some(&key)),
            forward: false,
        };
        let mut out = Vec::new();
        match respond(zone, &unsigned, transport, policy, &mut out) {
            Outcome::Drop => Vec::new(),
            Outcome::Reply { .. } => vec![out],
            _ => refused(&unsigned, transport),
        }
    };
    for m in &mut messages {
        if udp_limit.is_some_and(|limit| m.len() > limit) {
            // No room for the signature: the question alone, TC set (the client retries
            // over TCP).
            let mut t = Vec::new();
            if let Outcome::Reply { .. } =
                reply_with(&unsigned, Rcode::NoError, transport, false, &mut t)
            {
                t[2] |= 0x02;
                *m = t;
            }
        }
        signer.sign(m);
    }
    messages
}

fn refused(query: &[u8], transport: Transport) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    match reply_with(query, Rcode::Refused, transport, false, &mut out) {
        Outcome::Drop => Vec::new(),
        _ => vec![out],
    }
}

/// What an operator should look at for each TSIG error.
fn advice(error: &str) -> &'static str {
    match error {
        "BADKEY" => "the client's key name or algorithm is not one of [[transfer.key]]",
        "BADSIG" => "the client's secret for this key differs from the key's secret_file",
        "BADTIME" => "the client's clock is off by more than 300 s (check NTP on both sides)",
        _ => "truncated MACs are not accepted",
    }
}
