//! What every listener of one view shares ([`Context`]): the zone, the current [`Rules`], the
//! counters, the places for TCP connections and forwarded queries, and the shutdown signal.
//! What a request gets is decided in [`super::request`]; this holds what that decision and
//! the transports act on, among them the forwarding path ([`Context::forwarded`]), one
//! function for both transports.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::answer::{reply_with, Policy, Rcode, Transport};
use super::ratelimit::{Kind, Verdict};
use super::rules::Rules;
use super::transfer;
use super::wire::{self, Request};
use super::SharedZone;
use crate::dname::wire_to_text;
use crate::metrics::{rcode_name, Telemetry};
use crate::once::LogOnce;
use crate::places::{Place, Places};
use crate::view::View;

/// Forwarded UDP queries waiting for upstreams at once; beyond this, SERVFAIL at once.
const FORWARD_MAX_IN_FLIGHT: usize = 1024;
/// The idle time and write timeout of TCP connections while more than half the places are
/// taken.
const BUSY_IDLE: Duration = Duration::from_secs(1);

/// What every listener of one view shares.
pub struct Context {
    pub view: View,
    pub zone: SharedZone,
    /// How requests are handled now: replaced whole on reload and when the listening
    /// addresses change ([`Context::set_rules`]).
    rules: ArcSwap<Rules>,
    /// Problems with one source that were logged (once each): TSIG failures, unsigned
    /// transfers.
    reported: LogOnce<(IpAddr, &'static str)>,
    /// Bounds forwarded UDP queries in flight, so a flood cannot pile up tasks.
    pub forward_slots: Semaphore,
    pub telemetry: Arc<Telemetry>,
    /// Forwarded queries and TCP connections under way, awaited at shutdown so that queries
    /// in flight are answered.
    pub tasks: TaskTracker,
    /// Cancelled at shutdown: listeners stop taking new queries.
    pub shutdown: CancellationToken,
    /// TCP connections open now, in all and per client.
    tcp: Places,
    /// `[log] dnstap`: every exchange reported, when set ([`Context::with_tap`]).
    pub tap: Option<crate::dns::tap::Tap>,
    /// A follower's NOTIFYs from its primary go here ([`Context::with_inbox`]).
    inbox: Option<super::notify::Inbox>,
    /// UPDATEs go to the builder through here ([`Context::with_updater`]).
    updater: Option<super::update::Updater>,
}

impl Context {
    pub fn new(
        zone: SharedZone,
        rules: Rules,
        telemetry: Arc<Telemetry>,
        shutdown: CancellationToken,
    ) -> Context {
        Context {
            view: rules.view,
            zone,
            rules: ArcSwap::from_pointee(rules),
            reported: LogOnce::default(),
            forward_slots: Semaphore::new(FORWARD_MAX_IN_FLIGHT),
            telemetry,
            tasks: TaskTracker::new(),
            shutdown,
            tcp: Places::default(),
            tap: None,
            inbox: None,
            updater: None,
        }
    }

    /// This context handing signed UPDATEs to the builder through `updater`.
    pub fn with_updater(mut self, updater: Option<super::update::Updater>) -> Context {
        self.updater = updater;
        self
    }

    pub fn updater(&self) -> Option<&super::update::Updater> {
        self.updater.as_ref()
    }

    /// An unsigned UPDATE: refused, logged once per source.
    pub fn unsigned_update(&self, client: IpAddr) {
        if self.reported.first((client, "unsigned update")) {
            tracing::warn!(%client,
                "refused an unsigned UPDATE: updates must be signed with a key an [[update]] table names (nsupdate -y / -k, certbot's dns_rfc2136_name)");
        }
    }

    /// An UPDATE signed with a valid key no `[[update]]` of this view names.
    pub fn update_key_not_allowed(&self, client: IpAddr, key: &Name) {
        if self.reported.first((client, "update key")) {
            tracing::warn!(%client, key = %key, view = self.view.name(),
                "refused an UPDATE signed with a key no [[update]] table of this view names");
        }
    }

    /// This context handing the NOTIFYs of a follower's primary to `inbox`.
    pub fn with_inbox(mut self, inbox: Option<super::notify::Inbox>) -> Context {
        self.inbox = inbox;
        self
    }

    /// The primary announced a new version of the zone `apex` (lowercase wire form).
    pub fn notified(&self, apex: &[u8]) {
        if let Some(inbox) = &self.inbox {
            inbox.tell(apex);
        }
    }

    /// A NOTIFY from someone other than the followed primary: refused, logged once per
    /// source.
    pub fn notify_refused(&self, client: IpAddr) {
        if self.reported.first((client, "notify")) {
            tracing::warn!(%client,
                "refused a NOTIFY: only the [follow] primary's are taken (from its address, unsigned or signed with the [follow] key)");
        }
    }

