//! The integration tests: the real `backhaul-dns` binary against fakes on loopback or in
//! network namespaces the tests build. One test binary, one module per area; the harness
//! (fake Central, fake upstream, the server process, DNS clients, namespaces) is `common`.

#![allow(clippy::unwrap_used)]

// Fake Central, fake upstream resolver, the server process, DNS clients, network namespaces.
mod common;

// certbot's dns-rfc2136 plugin against a real ACME server (pebble), through UPDATE.
mod acme;
// RFC 2136 UPDATE with nsupdate and knsupdate, NSD taking the changes by IXFR.
mod updates;
// RFC 9432 catalog zone: a real Knot follows every zone through it alone.
mod catalog;
// `check` and `zone` as an operator runs them.
mod cli;
// `[log] dnstap`: every exchange to a real dnstap reader, which may come and go.
mod dnstap;
// `[follow]`: a second backhaul-dns serving the first one's zones by IXFR and NOTIFY.
mod follow;
// DNS over TLS and HTTPS upstreams, against a real unbound with a test CA.
mod encrypted;
// The systemd unit passes `systemd-analyze verify`.
mod deploy;
// What resolvers and the RFCs expect of an authoritative answer, over UDP and TCP.
mod dns_behaviour;
// Other names resolved for allowed clients through a fake upstream.
mod forward;
// The fuzz targets' corpora and regressions, replayed on stable.
mod fuzz_corpora;
// Hostile input gets nowhere: floods, slow clients, rebinding, what members can make us do.
mod hostile;
// `[http]`: /healthz, /readyz, /metrics, the query log, `health`.
mod http;
// Member names and addresses as served: every naming rule.
mod naming;
// Answers as NSD gives them, side by side on the same zone.
mod parity;
// Answering only on the ZeroTier interface, in network namespaces.
mod netns;
// push_dns: Central's DNS settings pointed at this server, when asked.
mod push_dns;
// `[records] zone_file`: extra records, CNAME chasing, wildcards, overrides, bad files.
mod records;
// Live reload of the config, records and members files; SIGHUP; rejected edits.
mod reload;
// `[[scope]]`: who sees which names, by ZeroTier tag, in network namespaces.
mod scopes;
// Last good snapshot: a restart during an API outage still serves.
mod snapshot;
// A self-hosted controller, several networks in one process, polite pacing.
mod sources;
// `[public]`: the split-horizon view.
mod split_horizon;
// Real NSD and Knot secondaries: TSIG, IXFR, a restart of the primary, a wrong key.
mod secondaries;
// The same request gets the same bytes over UDP and TCP.
mod transports;
// `[[service]]`: names for roles by tag, glob and description; aliases; TCP health checks.
mod services;
// The status page in headless Chromium, /api/v1/names, /hosts and `backhaul-dns hosts`.
mod status_page;
// Syncing: changes propagate; every failure keeps the last good zone.
mod sync;
// Zone transfers and NOTIFY, with a real NSD secondary.
mod transfer;
// Central webhooks: verified events sync at once, others get 401.
mod webhook;
// Zone files read as NSD reads them: the same file answers the same in NSD and here.
mod zone_files;
