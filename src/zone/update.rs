//! RFC 2136 UPDATE worked out on one zone: the prerequisites (§3.2), the key's rights
//! (`[[update]]`, §3.3), the prescan and the changes (§3.4), all or nothing. Pure: the zone's
//! records and what updates wrote before go in; the records deleted and added, and what
//! updates hold afterwards, come out. Reading the message is hickory-proto's; applying the
//! result (state_dir, serial, journal, NOTIFY) is the builder's.

use std::collections::BTreeMap;

use foldhash::HashSet;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, Record};

use super::apexes::Apexes;
use super::list::{RecordList, ZoneRecord};
use crate::config::UpdatePolicy;
use crate::dname::{name_wire, rtype, wire_to_text};
use crate::records::rdata_wire;

const CLASS_IN: u16 = 1;
const CLASS_NONE: u16 = 254;
const CLASS_ANY: u16 = 255;

/// Why an update was not applied: the RCODE (RFC 2136 2.2) and, for the log, what it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rcode: u16,
    pub why: String,
}

fn refuse(rcode: u16, why: impl Into<String>) -> Refusal {
    Refusal {
        rcode,
        why: why.into(),
    }
}

pub const FORMERR: u16 = 1;
pub const SERVFAIL: u16 = 2;
pub const NXDOMAIN: u16 = 3;
pub const REFUSED: u16 = 5;
pub const YXDOMAIN: u16 = 6;
pub const YXRRSET: u16 = 7;
pub const NXRRSET: u16 = 8;
pub const NOTAUTH: u16 = 9;
pub const NOTZONE: u16 = 10;

/// One record of an UPDATE: owner lowercase, RDATA uncompressed (empty for the "any data"
/// forms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rr {
    pub owner: Vec<u8>,
    pub class: u16,
    pub rtype: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
}

impl Rr {
    fn from_record(r: &Record) -> Result<Rr, Refusal> {
        let rdata = match &r.data {
            RData::Update0(_) => Vec::new(),
            data => rdata_wire(data).map_err(|e| refuse(FORMERR, e))?,
        };
        Ok(Rr {
            owner: name_wire(&r.name),
            class: u16::from(r.dns_class),
            rtype: u16::from(r.record_type()),
            ttl: r.ttl,
            rdata,
        })
    }

    fn zone_record(&self) -> ZoneRecord<'_> {
        ZoneRecord {
            owner: &self.owner,
            rtype: self.rtype,
            ttl: self.ttl,
            rdata: &self.rdata,
        }
    }
}

/// An UPDATE as read: its zone, prerequisites and updates.
#[derive(Debug)]
pub struct Request {
    pub zone: Name,
    prerequisites: Vec<Rr>,
    updates: Vec<Rr>,
}

/// Reads an UPDATE (its TSIG already checked and taken off): one zone of type SOA, class IN.
pub fn read(message: &[u8]) -> Result<Request, Refusal> {
    let m = Message::from_vec(message).map_err(|e| refuse(FORMERR, e.to_string()))?;
    let [zone] = m.queries.as_slice() else {
        return Err(refuse(FORMERR, "not exactly one zone"));
    };
    if u16::from(zone.query_type()) != rtype::SOA || u16::from(zone.query_class()) != CLASS_IN {
        return Err(refuse(
            FORMERR,
            "the zone section is not of type SOA, class IN",
        ));
    }
    let rrs = |rs: &[Record]| {
        rs.iter()
            .map(Rr::from_record)
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Request {
        zone: zone.name().to_lowercase(),
        prerequisites: rrs(&m.answers)?,
        updates: rrs(&m.authorities)?,
    })
}

/// What an update wrote, per key: the records each key's updates hold in one view.
pub type Written = BTreeMap<Name, RecordList>;

/// What applying an update gives.
#[derive(Debug, Default)]
pub struct Applied {
    /// Records gone from the zone, and records new in it (none: nothing changed).
    pub deleted: RecordList,
    pub added: RecordList,
    /// The key's records afterwards (every zone of the view).
    pub written: RecordList,
}

impl Applied {
    pub fn changed(&self) -> bool {
        !self.deleted.is_empty() || !self.added.is_empty()
    }
}

