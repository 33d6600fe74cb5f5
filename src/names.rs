//! Where a member becomes a name: member name text -> DNS labels, and the collision rule.
//!
//! Pure functions; the rules are DESIGN.md "Names".

use std::cmp::Ordering;

use hickory_proto::rr::Name;

use crate::zerotier::{Member, NodeId};

/// The name every member gets, unique by construction: `zt-<nodeId>` under `domain` (wire
/// form), put together as bytes: no name parsing per member. The config
/// refuses domains too long for it.
pub fn zt_wire(node: NodeId, domain: &[u8]) -> Vec<u8> {
    let mut w = Vec::with_capacity(14 + domain.len());
    w.extend_from_slice(b"\x0dzt-");
    const HEX: &[u8; 16] = b"0123456789abcdef";
    w.extend(
        (0..10)
            .rev()
            .map(|i| HEX[(node.0 >> (4 * i) & 0xf) as usize]),
    );
    w.extend_from_slice(domain);
    w
}

/// Max bytes in one DNS label (RFC 1035 2.3.4).
const MAX_LABEL: usize = 63;
/// Max bytes in a name in wire form (RFC 1035 2.3.4).
const MAX_NAME: usize = 255;

/// Appends one label made of `part`, length byte first: lowercase; whitespace and `_` become
/// `-`; anything outside `[a-z0-9-]` is dropped; runs of `-` collapse; no leading or trailing
/// `-`; at most 63 bytes. Appends nothing if nothing is left.
fn push_label(out: &mut Vec<u8>, part: &str) {
    let start = out.len();
    out.push(0);
    for c in part.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_whitespace() || c == '_' {
            '-'
        } else {
            c
        };
        match c {
            'a'..='z' | '0'..='9' => out.push(c as u8),
            '-' if out.len() > start + 1 && out.last() != Some(&b'-') => out.push(b'-'),
            _ => {}
        }
    }
    out.truncate(start + 1 + MAX_LABEL);
    while out.len() > start + 1 && out.last() == Some(&b'-') {
        out.pop();
    }
    match out.len() - start - 1 {
        0 => out.truncate(start),
        len => out[start] = len as u8,
    }
}

/// The name a member asks for, as a full name under `domain`, in lowercase wire form (what the
/// zone build compares and stores); `None` if nothing usable is left. `domain` is the
/// lowercase wire form of the network's domain. The rules are [`member_name`]'s.
pub fn member_wire(raw: &str, domain: &[u8]) -> Option<Vec<u8>> {
    let mut wire = Vec::with_capacity(raw.len() + domain.len() + 2);
    for part in raw.split('.') {
        push_label(&mut wire, part);
    }
    // A name that already ends in the domain is not doubled: cut at the label where the
    // domain starts (label bytes can look like length bytes, so only label starts count).
    let domain_labels = &domain[..domain.len() - 1];
    let mut at = 0;
    while at < wire.len() {
        if wire[at..] == *domain_labels {
            wire.truncate(at);
            break;
        }
        at += 1 + usize::from(wire[at]);
    }
    if wire.is_empty() || wire.len() + domain.len() > MAX_NAME {
        return None;
    }
    wire.extend_from_slice(domain);
    Some(wire)
}

/// The name a member asks for, as a full name under `domain`; `None` if nothing usable is left.
///
/// Dots split labels (`web.prod` -> `web.prod.<domain>`), and a name that already ends in the
/// domain is not doubled (`db.backhaul` -> `db.backhaul.`). Each label is lowercased; spaces
/// and `_` become `-`; other characters outside `[a-z0-9-]` are dropped; at most 63 bytes.
///
/// ```
/// use backhaul_dns::names::member_name;
/// use hickory_proto::rr::Name;
///
/// let domain = Name::from_ascii("backhaul.").unwrap();
/// let name = |raw| member_name(raw, &domain).map(|n| n.to_ascii());
/// assert_eq!(name("Joe Sixpack's iMac").as_deref(), Some("joe-sixpacks-imac.backhaul."));
/// assert_eq!(name("web.prod").as_deref(), Some("web.prod.backhaul."));
/// assert_eq!(name("db.backhaul").as_deref(), Some("db.backhaul."));
/// assert_eq!(name("☕"), None);
/// ```
pub fn member_name(raw: &str, domain: &Name) -> Option<Name> {
    member_wire(raw, &crate::dns::wire::name_wire(domain)).map(|w| crate::dns::wire::wire_name(&w))
}

