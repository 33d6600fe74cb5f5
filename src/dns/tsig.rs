//! TSIG (RFC 8945): checking signed requests against the keys of `[[transfer.key]]`, and
//! signing the replies, every message of a multi-message transfer chained to the one before
//! (5.3.1), and the NOTIFYs we send.
//!
//! The TSIG record is hickory-proto's ([`TSIG`]: parsing, and the variables the MAC covers);
//! the MACs are the `hmac` crate's, compared in constant time. What is ours is only which
//! bytes go into a MAC, on messages this server builds in wire form.

use hickory_proto::rr::rdata::tsig::{TsigAlgorithm as Algorithm, TsigError, TSIG};
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hmac::{Hmac, Mac};

use super::answer::{reply_with, Rcode, Transport};
use crate::config::{TsigAlgorithm, TsigKey};
use crate::dname::{name_wire, skip_name, HEADER_LEN};

/// Seconds a signature's time may differ from ours (RFC 8945 10 recommends 300).
pub const FUDGE: u16 = 300;

const TYPE_TSIG: u16 = 250;
const CLASS_ANY: u16 = 255;

/// The keys a server knows, secrets decoded.
#[derive(Default)]
pub struct Keyring {
    keys: Vec<Key>,
}

struct Key {
    /// Lowercase, fully qualified.
    name: Name,
    algorithm: TsigAlgorithm,
    secret: Vec<u8>,
}

impl Keyring {
    /// The keys of `[[transfer.key]]`; their secrets were checked to decode when the config
    /// was read.
    pub fn new(keys: &[TsigKey]) -> Keyring {
        use base64::Engine as _;
        let keys = (keys.iter())
            .filter_map(|k| {
                let secret = (base64::engine::general_purpose::STANDARD)
                    .decode(k.secret.expose())
                    .ok()?;
                Some(Key {
                    name: k.name.clone(),
                    algorithm: k.algorithm,
                    secret,
                })
            })
            .collect();
        Keyring { keys }
    }

    fn find(&self, name: &Name) -> Option<&Key> {
        self.keys
            .iter()
            .find(|k| k.name.eq_case(&name.to_lowercase()))
    }

    /// A signer for a message we start (a NOTIFY), with the key named `name`.
    pub fn signer(&self, name: &Name) -> Option<Signer> {
        self.find(name).map(|k| Signer::new(k, Vec::new()))
    }
}

/// What checking a signed request found.
pub enum Checked {
    /// The MAC is right and the time is within the fudge: answer the request (with its TSIG
    /// taken off, [`Checked::Valid::unsigned`]) and sign each reply with `signer`.
    Valid {
        key: Name,
        unsigned: Vec<u8>,
        signer: Signer,
    },
    /// A key or MAC error (or a stale time): send `reply` (NOTAUTH, the TSIG error in its
    /// TSIG record; signed only for BADTIME, RFC 8945 5.3.2).
    Failed {
        error: TsigError,
        key: Name,
        reply: Vec<u8>,
    },
    /// The TSIG record cannot be read: FORMERR.
    Malformed,
}

/// Checks the TSIG record of `query`, which starts at `tsig_at` and is the last record
/// (`wire::Request::tsig`), in the order of RFC 8945 5.2: the key, the MAC, then the time.
pub fn check(keys: &Keyring, query: &[u8], tsig_at: usize, now: u64) -> Checked {
    let Some((key_name, tsig)) = read_tsig(query, tsig_at) else {
        return Checked::Malformed;
    };
    let unsigned = strip(query, tsig_at);
    let known = keys
        .find(&key_name)
        .filter(|k| algorithm(k.algorithm) == tsig.algorithm);
    let Some(key) = known else {
        return failed(&unsigned, &key_name, &tsig, TsigError::BadKey, now);
    };
    let full = mac_len(key.algorithm);
    if tsig.mac.len() > full || tsig.mac.len() < 10.max(full / 2) {
        return Checked::Malformed; // RFC 8945 5.2.2.1
    }
    let mut vars = Vec::new();
    if tsig
        .emit_tsig_for_mac(&mut BinEncoder::new(&mut vars), &key_name)
        .is_err()
    {
        return Checked::Malformed;
    }
    // The request as it was signed: its original ID, ARCOUNT without the TSIG.
    let mut signed = unsigned.clone();
    signed[..2].copy_from_slice(&tsig.oid.to_be_bytes());
    if !verify(key, &[&signed, &vars], &tsig.mac) {
        return failed(&unsigned, &key_name, &tsig, TsigError::BadSig, now);
    }
    if tsig.mac.len() < full {
        // Truncated MACs (RFC 8945 5.2.2.1) are not accepted here: local policy.
        return failed(&unsigned, &key_name, &tsig, TsigError::BadTrunc, now);
    }
    let signer = Signer::new(key, tsig.mac.clone());
    if now.abs_diff(tsig.time) > u64::from(tsig.fudge) {
        // Signed, with the request's time and ours in Other Data (5.2.3).
        let mut signer = Signer {
            time: Some(tsig.time),
            error: Some(TsigError::BadTime),
            other: now.to_be_bytes()[2..].to_vec(),
            ..signer
        };
        let mut reply = error_reply(&unsigned);
        signer.sign(&mut reply);
        return Checked::Failed {
            error: TsigError::BadTime,
            key: key_name,
            reply,
        };
    }
    Checked::Valid {
        key: key.name.clone(),
        unsigned,
        signer,
    }
}