    /// This context reporting every exchange to `tap`.
    pub fn with_tap(mut self, tap: Option<crate::dns::tap::Tap>) -> Context {
        self.tap = tap;
        self
    }

    /// A context of its own under `rules` (an empty zone, its own counters, never shut down):
    /// for callers outside a running server, such as the fuzz targets and benchmarks, which
    /// hand the zone to [`super::request::handle`] themselves.
    pub fn standalone(rules: Rules) -> Context {
        Context::new(
            Arc::default(),
            rules,
            Arc::default(),
            CancellationToken::new(),
        )
    }

    /// The rules in effect now.
    pub fn rules(&self) -> arc_swap::Guard<Arc<Rules>> {
        self.rules.load()
    }

    /// The rules in effect now, to keep across an await (a TCP connection, a forward).
    pub fn rules_full(&self) -> Arc<Rules> {
        self.rules.load_full()
    }

    /// Puts new rules in effect for the next request.
    pub fn set_rules(&self, rules: Rules) {
        self.rules.store(Arc::new(rules));
    }

    /// A place for a new TCP connection from `client`, unless all are taken or this client
    /// holds its share already (then the connection is closed at once). While more than half
    /// the places are taken, a client's share is a quarter of `tcp_per_client`: a few
    /// addresses together cannot hold every place (RFC 7766 6.2.3: fewer, shorter
    /// connections under load).
    pub fn tcp_slot(&self, client: IpAddr) -> Option<Place> {
        let limits = self.rules.load().tcp;
        let share = if self.busy(limits.connections) {
            (limits.per_client / 4).max(1)
        } else {
            limits.per_client
        };
        self.tcp.take(client, limits.connections, share)
    }

    fn busy(&self, connections: usize) -> bool {
        self.tcp.total() * 2 > connections
    }

    /// How long writing one answer may take: `tcp_write_timeout`, cut to a second while busy
    /// (a client that does not read its answers is dropped sooner when others wait).
    pub fn tcp_write_timeout(&self) -> Duration {
        let limits = self.rules.load().tcp;
        if self.busy(limits.connections) {
            limits.write_timeout.min(BUSY_IDLE)
        } else {
            limits.write_timeout
        }
    }

    /// How long a connection may wait for its next query: the configured idle time, cut to
    /// a second once more than half the places are taken (RFC 7766 6.2.3: shorter timeouts
    /// under load), so that idle clients make room.
    pub fn tcp_idle(&self) -> Duration {
        let limits = self.rules.load().tcp;
        if self.busy(limits.connections) {
            limits.idle.min(BUSY_IDLE)
        } else {
            limits.idle
        }
    }

    /// Counts an answered query and, with `[log] queries`, logs it.
    pub fn answered(&self, query: &[u8], response: &[u8], client: SocketAddr, started: Instant) {
        let took = started.elapsed();
        let (qtype, rcode) = summary(query, response);
        self.telemetry.query(self.view, qtype, rcode, took);
        if self.rules.load().log_queries {
            self.log_query(query, response, client, took);
        }
    }

    /// One line of the query log (`[log] queries`).
    pub fn log_query(&self, query: &[u8], response: &[u8], client: SocketAddr, took: Duration) {
        let (qtype, rcode) = summary(query, response);
        let name = wire::parse(query)
            .ok()
            .and_then(|r| r.question.map(|q| wire_to_text(q.name.lower().wire())))
            .unwrap_or_default();
        tracing::info!(target: "backhaul_dns::query", %client, name,
            qtype = %hickory_proto::rr::RecordType::from(qtype),
            rcode = rcode_name(rcode), latency_us = took.as_micros() as u64,
            view = self.view.name(), "query");
    }

    /// One transfer request answered (`reply`, to `req` from `client`, signed with `key`):
    /// counted, and logged when zone data went out.
    pub fn transferred(
        &self,
        req: &Request<'_>,
        reply: &transfer::Reply,
        client: IpAddr,
        key: Option<&Name>,
    ) {
        let bytes: usize = reply.messages.iter().map(Vec::len).sum();
        self.telemetry.transfer(reply.kind.name(), bytes);
        let zone = (req.question.as_ref())
            .map(|q| wire_to_text(q.name.lower().wire()))
            .unwrap_or_default();
        let key = key.map(|k| k.to_string()).unwrap_or_default();
        match reply.kind {
            transfer::Kind::Axfr | transfer::Kind::Ixfr | transfer::Kind::IxfrWhole => {
                tracing::info!(%client, zone, kind = reply.kind.name(), from = reply.from,
                    serial = reply.serial, messages = reply.messages.len(), bytes, key,
                    "zone transfer")
            }
            _ => tracing::debug!(%client, zone, kind = reply.kind.name(), from = reply.from,
                serial = reply.serial, key, "zone transfer request"),
        }
    }