/// Collision rule for two members that want the same name: oldest `creationTime` wins, then the
/// lowest node id. A member with an unknown creation time sorts after every known one.
pub fn precedence(a: &Member, b: &Member) -> Ordering {
    let key = |m: &Member| (m.creation_time.unwrap_or(i64::MAX), m.node);
    key(a).cmp(&key(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> Option<String> {
        member_name(raw, &Name::from_ascii("backhaul.").unwrap()).map(|n| n.to_ascii())
    }

    #[test]
    fn zt_wire_is_the_zt_name() {
        for (node, domain) in [
            (0xa45dc9d260u64, "backhaul."),
            (0, "a.b.example."),
            (0xffffffffff, "x."),
        ] {
            let domain = Name::from_ascii(domain).unwrap();
            let want = Name::from_ascii(format!("zt-{}.{domain}", NodeId(node))).unwrap();
            assert_eq!(
                zt_wire(NodeId(node), &crate::dns::wire::name_wire(&domain)),
                crate::dns::wire::name_wire(&want)
            );
        }
    }

    #[test]
    fn naming_rules() {
        assert_eq!(name("db").as_deref(), Some("db.backhaul."));
        assert_eq!(name("DB").as_deref(), Some("db.backhaul."));
        assert_eq!(
            name("Joe Sixpack's iMac").as_deref(),
            Some("joe-sixpacks-imac.backhaul.")
        );
        assert_eq!(
            name("my-chain_bootstrap").as_deref(),
            Some("my-chain-bootstrap.backhaul.")
        );
        assert_eq!(
            name("  lots   of\tspace ").as_deref(),
            Some("lots-of-space.backhaul.")
        );
        assert_eq!(name("--a--b--").as_deref(), Some("a-b.backhaul."));
        assert_eq!(name("web.prod").as_deref(), Some("web.prod.backhaul."));
        assert_eq!(name("db.backhaul").as_deref(), Some("db.backhaul."));
        assert_eq!(name("db.Backhaul.").as_deref(), Some("db.backhaul."));
        assert_eq!(name("abc.").as_deref(), Some("abc.backhaul."));
        assert_eq!(name("café☕").as_deref(), Some("caf.backhaul."));
        assert_eq!(name(""), None);
        assert_eq!(name("   "), None);
        assert_eq!(name("☕"), None);
        assert_eq!(name("backhaul"), None);
        assert_eq!(name("..."), None);
    }

    #[test]
    fn labels_are_cut_to_63_bytes() {
        let long = "a".repeat(70) + "-b";
        let n = name(&long).unwrap();
        assert_eq!(n, format!("{}.backhaul.", "a".repeat(63)));
        // a cut that ends on '-' does not leave a trailing '-'
        let long = "a".repeat(62) + "-bc";
        assert_eq!(
            name(&long).unwrap(),
            format!("{}.backhaul.", "a".repeat(62))
        );
    }

    #[test]
    fn over_long_names_are_unusable() {
        let raw = vec!["x".repeat(60); 5].join(".");
        assert_eq!(name(&raw), None);
    }

    #[test]
    fn names_fill_255_bytes_and_no_more() {
        // "backhaul." is 10 bytes in wire form; three 63-byte labels take 192 and one of 52
        // takes 53: exactly 255. One more byte is over the limit, which hickory enforces too.
        let raw = |last: usize| format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(last));
        let wire = crate::dns::wire::name_wire(&Name::from_ascii(name(&raw(52)).unwrap()).unwrap());
        assert_eq!(wire.len(), 255);
        assert_eq!(name(&raw(53)), None);
        assert!(Name::from_ascii(format!("{}.backhaul.", raw(53))).is_err());
    }

    #[test]
    fn the_domain_is_cut_only_at_a_label_boundary() {
        // The domain's first length byte (48) is the byte '0': inside the member's label the
        // bytes match the domain's wire form, but no label starts there.
        let domain = Name::from_ascii(format!("{}.net.", "a".repeat(48))).unwrap();
        let raw = format!("q0{}.net", "a".repeat(48));
        assert_eq!(
            member_name(&raw, &domain).unwrap().to_ascii(),
            format!("{raw}.{domain}")
        );
        let raw = format!("q.{}.net", "a".repeat(48));
        assert_eq!(
            member_name(&raw, &domain).unwrap().to_ascii(),
            format!("q.{domain}")
        );
    }

    #[test]
    fn precedence_oldest_then_lowest_id() {
        let m = |node: u64, t: Option<i64>| Member {
            node: NodeId(node),
            name: String::new(),
            authorized: true,
            creation_time: t,
            ips: vec![],
            no_auto_assign_ips: false,
        };
        assert_eq!(precedence(&m(9, Some(1)), &m(1, Some(2))), Ordering::Less);
        assert_eq!(precedence(&m(1, Some(5)), &m(2, Some(5))), Ordering::Less);
        assert_eq!(precedence(&m(1, None), &m(2, Some(5))), Ordering::Greater);
    }
}
