//! backhaul-dns: authoritative DNS for a ZeroTier backhaul network.
//!
//! ZeroTier members (names and addresses, from Central, a self-hosted controller or a file)
//! become an in-memory zone that is answered over UDP and TCP on this host's ZeroTier
//! addresses only.
//!
//! # Where to start
//!
//! - What a request gets is decided in [`dns::request`] (whatever the transport: UDP in
//!   [`dns::udp`], TCP in [`dns::tcp`] only move bytes); a query is answered from the zone in
//!   [`dns::answer`].
//! - A member becomes a name in [`names`]; its records are made in [`zone`].
//! - A service name learns who is up in [`services`].
//! - A sync happens in [`sync`]: [`sync::poller`] fetches, [`sync::builder`] builds,
//!   [`sync::publish`] swaps.
//! - An RFC 2136 UPDATE is worked out in [`zone::update`] and applied by the builder; a
//!   follower (`[follow]`) takes its primary's zones in [`follow`].
//!
//! # Layers
//!
//! Each module imports only from its own layer or the layers below it; nothing imports from a
//! layer above.
//!
//! 1. **Ground floor: shared vocabulary**, importing nothing of ours (but [`lock`], which
//!    [`once`] and [`places`] use).
//!    - [`dname`]: DNS names as lowercase wire bytes (labels, parents) and every DNS constant.
//!    - [`presentation`]: record types and RDATA as zone files write them, both ways.
//!    - [`ids`]: ZeroTier network and node ids. [`secret`]: tokens that never print.
//!    - [`view`]: backhaul or public side of split horizon. [`clock`]: Unix time.
//!    - [`cli`]: command-line definitions. [`background`]: the low-priority thread member
//!      lists are parsed on. [`memory`]: freed memory back to the system after a sync.
//!    - [`reverse`]: PTR owner names and reverse-zone apexes.
//!    - [`lock`]: the one lock policy (no panic on a poisoned lock). [`once`]: log a repeated
//!      condition once. [`places`]: connections held per client and in all.
//! 2. **Data**: plain values in, plain values out.
//!    - [`config`]: the TOML file -> validated [`config::Config`]; every error is one line.
//!    - [`zerotier`]: API models and clients (Central, controller, local service, members
//!      file); each produces a plain [`zerotier::NetworkSnapshot`]. Takes plain values, not
//!      the config.
//!    - [`metrics`]: what the server counts (queries, syncs, reloads) and readiness.
//!    - [`names`]: member name -> labels, reserved names, the collision rule, aliases. Pure.
//!    - [`records`]: the `[records]` and `[public]` zone files, checked line by line.
//!    - [`zone`]: snapshots + records files -> the zones of each view, serials, master-file
//!      text, which members each `[[service]]` has ([`zone::services`]), who sees what
//!      ([`zone::scopes`]), the catalog zone, the IXFR journal's differences
//!      ([`zone::journal`]), and what an RFC 2136 UPDATE changes ([`zone::update`]). Pure.
//!    - [`state`]: everything under `state_dir` (snapshots, serial books, IXFR journals,
//!      followed zones, records updates wrote, atomic writes).
//!    - [`interfaces`]: which addresses to answer on. [`watch`]: watched files -> reloads.
//! 3. **Serving and syncing**.
//!    - [`dns`]: the compiled zone index, the one request path ([`dns::request`]) under the
//!      [`dns::rules`] a reload swaps, the answer logic, the listeners of each view, transfers
//!      (AXFR, IXFR), NOTIFY, TSIG ([`dns::tsig`]), forwarding (plain, TLS, HTTPS),
//!      dnstap ([`dns::tap`]), and UPDATEs handed to the builder ([`dns::update`]).
//!    - [`sync`]: pollers, the builder thread (which also applies UPDATEs), publishing.
//!    - [`follow`]: a follower's transfers from its primary ([`follow::xfr`]), refresh and
//!      expire timers, NOTIFY, the primary's catalog; its zones go to [`sync`].
//!    - [`services`]: health checks of service names and their live answers, swapped apart
//!      from the zone index.
//!    - [`http`]: the status page, `/api/v1/names`, `/hosts`, `/healthz`, `/readyz` and
//!      `/metrics`, behind the connection guards of [`http::conn`]. [`webhook`]: Central
//!      webhooks that trigger a sync.
//! 4. **Top**: [`run`] wires the pieces for each subcommand, reloads the configuration and
//!    owns the one shutdown path; `main.rs` turns the outcome into an exit code.
//!
//! # Why the query path is our own
//!
//! hickory-proto supplies names, record types and RDATA encoding. Answers, though, come from
//! [`dns::ZoneIndex`], an immutable hash index built once per sync with every RRset already in
//! wire form, and not from hickory-server's catalog. Measured on this project's machines, that
//! catalog scans every record set on a miss (about 600 µs per NXDOMAIN at 10,000 names) and is
//! updated under a lock that stalls queries during a sync. Here a lookup is a few hash probes
//! whatever the zone size, and a sync swaps one pointer (`cargo bench --bench answer`).

pub mod background;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dname;
pub mod dns;
pub mod follow;
pub mod http;
pub mod ids;
pub mod interfaces;
pub mod lock;
pub mod memory;
pub mod metrics;
pub mod names;
pub mod once;
pub mod places;
pub mod presentation;
pub mod records;
pub mod reverse;
pub mod run;
pub mod secret;
pub mod services;
pub mod state;
pub mod sync;
pub mod view;
pub mod watch;
pub mod webhook;
pub mod zerotier;
pub mod zone;
