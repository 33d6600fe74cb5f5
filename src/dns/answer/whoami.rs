//! `_whoami.<zone>` TXT: what the server knows of the asking client (its address, the member
//! it is, its scope and view), so that a client can check its setup from the client side.
//! Answered with TTL 0 (it differs per client) to allowed clients only, like every name.

use super::writer::Writer;
use super::{Asker, Rcode};
use crate::dname::{class, rtype, wire_to_text, HEADER_LEN};
use crate::dns::index::ZoneIndex;
use crate::dns::wire::{Question, Request};

const LABEL: &[u8] = b"_whoami";

/// The answer when the question is `_whoami.<apex of one of our zones>`: TXT for TXT and
/// ANY, NODATA for other types. `None` for every other name.
#[inline]
pub(super) fn answer(
    zone: &ZoneIndex,
    req: &Request<'_>,
    asker: Asker,
    w: &mut Writer<'_>,
) -> Option<Rcode> {
    let q = req.question.as_ref()?;
    let first = usize::from(*q.name.raw().first()?);
    if !q.name.raw().get(1..=first)?.eq_ignore_ascii_case(LABEL) {
        return None;
    }
    told(zone, q, first, asker, w)
}

/// [`answer`] for a question `q` that is `_whoami.` something (`first`: that label's
/// length): kept out of line, so that every other query pays only for the label comparison.
#[inline(never)]
fn told(
    zone: &ZoneIndex,
    q: &Question<'_>,
    first: usize,
    asker: Asker,
    w: &mut Writer<'_>,
) -> Option<Rcode> {
    let lowered = q.name.lower();
    let name = lowered.wire();
    let (_, _, meta) = zone.zone_at_apex(&name[1 + first..])?;
    w.authoritative = true;
    if q.qtype != rtype::TXT && q.qtype != rtype::ANY {
        w.negative_soa(HEADER_LEN, name.len(), meta.apex_len(), &meta.negative_soa);
        return Some(Rcode::NoError);
    }
    let scopes = zone.scopes();
    let mut strings = vec![format!("address={}", asker.ip)];
    match scopes.member_of(asker.ip) {
        Some((member, node)) => {
            let text = wire_to_text(member);
            strings.push(format!("member={}", text.trim_end_matches('.')));
            strings.push(format!("node={node}"));
        }
        None => strings.push("member=none (not a member's address)".to_owned()),
    }
    let mut scope = String::from("scope=");
    match zone.scope_of(asker.ip) {
        Some(s) => scope.push_str(scopes.names.get(usize::from(s)).map_or("?", String::as_str)),
        None if scopes.is_empty() => scope.push_str("none (no scopes)"),
        None => scope.push_str("none (sees every name)"),
    }
    strings.push(scope);
    strings.push(format!("view={}", asker.view.name()));
    let mut rdata = Vec::new();
    for s in &strings {
        let bytes = &s.as_bytes()[..s.len().min(255)];
        rdata.push(bytes.len() as u8);
        rdata.extend_from_slice(bytes);
    }
    let mut record = vec![0xc0, 0x0c];
    record.extend_from_slice(&rtype::TXT.to_be_bytes());
    record.extend_from_slice(&class::IN.to_be_bytes());
    record.extend_from_slice(&0u32.to_be_bytes());
    record.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    record.extend_from_slice(&rdata);
    w.answer(
        &crate::dns::index::RrSet {
            rtype: rtype::TXT,
            count: 1,
            wire: &record,
        },
        HEADER_LEN,
    );
    Some(Rcode::NoError)
}
