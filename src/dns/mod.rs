//! DNS serving: the compiled zone ([`index`]), request parsing ([`wire`]), the answer logic
//! ([`answer`]), who may ask ([`access`]), the UDP/TCP listeners ([`listen`], batched UDP in
//! [`udp`]) and zone transfers
//! ([`transfer`]) and forwarding of other names ([`forward`]).

pub mod access;
pub mod answer;
pub mod forward;
pub mod index;
pub mod listen;
mod table;
pub mod transfer;
pub mod udp;
pub mod wire;

use std::sync::Arc;

use arc_swap::ArcSwap;

pub use index::ZoneIndex;

/// The zone every listener reads; a sync replaces it whole with one atomic pointer swap.
pub type SharedZone = Arc<ArcSwap<ZoneIndex>>;
