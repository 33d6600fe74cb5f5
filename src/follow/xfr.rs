//! The transfer client of a follower: IXFR (RFC 1995) from the serial it holds, or AXFR (RFC
//! 5936) when it holds nothing, over TCP, every message checked against the `[follow]` key
//! (RFC 8945 5.3.1). The records are hickory-proto's to read; what is ours is following the
//! SOAs through the reply.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, Record};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::dname::{name_wire, rtype, HEADER_LEN};
use crate::dns::tsig::Keyring;
use crate::zone::journal::Change;
use crate::zone::RecordList;

/// How long connecting, and then each message, may take.
const CONNECT: Duration = Duration::from_secs(5);
const EACH_MESSAGE: Duration = Duration::from_secs(15);
/// The most a transfer may bring: a zone list holds under 4 GiB, and no real zone comes near.
const MAX_BYTES: usize = 1 << 30;

/// Why a transfer failed; the data held before stays.
#[derive(Debug, Error)]
pub enum XfrError {
    #[error("cannot reach the primary: {0}")]
    Io(#[from] std::io::Error),
    #[error("the primary did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the primary answered {rcode}{}", advice(rcode))]
    Rcode { rcode: &'static str },
    #[error("the primary's reply cannot be trusted: {0}")]
    Signature(&'static str),
    #[error("the primary's reply is malformed: {0}")]
    Malformed(String),
}

fn advice(rcode: &str) -> &'static str {
    match rcode {
        "NOTAUTH" => " (it does not accept our key: the [follow] key must be one of its [[transfer.key]] with the same secret)",
        "REFUSED" => " (is this server in the primary's [transfer] allow, with the [follow] key?)",
        "SERVFAIL" => " (it has no complete data for the zone yet)",
        _ => "",
    }
}

/// What a transfer brought.
#[derive(Debug)]
pub enum Got {
    /// Nothing newer than the serial held.
    Current,
    /// The whole zone, its SOA first and the rest sorted.
    Whole(RecordList),
    /// The changes from the serial held, in order.
    Changes(Vec<Change>),
}

/// One transfer: what it brought, the primary's serial, and what it took on the wire.
#[derive(Debug)]
pub struct Transfer {
    pub got: Got,
    pub serial: u32,
    pub bytes: usize,
    pub messages: usize,
}

/// The primary and the key its transfers are signed with.
pub struct Primary {
    pub address: SocketAddr,
    pub key: Option<Name>,
    pub keys: Arc<Keyring>,
}

impl Primary {
    /// The zone `apex` since `held` (its serial and the SOA RDATA held), or whole (`None`).
    pub async fn transfer(&self, apex: &Name, held: Option<u32>) -> Result<Transfer, XfrError> {
        let id: u16 = rand::random();
        let mut query = query(id, apex, held);
        let mut replies = match &self.key {
            Some(k) => {
                let mut signer = self.keys.signer(k).ok_or(XfrError::Signature(
                    "the [follow] key is not among the [[transfer.key]]",
                ))?;
                signer.sign(&mut query);
                Some(signer.replies())
            }
            None => None,
        };
        let connect = TcpStream::connect(self.address);
        let mut tcp = tokio::time::timeout(CONNECT, connect)
            .await
            .map_err(|_| XfrError::Timeout(CONNECT))??;
        tcp.set_nodelay(true)?;
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&query);
        tcp.write_all(&framed).await?;
        let mut reading = Reading::new(apex, held.is_some());
        let (mut bytes, mut messages) = (0usize, 0usize);
        loop {
            let message = tokio::time::timeout(EACH_MESSAGE, read_message(&mut tcp))
                .await
                .map_err(|_| XfrError::Timeout(EACH_MESSAGE))??;
            bytes += message.len() + 2;
            messages += 1;
            if bytes > MAX_BYTES {
                return Err(XfrError::Malformed("more than 1 GiB".into()));
            }
            if message.len() < HEADER_LEN
                || message[..2] != id.to_be_bytes()
                || message[2] & 0x80 == 0
            {
                return Err(XfrError::Malformed("not a reply to our request".into()));
            }
            let rcode = u16::from(message[3] & 0xf);
            if rcode != 0 {
                return Err(XfrError::Rcode {
                    rcode: crate::metrics::rcode_name(rcode),
                });
            }
            if let Some(r) = replies.as_mut() {
                r.next(&message, crate::clock::unix_now())
                    .map_err(XfrError::Signature)?;
            }
            let parsed =
                Message::from_vec(&message).map_err(|e| XfrError::Malformed(e.to_string()))?;
            for record in parsed.answers {
                reading.take(record)?;
            }
            if reading.done(messages) {
                break;
            }
        }
        if replies.as_ref().is_some_and(|r| !r.settled()) {
            return Err(XfrError::Signature("the last message is not signed"));
        }
        let (got, serial) = reading.finish()?;
        Ok(Transfer {
            got,
            serial,
            bytes,
            messages,
        })
    }
}

/// The request: IXFR with the serial held in the authority section (RFC 1995 3), or AXFR.
fn query(id: u16, apex: &Name, held: Option<u32>) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    let nscount = u16::from(held.is_some());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0]);
    q.extend_from_slice(&nscount.to_be_bytes());
    q.extend_from_slice(&[0, 0]);
    q.extend_from_slice(&name_wire(apex));
    let qtype = if held.is_some() {
        rtype::IXFR
    } else {
        rtype::AXFR
    };
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    if let Some(serial) = held {
        // The apex (a pointer to the question), SOA IN, TTL 0, and an SOA of which only the
        // serial counts: root names, zero timers.
        q.extend_from_slice(&[0xc0, HEADER_LEN as u8]);
        q.extend_from_slice(&rtype::SOA.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q.extend_from_slice(&0u32.to_be_bytes());
        q.extend_from_slice(&22u16.to_be_bytes());
        q.extend_from_slice(&[0, 0]);
        q.extend_from_slice(&serial.to_be_bytes());
        q.extend_from_slice(&[0; 16]);
    }
    q
}