    /// An unsigned transfer request from an address whose allow entries all name a key:
    /// refused, and logged once per source (a secondary set up without its key).
    pub fn unsigned_transfer(&self, client: IpAddr) {
        if self.reported.first((client, "unsigned")) {
            tracing::warn!(%client,
                "refused an unsigned zone transfer: the [transfer] allow entry for this address names a TSIG key; configure the secondary to sign with it");
        }
    }

    /// A transfer signed with a valid key that no allow entry for this address names.
    pub fn transfer_key_not_allowed(&self, client: IpAddr, key: &Name) {
        if self.reported.first((client, "key not allowed")) {
            tracing::warn!(%client, key = %key,
                "refused a transfer signed with a key no [transfer] allow entry for this address names");
        }
    }

    /// A request whose TSIG failed the check with `error`: counted, and logged once per
    /// source and error.
    pub fn tsig_failure(&self, client: IpAddr, key: &Name, error: &'static str) {
        self.telemetry.tsig_failure(error);
        if self.reported.first((client, error)) {
            tracing::warn!(%client, key = %key, error,
                "refused a signed request: {}", super::tsig::advice(error));
        }
    }

    /// Whether a UDP response may go to `client` now (see [`super::ratelimit`]); `what` says
    /// its class and name, worked out only for clients that are limited. `policy` is the
    /// client's, as the query was answered with it. Clients inside the listening subnets are
    /// not limited unless `[rate_limit] inside`; the public view has no inside.
    #[inline]
    pub fn rate_check(
        &self,
        rules: &Rules,
        client: IpAddr,
        policy: Policy,
        what: impl FnOnce() -> (Kind, u64),
    ) -> Verdict {
        let config = rules.limiter.config();
        if config.responses_per_second == 0 {
            return Verdict::Send;
        }
        if !config.inside && self.view == View::Backhaul && policy.allowed {
            return Verdict::Send;
        }
        self.rate_limited(rules, client, what)
    }

    /// [`Context::rate_check`] for a client that is limited: out of line, so that the
    /// common case (no limiting, or a client inside) costs two comparisons.
    #[inline(never)]
    fn rate_limited(
        &self,
        rules: &Rules,
        client: IpAddr,
        what: impl FnOnce() -> (Kind, u64),
    ) -> Verdict {
        let (kind, name) = what();
        let verdict = rules.limiter.check(client, kind, name, Instant::now());
        if verdict != Verdict::Send {
            self.telemetry.rate_limited(verdict == Verdict::Slip);
        }
        verdict
    }

    /// The reply to a query the request path handed on ([`super::request::Action::Forward`]):
    /// not our name (`partial` is `None`), or our CNAME chain leads out of our zones
    /// (`partial` is our answer). The same on UDP and TCP, and always a reply in `out`:
    ///
    /// - the upstreams' answer (SERVFAIL when they fail, from the forwarder);
    /// - when forwarding was turned off since the request was decided (a reload in between):
    ///   our partial answer, the CNAME chain as far as our zones go (what a client that asks
    ///   for no recursion gets), or REFUSED for a name that is not ours, as the request path
    ///   now answers;
    /// - when the forwarder cannot read a query our parser took (junk in a record or OPT that
    ///   answering never needed to read): FORMERR, or our partial answer for a chain.
    pub async fn forwarded(
        &self,
        query: &[u8],
        partial: Option<&[u8]>,
        client: IpAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) {
        let at = std::time::SystemTime::now();
        self.forward(query, partial, transport, out).await;
        if let Some(tap) = self.tap.as_ref().filter(|_| !out.is_empty()) {
            tap.observe(
                true,
                client,
                None,
                transport == Transport::Tcp,
                at,
                query,
                out,
            );
        }
    }