/// The request without its TSIG record: ARCOUNT one less.
fn strip(query: &[u8], tsig_at: usize) -> Vec<u8> {
    let mut unsigned = query[..tsig_at].to_vec();
    let arcount = u16::from_be_bytes([unsigned[10], unsigned[11]]).saturating_sub(1);
    unsigned[10..12].copy_from_slice(&arcount.to_be_bytes());
    unsigned
}

fn read_tsig(query: &[u8], tsig_at: usize) -> Option<(Name, TSIG)> {
    let at = u16::try_from(tsig_at).ok()?;
    let mut decoder = BinDecoder::new(query).clone(at);
    let record = Record::<RData>::read(&mut decoder).ok()?;
    if !decoder.is_empty() {
        return None;
    }
    match record.data {
        RData::TSIG(tsig) => Some((record.name, tsig)),
        _ => None,
    }
}

/// An unsigned NOTAUTH reply carrying the TSIG error (RFC 8945 5.3.2), for BADKEY, BADSIG
/// and BADTRUNC: the MAC empty, the request's key and algorithm, our time.
fn failed(unsigned: &[u8], key: &Name, request: &TSIG, error: TsigError, now: u64) -> Checked {
    let mut reply = error_reply(unsigned);
    let tsig = TSIG::new(
        request.algorithm.clone(),
        now,
        FUDGE,
        Vec::new(),
        request.oid,
        Some(error),
        Vec::new(),
    );
    append(&mut reply, key, &tsig);
    Checked::Failed {
        error,
        key: key.clone(),
        reply,
    }
}

/// NOTAUTH with the request's question (and its EDNS), as the answer logic writes errors.
/// `unsigned` parsed with its TSIG, so it parses without: there is always a reply.
fn error_reply(unsigned: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    reply_with(unsigned, Rcode::NotAuth, Transport::Tcp, false, &mut m);
    m
}