async fn read_message(tcp: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).await?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tcp.read_exact(&mut message).await?;
    Ok(message)
}

/// Where the reply is, between its first SOA and the last.
enum Stage {
    Start,
    /// After the first SOA: an SOA next means IXFR, anything else AXFR.
    First,
    Whole,
    Deleting,
    Adding,
    Done,
}

/// Follows the SOAs of a reply (RFC 1995 4): `SOA(new)`, then either the whole zone and
/// `SOA(new)` again, or sequences of `SOA(old) deleted... SOA(next) added...` ending at
/// `SOA(new)`; or `SOA(new)` alone when nothing is newer.
struct Reading {
    apex: Vec<u8>,
    asked_ixfr: bool,
    stage: Stage,
    first: Option<Record>,
    end: u32,
    whole: RecordList,
    changes: Vec<Change>,
    current: Option<Change>,
}

impl Reading {
    fn new(apex: &Name, asked_ixfr: bool) -> Reading {
        Reading {
            apex: name_wire(apex),
            asked_ixfr,
            stage: Stage::Start,
            first: None,
            end: 0,
            whole: RecordList::default(),
            changes: Vec::new(),
            current: None,
        }
    }

    fn take(&mut self, record: Record) -> Result<(), XfrError> {
        let owner = name_wire(&record.name);
        if u16::from(record.dns_class) != 1 || !owner.ends_with(&self.apex) {
            return Ok(()); // out of zone (RFC 5936 3.2): not ours to keep
        }
        let soa = match &record.data {
            RData::SOA(soa) if owner == self.apex => Some(soa.serial),
            _ => None,
        };
        let bad = |why: &str| Err(XfrError::Malformed(why.to_owned()));
        match (&self.stage, soa) {
            (Stage::Start, Some(serial)) => {
                self.end = serial;
                self.first = Some(record);
                self.stage = Stage::First;
            }
            (Stage::Start, None) => return bad("it does not start with the zone's SOA"),
            (Stage::First, Some(from)) if self.asked_ixfr => {
                self.current = Some(change_from(from, &record));
                self.stage = Stage::Deleting;
            }
            (Stage::First, Some(_)) => self.stage = Stage::Done, // a zone of its SOA alone
            (Stage::First, None) => {
                self.whole.push_record(&record);
                self.stage = Stage::Whole;
            }
            (Stage::Whole, Some(serial)) if serial == self.end => self.stage = Stage::Done,
            (Stage::Whole, Some(_)) => return bad("a second SOA inside the zone"),
            (Stage::Whole, None) => self.whole.push_record(&record),
            (Stage::Deleting, Some(to)) => {
                if let Some(c) = self.current.as_mut() {
                    c.to = to;
                    c.added.push_record(&record);
                }
                self.stage = Stage::Adding;
            }
            (Stage::Deleting, None) => {
                if let Some(c) = self.current.as_mut() {
                    c.deleted.push_record(&record);
                }
            }
            (Stage::Adding, Some(serial)) => {
                let Some(finished) = self.current.take() else {
                    return bad("an SOA out of place");
                };
                let last = finished.to == self.end && serial == self.end;
                self.changes.push(finished);
                if last {
                    self.stage = Stage::Done;
                } else {
                    self.current = Some(change_from(serial, &record));
                    self.stage = Stage::Deleting;
                }
            }
            (Stage::Adding, None) => {
                if let Some(c) = self.current.as_mut() {
                    c.added.push_record(&record);
                }
            }
            (Stage::Done, _) => return bad("records after the closing SOA"),
        }
        Ok(())
    }

    /// Whether the reply is complete after `messages` messages: its closing SOA seen, or an
    /// IXFR answered with the SOA alone in one message (nothing newer).
    fn done(&self, messages: usize) -> bool {
        matches!(self.stage, Stage::Done)
            || (messages == 1 && self.asked_ixfr && matches!(self.stage, Stage::First))
    }

