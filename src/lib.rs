//! backhaul-dns: authoritative DNS for a ZeroTier backhaul network.
//!
//! ZeroTier members (names and addresses, from Central or a file) become an in-memory zone
//! that is answered over UDP and TCP on this host's ZeroTier addresses only.
//!
//! # Layout
//!
//! - [`cli`]: command-line definitions.
//! - [`config`]: the TOML file -> validated [`config::Config`]; every config error is one line.
//! - [`zerotier`]: API models, the Central client and the members-file source; each produces a
//!   plain [`zerotier::NetworkSnapshot`].
//! - [`names`]: **where a member becomes a name**: label rules and the collision rule.
//! - [`reverse`]: PTR owner names and reverse-zone apexes.
//! - [`records`]: the `[records]` and `[public]` zone files (RFC 1035), checked line by line.
//! - [`zone`]: snapshots + records files -> zones of each view (pure), SOA serials; each zone's
//!   records in wire form in one buffer ([`zone::RecordList`]).
//! - [`snapshot`]: the last good member data per network, so restarts survive API outages.
//! - [`sync`]: **where a sync happens**: poll each network, rebuild, swap the zones atomically.
//! - [`background`]: the low-priority thread member lists are parsed on; [`memory`]: how
//!   freed memory goes back to the system after a sync.
//! - [`watch`]: watched files (config, zone files, members files) -> reloads and syncs.
//! - [`interfaces`]: which addresses to answer on (interface glob, local zerotier-one service,
//!   or a fixed list), asked again every few seconds.
//! - [`webhook`]: ZeroTier Central webhooks that trigger an immediate sync.
//! - [`metrics`]: what the server counts (queries, syncs, reloads) and readiness.
//! - [`http`]: `/healthz`, `/readyz` and `/metrics` for operators.
//! - [`dns`]: **where a query is answered**: the compiled zone index, the answer logic (CNAME
//!   chains, wildcards), the UDP/TCP listeners of each view, transfers and forwarding.
//! - [`run`]: wires the pieces together for each subcommand; reloads the configuration.
//!
//! # Why the query path is our own
//!
//! hickory-proto supplies names, record types and RDATA encoding. Answers, though, come from
//! [`dns::ZoneIndex`], an immutable hash index built once per sync with every RRset already in
//! wire form, and not from hickory-server's catalog. Measured on this project's machines
//! (shared/hickory-0.26-notes.md), that catalog scans every record set on a miss (about 600 µs
//! per NXDOMAIN at 10,000 names) and is updated under a lock that stalls queries during a
//! sync. Here a lookup is a few hash probes whatever the zone size, and a sync swaps one pointer.

pub mod background;
pub mod clock;
pub mod dname;
pub mod ids;
pub mod secret;
pub mod view;
pub mod cli;
pub mod config;
pub mod dns;
pub mod http;
pub mod interfaces;
pub mod memory;
pub mod metrics;
pub mod names;
pub mod records;
pub mod reverse;
pub mod run;
pub mod state;
pub mod sync;
pub mod watch;
pub mod webhook;
pub mod zerotier;
pub mod zone;