/// Appends a TSIG record (its RDATA `tsig`) to `message` and counts it in ARCOUNT.
fn append(message: &mut Vec<u8>, key: &Name, tsig: &TSIG) {
    if message.len() < HEADER_LEN {
        return; // not a message: nothing to sign
    }
    let mut rdata = Vec::with_capacity(64 + tsig.mac.len());
    if tsig.emit(&mut BinEncoder::new(&mut rdata)).is_err() {
        return; // only an over-long Other Data could fail; ours never is
    }
    message.extend_from_slice(&name_wire(key));
    message.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    message.extend_from_slice(&CLASS_ANY.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    message.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    message.extend_from_slice(&rdata);
    let arcount = u16::from_be_bytes([message[10], message[11]]).wrapping_add(1);
    message[10..12].copy_from_slice(&arcount.to_be_bytes());
}

/// Signs the messages of one reply (or one NOTIFY) in order: the first covers the request's
/// MAC and the whole TSIG variables; each later one the MAC before it and the timers only
/// (RFC 8945 5.3.1).
pub struct Signer {
    key: Name,
    algorithm: TsigAlgorithm,
    secret: Vec<u8>,
    /// The request's MAC, then the MAC of the last message signed.
    prior: Vec<u8>,
    first: bool,
    /// The Time Signed to use; `None`: the time of signing.
    time: Option<u64>,
    error: Option<TsigError>,
    other: Vec<u8>,
}

impl Signer {
    /// Signs over `prior`: the request's MAC, or nothing for a message we start.
    fn new(key: &Key, prior: Vec<u8>) -> Signer {
        Signer {
            key: key.name.clone(),
            algorithm: key.algorithm,
            secret: key.secret.clone(),
            prior,
            first: true,
            time: None,
            error: None,
            other: Vec::new(),
        }
    }

    /// Bytes the TSIG record adds to a message (the most, for room in a UDP reply).
    pub fn overhead(&self) -> usize {
        let name = name_wire(&self.key).len();
        let algorithm = name_wire(&algorithm(self.algorithm).to_name()).len();
        name + 10 + algorithm + 16 + mac_len(self.algorithm) + 6
    }

    /// Appends the TSIG record to `message` (complete otherwise, its ID the request's).
    pub fn sign(&mut self, message: &mut Vec<u8>) {
        if message.len() < HEADER_LEN {
            return;
        }
        let time = self.time.unwrap_or_else(crate::clock::unix_now);
        let oid = u16::from_be_bytes([message[0], message[1]]);
        let tsig = TSIG::new(
            algorithm(self.algorithm),
            time,
            FUDGE,
            Vec::new(),
            oid,
            self.error,
            self.other.clone(),
        );
        let mut vars = Vec::with_capacity(64);
        if self.first {
            let _ = tsig.emit_tsig_for_mac(&mut BinEncoder::new(&mut vars), &self.key);
        } else {
            vars.extend_from_slice(&time.to_be_bytes()[2..]);
            vars.extend_from_slice(&FUDGE.to_be_bytes());
        }
        let prior_len = (self.prior.len() as u16).to_be_bytes();
        // A message we start (a NOTIFY) covers no prior MAC; a reply covers the request's,
        // each later message the one before it.
        let parts: [&[u8]; 4] = if self.prior.is_empty() {
            [&[], &[], message, &vars]
        } else {
            [&prior_len, &self.prior, message, &vars]
        };
        let mac = compute(self.algorithm, &self.secret, &parts);
        append(message, &self.key, &tsig.set_mac(mac.clone()));
        self.prior = mac;
        self.first = false;
    }

    /// Checks the TSIG of the reply to a message this signer signed (the secondary's answer
    /// to our NOTIFY): false when it is not signed by our key over our MAC.
    pub fn verify_reply(&self, reply: &[u8]) -> bool {
        matches!(
            self.replies().next(reply, crate::clock::unix_now()),
            Ok(true)
        )
    }

    /// A checker of the replies to the message just signed (a transfer's messages, in order).
    pub fn replies(&self) -> Replies {
        Replies {
            key: Key {
                name: self.key.clone(),
                algorithm: self.algorithm,
                secret: self.secret.clone(),
            },
            prior: self.prior.clone(),
            first: true,
            unsigned: Vec::new(),
            unsigned_count: 0,
        }
    }
}

/// Most unsigned messages between two signed ones of a transfer (RFC 8945 5.3.1).
const MAX_UNSIGNED: usize = 99;

/// Checks the messages of a reply to a request we signed, in the order they come (RFC 8945
/// 5.3.1): the first signed over the request's MAC and every TSIG variable, each later
/// signed one over the MAC before it, the unsigned messages since, and the timers. A
/// transfer's last message must be signed ([`Replies::settled`]).
pub struct Replies {
    key: Key,
    prior: Vec<u8>,
    first: bool,
    /// Messages since the last signed one, back to back as received.
    unsigned: Vec<u8>,
    unsigned_count: usize,
}

impl Replies {
    /// Checks the next message: `Ok(true)` signed and right, `Ok(false)` unsigned (allowed
    /// between signed ones), or why it cannot be trusted.
    pub fn next(&mut self, reply: &[u8], now: u64) -> Result<bool, &'static str> {
        let at = last_record(reply).ok_or("a message that does not parse")?;
        let Some((name, tsig)) = read_tsig(reply, at) else {
            if self.first {
                return Err(
                    "the first message is not signed (wrong key, or the primary does not know it)",
                );
            }
            self.unsigned_count += 1;
            if self.unsigned_count > MAX_UNSIGNED {
                return Err("more than 99 unsigned messages in a row");
            }
            self.unsigned.extend_from_slice(reply);
            return Ok(false);
        };
        let ours = name.eq_case(&self.key.name.to_lowercase())
            && tsig.algorithm == algorithm(self.key.algorithm);
        if !ours {
            return Err("signed with another key");
        }
        if tsig.mac.len() != mac_len(self.key.algorithm) {
            return Err("a truncated or malformed signature");
        }
        if let Some(e) = tsig.error {
            return Err(error_name(e));
        }
        let mut signed = strip(reply, at);
        signed[..2].copy_from_slice(&tsig.oid.to_be_bytes());
        let mut vars = Vec::new();
        if self.first {
            let _ = tsig.emit_tsig_for_mac(&mut BinEncoder::new(&mut vars), &name);
        } else {
            vars.extend_from_slice(&tsig.time.to_be_bytes()[2..]);
            vars.extend_from_slice(&tsig.fudge.to_be_bytes());
        }
        let prior_len = (self.prior.len() as u16).to_be_bytes();
        let parts: [&[u8]; 5] = [&prior_len, &self.prior, &self.unsigned, &signed, &vars];
        if !verify(&self.key, &parts, &tsig.mac) {
            return Err("the signature does not match (another secret?)");
        }
        if now.abs_diff(tsig.time) > u64::from(tsig.fudge) {
            return Err("the signature's time is off by more than the fudge (clocks apart?)");
        }
        self.prior = tsig.mac;
        self.first = false;
        self.unsigned.clear();
        self.unsigned_count = 0;
        Ok(true)
    }

    /// Whether the messages so far end signed (the last one of a transfer must be).
    pub fn settled(&self) -> bool {
        !self.first && self.unsigned_count == 0
    }
}

