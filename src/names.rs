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

/// One label: lowercase; whitespace and `_` become `-`; anything outside `[a-z0-9-]` is dropped;
/// runs of `-` collapse; no leading or trailing `-`; at most 63 bytes.
fn label(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for c in part.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_whitespace() || c == '_' {
            '-'
        } else {
            c
        };
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            '-' if !out.is_empty() && !out.ends_with('-') => out.push('-'),
            _ => {}
        }
    }
    out.truncate(MAX_LABEL);
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// The name a member asks for, as a full name under `domain`; `None` if nothing usable is left.
///
/// Dots split labels (`web.prod` -> `web.prod.<domain>`), and a name that already ends in the
/// domain is not doubled (`db.backhaul` -> `db.backhaul.`).
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
    let mut labels: Vec<String> = raw
        .split('.')
        .map(label)
        .filter(|l| !l.is_empty())
        .collect();
    let domain_labels: Vec<String> = domain
        .iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect();
    if labels.ends_with(&domain_labels) {
        labels.truncate(labels.len() - domain_labels.len());
    }
    if labels.is_empty() {
        return None;
    }
    // Fails only when the whole name exceeds 255 bytes; such a name is not usable.
    Name::from_labels(labels.iter().map(String::as_bytes))
        .ok()?
        .append_domain(domain)
        .ok()
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
