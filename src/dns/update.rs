//! RFC 2136 UPDATE between the transports and the zone builder: a request signed with a
//! valid key is handed over as an [`UpdateJob`]; the builder applies it (or not) and says
//! with which RCODE; the reply is then written, signed, and sent. Only what decides the
//! change is elsewhere ([`crate::zone::update`], the builder).

use std::time::Duration;

use hickory_proto::rr::Name;
use tokio::sync::{mpsc, oneshot};

use super::answer::{reply_to, Rcode, Transport};
use super::tsig::Signer;
use super::wire;
use crate::view::View;

/// How long a client waits for the builder: past this, SERVFAIL (the update may still be
/// applied; the client's retry then finds it done, as prerequisites let it check).
const WAIT: Duration = Duration::from_secs(10);

/// An UPDATE signed with a valid key, waiting to be applied and answered.
pub struct PendingUpdate {
    /// The request without its TSIG.
    pub message: Vec<u8>,
    pub key: Name,
    pub view: View,
    pub signer: Signer,
    pub transport: Transport,
}

impl std::fmt::Debug for PendingUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingUpdate")
            .field("key", &self.key)
            .field("view", &self.view)
            .finish_non_exhaustive()
    }
}

impl PartialEq for PendingUpdate {
    fn eq(&self, other: &PendingUpdate) -> bool {
        (&self.message, &self.key, self.view) == (&other.message, &other.key, other.view)
    }
}

impl Eq for PendingUpdate {}

/// One update for the builder: `done` gets the RCODE it was answered with.
pub struct UpdateJob {
    pub view: View,
    pub key: Name,
    pub message: Vec<u8>,
    pub done: oneshot::Sender<u16>,
}

/// Where the transports hand updates to the builder.
#[derive(Clone)]
pub struct Updater(mpsc::Sender<UpdateJob>);

/// Updates waiting for the builder at most; more get SERVFAIL at once.
const QUEUE: usize = 256;

impl Updater {
    pub fn new() -> (Updater, mpsc::Receiver<UpdateJob>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Updater(tx), rx)
    }
}

/// Applies `pending` through the builder (`updater`: the context's) and returns the signed
/// reply.
pub async fn answer(updater: Option<&Updater>, pending: PendingUpdate) -> Vec<u8> {
    let rcode = match updater {
        Some(updater) => {
            let (done, result) = oneshot::channel();
            let job = UpdateJob {
                view: pending.view,
                key: pending.key.clone(),
                message: pending.message.clone(),
                done,
            };
            match updater.0.try_send(job) {
                Ok(()) => match tokio::time::timeout(WAIT, result).await {
                    Ok(Ok(rcode)) => rcode,
                    _ => Rcode::ServFail as u16,
                },
                Err(_) => Rcode::ServFail as u16,
            }
        }
        None => Rcode::Refused as u16,
    };
    let mut out = Vec::new();
    if let Ok(req) = wire::parse(&pending.message) {
        reply_to(
            &req,
            Rcode::from_u16(rcode),
            pending.transport,
            false,
            &mut out,
        );
    }
    let mut signer = pending.signer;
    signer.sign(&mut out);
    out
}