/// Where the last record of a message starts (a reply's TSIG), walking its sections.
fn last_record(m: &[u8]) -> Option<usize> {
    let count = |at: usize| u16::from_be_bytes([m[at], m[at + 1]]) as usize;
    if m.len() < HEADER_LEN {
        return None;
    }
    let mut at = HEADER_LEN;
    for _ in 0..count(4) {
        at = skip_name(m, at)? + 4; // name, type, class
    }
    let records = count(6) + count(8) + count(10);
    let mut last = None;
    for _ in 0..records {
        last = Some(at);
        at = skip_name(m, at)?;
        let rdlen = usize::from(u16::from_be_bytes([*m.get(at + 8)?, *m.get(at + 9)?]));
        at += 10 + rdlen;
    }
    (at == m.len()).then_some(last).flatten()
}

fn algorithm(a: TsigAlgorithm) -> Algorithm {
    match a {
        TsigAlgorithm::HmacSha256 => Algorithm::HmacSha256,
        TsigAlgorithm::HmacSha384 => Algorithm::HmacSha384,
        TsigAlgorithm::HmacSha512 => Algorithm::HmacSha512,
    }
}

fn mac_len(a: TsigAlgorithm) -> usize {
    match a {
        TsigAlgorithm::HmacSha256 => 32,
        TsigAlgorithm::HmacSha384 => 48,
        TsigAlgorithm::HmacSha512 => 64,
    }
}

fn hmac_of<M: Mac + hmac::digest::KeyInit>(secret: &[u8], parts: &[&[u8]]) -> M {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret)
        .expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac
}

