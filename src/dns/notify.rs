//! NOTIFY (RFC 1996) to `[transfer] notify` when a zone's serial changes: [`Notifier`]
//! remembers the serial each zone was announced with and tells the secondaries when one
//! moves, each message signed with the target's key. NOTIFYs a follower takes in from its
//! primary go through an [`Inbox`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::tsig::Keyring;
use crate::config::{self, NotifyTarget};
use crate::dname::{flags, name_wire, opcode, rtype, wire_to_text, HEADER_LEN};
use crate::once::LogOnce;
use crate::zone::Zones;

/// A secondary's refusal of one zone's NOTIFY, with its RCODE: logged once.
type Refusals = LogOnce<(SocketAddr, Vec<u8>, u8)>;

/// NOTIFYs taken in: the apexes (lowercase wire form) the primary announced, for the
/// follower to check. Bounded: a burst beyond what the follower has yet to look at is
/// dropped, as the checks it already owes cover it.
#[derive(Clone)]
pub struct Inbox(tokio::sync::mpsc::Sender<Vec<u8>>);

/// How many announced zones may wait for the follower.
const INBOX: usize = 256;

impl Inbox {
    /// The inbox, and where the follower reads it.
    pub fn new() -> (Inbox, tokio::sync::mpsc::Receiver<Vec<u8>>) {
        let (tx, rx) = tokio::sync::mpsc::channel(INBOX);
        (Inbox(tx), rx)
    }

    pub fn tell(&self, apex: &[u8]) {
        let _ = self.0.try_send(apex.to_vec());
    }
}

/// Whom to tell about new serials, and what they were last told.
pub struct Notifier {
    runtime: tokio::runtime::Handle,
    targets: Vec<NotifyTarget>,
    /// Decoded once per configuration.
    keys: Arc<Keyring>,
    /// The last serial of every zone, to NOTIFY secondaries when it moves.
    serials: HashMap<String, u32>,
    refusals: Arc<Refusals>,
}

impl Notifier {
    /// Sends from tasks on `runtime`; nobody to tell until [`Notifier::configure`].
    pub fn new(runtime: tokio::runtime::Handle) -> Notifier {
        Notifier {
            runtime,
            targets: Vec::new(),
            keys: Arc::default(),
            serials: HashMap::new(),
            refusals: Arc::default(),
        }
    }

    /// `[transfer] notify` and the keys to sign with, from a (re)loaded configuration.
    pub fn configure(&mut self, transfer: &config::Transfer) {
        self.targets = transfer.notify.clone();
        self.keys = Arc::new(Keyring::new(&transfer.keys));
    }

    /// The zones just published: every complete zone whose serial moved is announced.
    pub fn published(&mut self, zones: &Zones) {
        for z in zones.zones.iter().filter(|z| z.complete) {
            let moved = self.serials.insert(z.apex.to_ascii(), z.serial) != Some(z.serial);
            if moved && !self.targets.is_empty() {
                let (apex, targets) = (name_wire(&z.apex), self.targets.clone());
                let (keys, refusals) = (self.keys.clone(), self.refusals.clone());
                let _guard = self.runtime.enter();
                send(apex, targets, keys, refusals);
            }
        }
    }
}

/// Sends NOTIFY for the zone `apex` (lowercase wire name) to every target, signed with the
/// target's key when it has one, retrying each up to three times until it answers (RFC 1996
/// 4.7).
fn send(apex: Vec<u8>, targets: Vec<NotifyTarget>, keys: Arc<Keyring>, refusals: Arc<Refusals>) {
    for target in targets {
        let refusals = refusals.clone();
        let apex = apex.clone();
        let mut signer = target.key.as_ref().and_then(|k| keys.signer(k));
        tokio::spawn(async move {
            let id: u16 = rand::random();
            let mut msg = id.to_be_bytes().to_vec();
            msg.extend_from_slice(&((u16::from(opcode::NOTIFY) << 11) | flags::AA).to_be_bytes());
            msg.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
            msg.extend_from_slice(&apex);
            msg.extend_from_slice(&rtype::SOA.to_be_bytes());
            msg.extend_from_slice(&1u16.to_be_bytes());
            if let Some(s) = signer.as_mut() {
                s.sign(&mut msg);
            }
            let name = wire_to_text(&apex);
            let target = target.address;
            for attempt in 1..=3 {
                match notify_once(&msg, id, target).await {
                    Ok(reply) => {
                        let rcode = reply[3] & 0xf;
                        if rcode != 0 {
                            // Once per secondary, zone and answer: a secondary that does not
                            // carry a zone refuses its NOTIFY at every change.
                            if refusals.first((target, apex.clone(), rcode)) {
                                tracing::warn!(zone = %name, %target,
                                    rcode = crate::metrics::rcode_name(u16::from(rcode)),
                                    "secondary refused our NOTIFY: it does not serve this zone from us (then ignore this), or does not accept the key we sign with (NOTAUTH); it still refreshes on its SOA timer");
                            }
                        } else if signer.as_ref().is_some_and(|s| !s.verify_reply(&reply)) {
                            tracing::warn!(zone = %name, %target,
                                "secondary acknowledged NOTIFY without a valid signature of our key");
                        } else {
                            tracing::debug!(zone = %name, %target, "NOTIFY acknowledged");
                        }
                        return;
                    }
                    Err(e) if attempt == 3 => tracing::warn!(zone = %name, %target, error = %e,
                        "secondary did not acknowledge NOTIFY; it will still refresh on its SOA timer"),
                    Err(_) => {}
                }
            }
        });
    }
}

/// Sends `msg` to `target` and waits up to 2 s for the reply with its id.
async fn notify_once(msg: &[u8], id: u16, target: SocketAddr) -> std::io::Result<Vec<u8>> {
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().expect("valid")
    } else {
        "[::]:0".parse().expect("valid")
    };
    let sock = tokio::net::UdpSocket::bind(bind).await?;
    sock.connect(target).await?;
    sock.send(msg).await?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))??;
        if n >= HEADER_LEN && buf[..2] == id.to_be_bytes() && buf[2] & 0x80 != 0 {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}
