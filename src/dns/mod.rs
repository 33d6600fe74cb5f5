//! DNS serving: the compiled zone ([`index`], its hash table in `table`, the [`rrset`]s it
//! hands out), request parsing ([`wire`]), the one request path ([`request`]: what a request
//! gets, whatever the transport) under the [`rules`] a reload may change, the answer logic
//! ([`answer`]), who may ask ([`access`]), what every listener of a view shares
//! ([`context`]), the service names' live answers ([`live`]), serving by transport ([`udp`]
//! with batched system calls, [`tcp`]), response rate limiting over UDP ([`ratelimit`]),
//! binding and following addresses ([`listen`]), zone transfers ([`transfer`]), NOTIFY ([`notify`]),
//! TSIG ([`tsig`]), forwarding of other names ([`forward`]) and dnstap ([`tap`]).

pub mod access;
pub mod answer;
pub mod context;
pub mod forward;
pub mod index;
pub mod listen;
pub mod live;
pub mod notify;
pub mod ratelimit;
pub mod request;
pub mod rrset;
pub mod rules;
mod table;
pub mod tap;
pub mod tcp;
pub mod transfer;
pub mod tsig;
pub mod udp;
pub mod update;
pub mod wire;

use std::sync::Arc;

use arc_swap::ArcSwap;

pub use index::ZoneIndex;

/// The zone every listener reads; a sync replaces it whole with one atomic pointer swap.
pub type SharedZone = Arc<ArcSwap<ZoneIndex>>;