    async fn forward(
        &self,
        query: &[u8],
        partial: Option<&[u8]>,
        transport: Transport,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        let forwarders = self.rules.load().forwarders.clone();
        // The name to resolve picks the upstreams: the question, or the chain's last target.
        let name = match partial {
            None => wire::parse(query)
                .ok()
                .and_then(|r| r.question.map(|q| q.name.lower().wire().to_vec())),
            Some(p) => chain_target(p),
        };
        let picked = name.as_deref().and_then(|n| forwarders.pick(n));
        if let Some(forwarder) = picked {
            let upstream_ok = match partial {
                None => forwarder.answer(query, transport, out).await,
                Some(p) => forwarder.complete_chain(query, p, transport, out).await,
            };
            self.telemetry.forwarded(upstream_ok);
        }
        if !out.is_empty() {
            return;
        }
        let recursion = !forwarders.is_empty();
        match partial {
            Some(p) => out.extend_from_slice(p),
            None if picked.is_some() => {
                reply_with(query, Rcode::FormErr, transport, recursion, out);
            }
            None => {
                reply_with(query, Rcode::Refused, transport, recursion, out);
            }
        }
    }
}

/// What a query and its response are counted as: the query's type and the response's rcode.
pub fn summary(query: &[u8], response: &[u8]) -> (u16, u16) {
    let qtype = wire::qtype(query).unwrap_or(0);
    let rcode = wire::rcode(response).unwrap_or(Rcode::ServFail as u16);
    (qtype, rcode)
}

/// The last CNAME target of our partial answer (lowercase wire form): where the chain leaves
/// our zones.
fn chain_target(partial: &[u8]) -> Option<Vec<u8>> {
    let message = hickory_proto::op::Message::from_vec(partial).ok()?;
    message.answers.iter().rev().find_map(|r| match &r.data {
        hickory_proto::rr::RData::CNAME(c) => Some(crate::dname::name_wire(&c.0)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RateLimit, TcpLimits};
    use crate::dns::forward::{Forwarder, Forwarders};
    use crate::dns::ratelimit::Limiter;
    use crate::dns::ZoneIndex;

    fn client() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    fn context(forwarder: Option<Forwarder>) -> Arc<Context> {
        let mut rules = Rules::closed(
            View::Backhaul,
            TcpLimits {
                connections: 4,
                per_client: 2,
                idle: Duration::from_secs(10),
                write_timeout: Duration::from_secs(5),
            },
            Limiter::new(RateLimit {
                responses_per_second: 0,
                slip: 2,
                ipv4_prefix: 24,
                ipv6_prefix: 56,
                inside: false,
            }),
        );
        rules.forwarders = Arc::new(Forwarders::new(forwarder, Vec::new()));
        Arc::new(Context::new(
            Arc::new(ArcSwap::from_pointee(ZoneIndex::default())),
            rules,
            Arc::default(),
            CancellationToken::new(),
        ))
    }

    #[test]
    fn tcp_idle_time_shortens_when_busy() {
        let ctx = context(None);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "fd00::1".parse().unwrap();
        let _a1 = ctx.tcp_slot(a).unwrap();
        let _a2 = ctx.tcp_slot(a).unwrap();
        assert_eq!(
            ctx.tcp_idle(),
            Duration::from_secs(10),
            "half taken: not busy yet"
        );
        assert!(ctx.tcp_slot(a).is_none(), "a third from one client");
        let _b1 = ctx.tcp_slot(b).unwrap();
        assert_eq!(ctx.tcp_idle(), BUSY_IDLE, "over half taken: busy");
    }

    /// `id 0x1234, RD`, one question `x.example. A`.
    fn query() -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x01x\x07example\x00\x00\x01\x00\x01");
        q
    }

    #[tokio::test]
    async fn without_a_forwarder_a_chain_gets_our_part_and_other_names_refused_on_both_transports()
    {
        let ctx = context(None);
        let partial = b"our partial answer".to_vec();
        for transport in [Transport::Udp, Transport::Tcp] {
            let mut out = Vec::new();
            ctx.forwarded(&query(), Some(&partial), client(), transport, &mut out)
                .await;
            assert_eq!(out, partial, "{transport:?}");
            ctx.forwarded(&query(), None, client(), transport, &mut out)
                .await;
            assert_eq!(&out[0..2], &[0x12, 0x34], "{transport:?}");
            assert_eq!(out[3] & 0x0f, Rcode::Refused as u8, "{transport:?}");
            assert_eq!(out[2] & 0x80, 0x80, "a response: {transport:?}");
        }
    }

    #[tokio::test]
    async fn a_query_the_forwarder_cannot_read_gets_formerr_on_both_transports() {
        // An upstream that is never asked: the forwarder refuses the query before that.
        let upstream = crate::config::Upstream::plain("127.0.0.1:9".parse().unwrap());
        let forwarder = Forwarder::new(&[upstream], None).unwrap();
        let ctx = context(Some(forwarder));
        // An additional A record with RDLENGTH 0: our parser skips it, hickory's refuses it.
        let mut q = query();
        q[11] = 1;
        q.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
        for transport in [Transport::Udp, Transport::Tcp] {
            let mut out = Vec::new();
            ctx.forwarded(&q, None, client(), transport, &mut out).await;
            assert_eq!(out[3] & 0x0f, Rcode::FormErr as u8, "{transport:?}");
            assert_eq!(&out[0..2], &[0x12, 0x34], "{transport:?}");
        }
    }
}