fn compute(a: TsigAlgorithm, secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match a {
        TsigAlgorithm::HmacSha256 => hmac_of::<Hmac<sha2::Sha256>>(secret, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
        TsigAlgorithm::HmacSha384 => hmac_of::<Hmac<sha2::Sha384>>(secret, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
        TsigAlgorithm::HmacSha512 => hmac_of::<Hmac<sha2::Sha512>>(secret, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
    }
}

/// Whether `tag` is the MAC of `parts` under `key` (constant time; a truncated `tag` is
/// compared with the MAC's leading bytes).
fn verify(key: &Key, parts: &[&[u8]], tag: &[u8]) -> bool {
    let secret = &key.secret;
    match key.algorithm {
        TsigAlgorithm::HmacSha256 => {
            hmac_of::<Hmac<sha2::Sha256>>(secret, parts).verify_truncated_left(tag)
        }
        TsigAlgorithm::HmacSha384 => {
            hmac_of::<Hmac<sha2::Sha384>>(secret, parts).verify_truncated_left(tag)
        }
        TsigAlgorithm::HmacSha512 => {
            hmac_of::<Hmac<sha2::Sha512>>(secret, parts).verify_truncated_left(tag)
        }
    }
    .is_ok()
}

/// The name of a TSIG error as logs and metrics spell it.
pub fn error_name(e: TsigError) -> &'static str {
    match e {
        TsigError::BadSig => "BADSIG",
        TsigError::BadKey => "BADKEY",
        TsigError::BadTime => "BADTIME",
        TsigError::BadTrunc => "BADTRUNC",
        TsigError::Unknown(_) => "other",
    }
}

/// What an operator should look at for each TSIG error.
pub fn advice(error: &str) -> &'static str {
    match error {
        "BADKEY" => "the client's key name or algorithm is not one of [[transfer.key]]",
        "BADSIG" => "the client's secret for this key differs from the key's secret_file",
        "BADTIME" => "the client's clock is off by more than 300 s (check NTP on both sides)",
        _ => "truncated MACs are not accepted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn ring() -> Keyring {
        Keyring::new(&[TsigKey {
            name: Name::from_ascii("xfr.").unwrap(),
            algorithm: TsigAlgorithm::HmacSha256,
            // base64 of 32 bytes of 0x01
            secret: Secret::new("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="),
        }])
    }

    /// A SOA query for `backhaul.`, id 7.
    fn query() -> Vec<u8> {
        let mut q = vec![0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x08backhaul\x00\x00\x06\x00\x01");
        q
    }

    /// `query` signed as a client would: the signer for a message we start.
    fn signed(keys: &Keyring, name: &str) -> (Vec<u8>, usize) {
        let mut q = query();
        let at = q.len();
        keys.signer(&Name::from_ascii(name).unwrap())
            .unwrap()
            .sign(&mut q);
        (q, at)
    }

    #[test]
    fn a_signed_request_checks_and_its_reply_verifies() {
        let keys = ring();
        let (q, at) = signed(&keys, "xfr.");
        let now = crate::clock::unix_now();
        let Checked::Valid {
            unsigned,
            mut signer,
            ..
        } = check(&keys, &q, at, now)
        else {
            panic!("a good signature is refused");
        };
        assert_eq!(unsigned, query());
        // The reply, signed over the request's MAC, verifies as a client would check it.
        let mut client = keys.signer(&Name::from_ascii("xfr.").unwrap()).unwrap();
        let mut again = query();
        client.sign(&mut again);
        assert_eq!(again, q, "same key, same time, same bytes");
        let mut reply = unsigned.clone();
        reply[2] |= 0x80;
        signer.sign(&mut reply);
        assert!(client.verify_reply(&reply));
        // A byte changed anywhere breaks it.
        let mut bad = reply.clone();
        bad[5] ^= 1;
        assert!(!client.verify_reply(&bad));
    }

    #[test]
    fn errors_follow_rfc_8945_5_2() {
        let keys = ring();
        let now = crate::clock::unix_now();
        let (mut q, at) = signed(&keys, "xfr.");
        // Another key name: BADKEY, unsigned.
        let other = Keyring::new(&[TsigKey {
            name: Name::from_ascii("other.").unwrap(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: Secret::new("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="),
        }]);
        match check(&other, &q, at, now) {
            Checked::Failed { error, reply, .. } => {
                assert_eq!(error, TsigError::BadKey);
                assert_eq!(reply[3] & 0xf, 9, "NOTAUTH");
            }
            _ => panic!("an unknown key passes"),
        }
        // A changed byte: BADSIG.
        q[HEADER_LEN + 1] ^= 0x20;
        assert!(matches!(
            check(&keys, &q, at, now),
            Checked::Failed {
                error: TsigError::BadSig,
                ..
            }
        ));
        // Out of the fudge: BADTIME, signed, our time in Other Data.
        let (q, at) = signed(&keys, "xfr.");
        match check(&keys, &q, at, now + u64::from(FUDGE) + 10) {
            Checked::Failed { error, reply, .. } => {
                assert_eq!(error, TsigError::BadTime);
                let tsig_at = last_record(&reply).unwrap();
                let (_, tsig) = read_tsig(&reply, tsig_at).unwrap();
                assert_eq!(tsig.mac.len(), 32, "signed");
                assert_eq!(tsig.other.len(), 6);
            }
            _ => panic!("a stale time passes"),
        }
        // Garbage in the TSIG RDATA: FORMERR.
        let (mut q, at) = signed(&keys, "xfr.");
        q.truncate(q.len() - 3);
        assert!(matches!(check(&keys, &q, at, now), Checked::Malformed));
    }

    #[test]
    fn later_messages_chain_to_the_one_before() {
        let keys = ring();
        let (q, at) = signed(&keys, "xfr.");
        let Checked::Valid { mut signer, .. } = check(&keys, &q, at, crate::clock::unix_now())
        else {
            panic!()
        };
        let mut first = query();
        first[2] |= 0x80;
        signer.sign(&mut first);
        let mac_first = signer.prior.clone();
        let mut second = query();
        second[2] |= 0x80;
        signer.sign(&mut second);
        // The second MAC covers the first: recompute it by hand from RFC 8945 5.3.1.
        let tsig_at = last_record(&second).unwrap();
        let (_, tsig) = read_tsig(&second, tsig_at).unwrap();
        let body = strip(&second, tsig_at);
        let mut timers = tsig.time.to_be_bytes()[2..].to_vec();
        timers.extend_from_slice(&FUDGE.to_be_bytes());
        let want = compute(
            TsigAlgorithm::HmacSha256,
            &[1u8; 32],
            &[
                &(mac_first.len() as u16).to_be_bytes(),
                &mac_first,
                &body,
                &timers,
            ],
        );
        assert_eq!(tsig.mac, want);
    }
}