    fn finish(self) -> Result<(Got, u32), XfrError> {
        let got = match self.stage {
            Stage::First => Got::Current,
            Stage::Done if !self.changes.is_empty() => Got::Changes(self.changes),
            Stage::Done => {
                let Some(first) = self.first else {
                    return Err(XfrError::Malformed("no SOA opened the reply".into()));
                };
                let mut whole = self.whole.sorted();
                whole.set_first(&first);
                Got::Whole(whole)
            }
            _ => {
                return Err(XfrError::Malformed(
                    "it ended before the closing SOA".into(),
                ))
            }
        };
        Ok((got, self.end))
    }
}

/// A change from `from`, its deletions opened by `soa`.
fn change_from(from: u32, soa: &Record) -> Change {
    let mut deleted = RecordList::default();
    deleted.push_record(soa);
    Change {
        from,
        to: from,
        deleted,
        added: RecordList::default(),
    }
}

/// The SOA timers (refresh, retry, expire) from an SOA's RDATA, in seconds.
pub fn timers(soa_rdata: &[u8]) -> Option<(u32, u32, u32)> {
    let n = soa_rdata.len();
    let at = |i: usize| -> Option<u32> {
        let b = soa_rdata.get(i..i + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    Some((at(n.checked_sub(16)?)?, at(n - 12)?, at(n - 8)?))
}

/// The serial from an SOA's RDATA.
pub fn serial(soa_rdata: &[u8]) -> Option<u32> {
    let n = soa_rdata.len().checked_sub(20)?;
    let b = soa_rdata.get(n..n + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, SOA};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn soa(serial: u32) -> Record {
        let soa = SOA::new(name("ns.x."), name("h.x."), serial, 60, 10, 600, 5);
        Record::from_rdata(name("x."), 60, RData::SOA(soa))
    }

    fn a(owner: &str, last: u8) -> Record {
        Record::from_rdata(name(owner), 60, RData::A(A::new(10, 0, 0, last)))
    }

    fn read(asked_ixfr: bool, records: Vec<Record>) -> Result<(Got, u32), XfrError> {
        let mut r = Reading::new(&name("x."), asked_ixfr);
        for record in records {
            r.take(record)?;
        }
        r.finish()
    }

    #[test]
    fn replies_are_read_by_their_soas() {
        // Nothing newer: the SOA alone.
        assert!(matches!(read(true, vec![soa(5)]), Ok((Got::Current, 5))));
        // Two changes, 1 -> 2 -> 3.
        let reply = vec![
            soa(3),
            soa(1),
            a("a.x.", 1),
            soa(2),
            a("b.x.", 2),
            soa(2),
            soa(3),
            a("c.x.", 3),
            soa(3),
        ];
        let Ok((Got::Changes(changes), 3)) = read(true, reply) else {
            panic!("two changes")
        };
        let spans: Vec<(u32, u32, usize, usize)> = (changes.iter())
            .map(|c| (c.from, c.to, c.deleted.len(), c.added.len()))
            .collect();
        assert_eq!(spans, [(1, 2, 2, 2), (2, 3, 1, 2)]);
        // The whole zone (AXFR, or IXFR answered with it), out-of-zone records left out.
        let reply = vec![
            soa(7),
            a("b.x.", 2),
            a("elsewhere.", 9),
            a("a.x.", 1),
            soa(7),
        ];
        let Ok((Got::Whole(zone), 7)) = read(true, reply) else {
            panic!("whole zone")
        };
        let owners: Vec<String> = (zone.iter())
            .map(|r| crate::dname::wire_to_text(r.owner))
            .collect();
        assert_eq!(owners, ["x.", "a.x.", "b.x."], "SOA first, then sorted");
        // Broken replies are refused, never half taken.
        assert!(read(false, vec![a("a.x.", 1), soa(1)]).is_err());
        assert!(read(false, vec![soa(7), a("a.x.", 1)]).is_err());
        assert!(read(false, vec![soa(7), a("a.x.", 1), soa(6)]).is_err());
        assert!(read(false, vec![soa(7), a("a.x.", 1), soa(7), a("b.x.", 1)]).is_err());
        assert!(read(true, vec![soa(3), soa(1), a("a.x.", 1), soa(3)]).is_err());
    }

    #[test]
    fn the_ixfr_request_carries_the_serial_held() {
        let q = query(0x1234, &name("x."), Some(42));
        let m = Message::from_vec(&q).unwrap();
        assert_eq!(
            m.queries[0].query_type(),
            hickory_proto::rr::RecordType::IXFR
        );
        match &m.authorities[0].data {
            RData::SOA(s) => assert_eq!(s.serial, 42),
            other => panic!("{other:?}"),
        }
        let m = Message::from_vec(&query(1, &name("x."), None)).unwrap();
        assert_eq!(
            m.queries[0].query_type(),
            hickory_proto::rr::RecordType::AXFR
        );
        assert!(m.authorities.is_empty());
    }
}