/// The zone an update applies to: its apex, its records as served (SOA first, then sorted),
/// and which owners are in it (not in a zone of ours below it).
pub struct Zone<'a> {
    pub apex: &'a [u8],
    pub records: &'a RecordList,
    pub in_zone: &'a dyn Fn(&[u8]) -> bool,
}

impl Zone<'_> {
    /// The zone's records at `owner` (a binary search: the records after the SOA are sorted
    /// by owner).
    fn at(&self, owner: &[u8]) -> impl Iterator<Item = ZoneRecord<'_>> + '_ {
        let n = self.records.len();
        let (mut lo, mut hi) = (1.min(n), n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.records.get(mid).owner < owner {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let owner = owner.to_vec();
        let apex_soa = (owner == self.apex && n > 0).then(|| self.records.get(0));
        apex_soa.into_iter().chain(
            (lo..n)
                .map(|i| self.records.get(i))
                .take_while(move |r| r.owner == owner.as_slice()),
        )
    }
}

/// Applies `req` for `key` under `policy` to `zone`, whose update-written records (of every
/// key) are in `written`. All or nothing: an error changes nothing.
pub fn apply(
    zone: &Zone<'_>,
    written: &Written,
    key: &Name,
    policy: &UpdatePolicy,
    req: &Request,
) -> Result<Applied, Refusal> {
    prerequisites(zone, &req.prerequisites)?;
    prescan(zone, &req.updates)?;
    // The rights (RFC 2136 3.3): each name by the key's globs, each type by its list; a name
    // that holds anything not written by an update (a member, an alias, a service, the records
    // file, the zone's own SOA and NS) is never changed.
    let ours = |r: &ZoneRecord<'_>| written.values().any(|w| w.iter().any(|x| same(&x, r)));
    for u in &req.updates {
        let relative = relative_name(&u.owner, zone.apex);
        let deletes_all = u.class == CLASS_ANY && u.rtype == rtype::ANY;
        let allowed = match deletes_all {
            true => policy.types.iter().any(|&t| policy.allows(&relative, t)),
            false => policy.allows(&relative, u.rtype),
        };
        if !allowed {
            return Err(refuse(
                REFUSED,
                format!(
                    "{} {} is outside what the key may change",
                    wire_to_text(&u.owner),
                    type_name(u.rtype)
                ),
            ));
        }
        if zone.at(&u.owner).any(|r| !ours(&r)) {
            return Err(refuse(
                REFUSED,
                format!(
                    "{} belongs to a member, a service, the records file or the zone itself",
                    wire_to_text(&u.owner)
                ),
            ));
        }
    }
    // The changes, on a copy of what every key wrote (RFC 2136 3.4.2).
    let mut sets: Vec<(Name, Vec<Rr>)> = (written.iter())
        .map(|(k, list)| (k.clone(), list.iter().map(|r| rr(&r)).collect()))
        .collect();
    if !sets.iter().any(|(k, _)| k == key) {
        sets.push((key.clone(), Vec::new()));
    }
    let before: Vec<Rr> = sets.iter().flat_map(|(_, l)| l.iter().cloned()).collect();
    for u in &req.updates {
        let at_owner = |rs: &Rr| rs.owner == u.owner;
        match u.class {
            CLASS_IN => {
                let all: Vec<&Rr> = sets
                    .iter()
                    .flat_map(|(_, l)| l.iter())
                    .filter(|r| at_owner(r))
                    .collect();
                // CNAME and other data do not share a name (RFC 2136 3.4.2.2: ignored).
                let cname = all.iter().any(|r| r.rtype == rtype::CNAME);
                let other = all.iter().any(|r| r.rtype != rtype::CNAME);
                if (u.rtype == rtype::CNAME && other) || (u.rtype != rtype::CNAME && cname) {
                    continue;
                }
                let record = Rr {
                    class: CLASS_IN,
                    ..u.clone()
                };
                for (_, list) in &mut sets {
                    list.retain(|r| !(at_owner(r) && r.rtype == u.rtype && r.rdata == u.rdata));
                    // One TTL per RRset (RFC 2181 5.2): the one just given.
                    for r in list
                        .iter_mut()
                        .filter(|r| at_owner(r) && r.rtype == u.rtype)
                    {
                        r.ttl = u.ttl;
                    }
                }
                if let Some((_, list)) = sets.iter_mut().find(|(k, _)| k == key) {
                    list.push(record);
                }
            }
            CLASS_ANY if u.rtype == rtype::ANY => {
                for (_, list) in &mut sets {
                    list.retain(|r| !(at_owner(r) && policy.types.contains(&r.rtype)));
                }
            }
            CLASS_ANY => {
                for (_, list) in &mut sets {
                    list.retain(|r| !(at_owner(r) && r.rtype == u.rtype));
                }
            }
            _ => {
                for (_, list) in &mut sets {
                    list.retain(|r| !(at_owner(r) && r.rtype == u.rtype && r.rdata == u.rdata));
                }
            }
        }
    }
    let after: Vec<Rr> = sets.iter().flat_map(|(_, l)| l.iter().cloned()).collect();
    let mine: Vec<Rr> = (sets.into_iter())
        .find(|(k, _)| k == key)
        .map(|(_, l)| l)
        .unwrap_or_default();
    let bytes: usize = mine.iter().map(|r| r.owner.len() + r.rdata.len()).sum();
    if mine.len() > policy.max_records || bytes > policy.max_bytes {
        return Err(refuse(
            REFUSED,
            format!(
                "the key would hold {} records of {bytes} bytes, over its max_records ({}) or max_size ({} bytes)",
                mine.len(),
                policy.max_records,
                policy.max_bytes
            ),
        ));
    }
    let mut applied = Applied::default();
    let key_of = |r: &Rr| (r.owner.clone(), r.rtype, r.rdata.clone(), r.ttl);
    for r in &before {
        if !after.iter().any(|a| key_of(a) == key_of(r)) {
            applied.deleted.push(r.zone_record());
        }
    }
    for r in &after {
        if !before.iter().any(|b| key_of(b) == key_of(r)) {
            applied.added.push(r.zone_record());
        }
    }
    for r in &mine {
        applied.written.push(r.zone_record());
    }
    applied.written = applied.written.sorted();
    Ok(applied)
}

/// Records written by dynamic updates (RFC 2136): only at names nothing else holds (a
/// member, a service or a file that took a name since wins it), never at an apex, and only
/// inside a zone still served.
pub(super) fn push_updated(
    records: &mut RecordList,
    updated: &RecordList,
    apexes: &Apexes,
) -> RecordList {
    let mut served = RecordList::default();
    if updated.is_empty() {
        return served;
    }
    let taken: HashSet<&[u8]> = records.iter().map(|r| r.owner).collect();
    let keep: Vec<ZoneRecord<'_>> = (updated.iter())
        .filter(|r| !taken.contains(r.owner))
        .filter(|r| apexes.slot(r.owner).is_none() && apexes.closest(r.owner).is_some())
        .collect();
    drop(taken);
    for r in keep {
        records.push(r);
        served.push(r);
    }
    served.sorted()
}

/// RFC 2136 3.2: every prerequisite holds, or the RCODE of the first that does not.
fn prerequisites(zone: &Zone<'_>, prereqs: &[Rr]) -> Result<(), Refusal> {
    // "RRset exists (value dependent)": the RRs given, per name and type, compared whole.
    let mut values: BTreeMap<(Vec<u8>, u16), Vec<Vec<u8>>> = BTreeMap::new();
    for p in prereqs {
        let name = wire_to_text(&p.owner);
        if p.ttl != 0 {
            return Err(refuse(FORMERR, format!("prerequisite {name} has a TTL")));
        }
        if !(zone.in_zone)(&p.owner) {
            return Err(refuse(
                NOTZONE,
                format!("prerequisite {name} is outside the zone"),
            ));
        }
        let in_use = || zone.at(&p.owner).next().is_some();
        let exists = || zone.at(&p.owner).any(|r| r.rtype == p.rtype);
        match (p.class, p.rtype, p.rdata.is_empty()) {
            (CLASS_ANY | CLASS_NONE, _, false) => {
                return Err(refuse(FORMERR, format!("prerequisite {name} has data")))
            }
            (CLASS_ANY, rtype::ANY, true) if !in_use() => {
                return Err(refuse(NXDOMAIN, format!("{name} is not in use")))
            }
            (CLASS_ANY, t, true) if t != rtype::ANY && !exists() => {
                return Err(refuse(NXRRSET, format!("{name} has no {}", type_name(t))))
            }
            (CLASS_NONE, rtype::ANY, true) if in_use() => {
                return Err(refuse(YXDOMAIN, format!("{name} is in use")))
            }
            (CLASS_NONE, t, true) if t != rtype::ANY && exists() => {
                return Err(refuse(YXRRSET, format!("{name} has {}", type_name(t))))
            }
            (CLASS_ANY | CLASS_NONE, _, true) => {}
            (CLASS_IN, _, _) => values
                .entry((p.owner.clone(), p.rtype))
                .or_default()
                .push(p.rdata.clone()),
            _ => {
                return Err(refuse(
                    FORMERR,
                    format!("prerequisite {name} of another class"),
                ))
            }
        }
    }
    for ((owner, t), mut wanted) in values {
        let mut held: Vec<Vec<u8>> = (zone.at(&owner))
            .filter(|r| r.rtype == t)
            .map(|r| r.rdata.to_vec())
            .collect();
        wanted.sort();
        wanted.dedup();
        held.sort();
        if held != wanted {
            let name = wire_to_text(&owner);
            return Err(refuse(NXRRSET, format!("{name} {} differs", type_name(t))));
        }
    }
    Ok(())
}

/// RFC 2136 3.4.1: every update is in the zone and well formed.
fn prescan(zone: &Zone<'_>, updates: &[Rr]) -> Result<(), Refusal> {
    let meta = |t: u16| matches!(t, rtype::AXFR | rtype::IXFR | rtype::MAILA | rtype::MAILB);
    for u in updates {
        let name = wire_to_text(&u.owner);
        if !(zone.in_zone)(&u.owner) {
            return Err(refuse(NOTZONE, format!("{name} is outside the zone")));
        }
        let formed = match u.class {
            CLASS_IN => !meta(u.rtype) && u.rtype != rtype::ANY && !u.rdata.is_empty(),
            CLASS_ANY => u.ttl == 0 && u.rdata.is_empty() && !meta(u.rtype),
            CLASS_NONE => u.ttl == 0 && !meta(u.rtype) && u.rtype != rtype::ANY,
            _ => false,
        };
        if !formed {
            return Err(refuse(
                FORMERR,
                format!("update {name} {} is malformed", type_name(u.rtype)),
            ));
        }
    }
    Ok(())
}

fn rr(r: &ZoneRecord<'_>) -> Rr {
    Rr {
        owner: r.owner.to_vec(),
        class: CLASS_IN,
        rtype: r.rtype,
        ttl: r.ttl,
        rdata: r.rdata.to_vec(),
    }
}

fn same(a: &ZoneRecord<'_>, b: &ZoneRecord<'_>) -> bool {
    a.owner == b.owner && a.rtype == b.rtype && a.rdata == b.rdata
}

/// `_acme-challenge.db` for `_acme-challenge.db.backhaul.` in `backhaul.` (text, lowercase,
/// no final dot; empty at the apex).
fn relative_name(owner: &[u8], apex: &[u8]) -> String {
    let below = &owner[..owner.len().saturating_sub(apex.len())];
    let text = wire_to_text(&[below, &[0]].concat());
    text.trim_end_matches('.').to_owned()
}

fn type_name(t: u16) -> String {
    hickory_proto::rr::RecordType::from(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, CNAME, TXT};
    use hickory_proto::rr::{DNSClass, RecordType};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn policy() -> UpdatePolicy {
        UpdatePolicy {
            key: name("k."),
            names: vec![glob::Pattern::new("dyn*").unwrap()],
            types: vec![rtype::TXT, rtype::A, rtype::CNAME],
            view: crate::view::View::Backhaul,
            max_records: 10,
            max_bytes: 1000,
        }
    }

    fn message(updates: Vec<Record>) -> Vec<u8> {
        let mut m = Message::new(1, MessageType::Query, OpCode::Update);
        m.add_query(Query::query(name("x."), RecordType::SOA));
        for u in updates {
            m.add_authority(u);
        }
        m.to_vec().unwrap()
    }

    fn with_class(mut r: Record, class: DNSClass, ttl: u32) -> Record {
        r.dns_class = class;
        r.ttl = ttl;
        r
    }

    fn txt(owner: &str, text: &str, ttl: u32) -> Record {
        Record::from_rdata(
            name(owner),
            ttl,
            RData::TXT(TXT::new(vec![text.to_owned()])),
        )
    }

    /// The zone `x.`: its SOA, a member `db` and whatever `written` holds, as served.
    fn zone_of(written: &Written) -> RecordList {
        let mut list = RecordList::default();
        list.push_record(&Record::from_rdata(
            name("db.x."),
            60,
            RData::A(A::new(10, 0, 0, 1)),
        ));
        for l in written.values() {
            for r in l.iter() {
                list.push(r);
            }
        }
        let mut sorted = list.sorted();
        let soa = hickory_proto::rr::rdata::SOA::new(name("ns.x."), name("h.x."), 1, 1, 1, 1, 1);
        sorted.set_first(&Record::from_rdata(name("x."), 60, RData::SOA(soa)));
        sorted
    }

    fn run(written: &Written, updates: Vec<Record>) -> Result<Applied, Refusal> {
        let records = zone_of(written);
        let apex = name_wire(&name("x."));
        let in_zone = |o: &[u8]| crate::dname::is_at_or_below(o, &apex);
        let zone = Zone {
            apex: &apex,
            records: &records,
            in_zone: &in_zone,
        };
        apply(
            &zone,
            written,
            &name("k."),
            &policy(),
            &read(&message(updates))?,
        )
    }

    #[test]
    fn the_update_section_as_rfc_2136_reads_it() {
        let mut written = Written::new();
        // Added; a second add to the RRset gives the whole RRset its TTL.
        let a = run(
            &written,
            vec![txt("dyn.x.", "one", 60), txt("dyn.x.", "two", 30)],
        )
        .unwrap();
        assert_eq!(a.added.len(), 2);
        assert!(a.written.iter().all(|r| r.ttl == 30));
        written.insert(name("k."), a.written);
        // A CNAME where other data is, or data where a CNAME is: ignored (3.4.2.2).
        let cname = Record::from_rdata(name("dyn.x."), 60, RData::CNAME(CNAME(name("db.x."))));
        assert!(!run(&written, vec![cname]).unwrap().changed());
        // One RR deleted (class NONE), then the RRset (class ANY), then the name (ANY ANY).
        let one = with_class(txt("dyn.x.", "one", 0), DNSClass::NONE, 0);
        let a = run(&written, vec![one]).unwrap();
        assert_eq!((a.deleted.len(), a.written.len()), (1, 1));
        let rrset = Record::update0(name("dyn.x."), 0, RecordType::TXT);
        let rrset = with_class(rrset, DNSClass::ANY, 0);
        assert_eq!(run(&written, vec![rrset]).unwrap().deleted.len(), 2);
        let all = with_class(
            Record::update0(name("dyn.x."), 0, RecordType::ANY),
            DNSClass::ANY,
            0,
        );
        assert!(run(&written, vec![all]).unwrap().written.is_empty());
        // Errors, each of its RCODE, nothing applied.
        let code = |updates| run(&written, updates).unwrap_err().rcode;
        assert_eq!(code(vec![txt("dyn.y.", "out", 60)]), NOTZONE);
        let any_in = Record::update0(name("dyn.x."), 60, RecordType::ANY);
        assert_eq!(code(vec![any_in]), FORMERR);
        assert_eq!(code(vec![txt("other.x.", "no", 60)]), REFUSED);
        let member = Record::from_rdata(name("db.x."), 60, RData::A(A::new(10, 0, 0, 9)));
        assert_eq!(code(vec![member]), REFUSED);
        let many: Vec<Record> = (0..11)
            .map(|i| txt("dyn2.x.", &i.to_string(), 60))
            .collect();
        assert_eq!(code(many), REFUSED, "over max_records");
    }
}
