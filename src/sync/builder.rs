//! The zone builder: holds the latest snapshot of every network and the records files,
//! builds both views from them when something changed, stamps serials, and publishes the
//! result ([`Views::publish`]). It runs on a thread of its own at idle priority, so a large
//! build never delays a query.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

mod updates;

use super::journals::Journals;
use super::names::NamesSource;
use super::publish::{Built, Views};
use super::Update;
use crate::config::{self, Config};
use crate::dns::notify::Notifier;
use crate::dns::update::UpdateJob;
use crate::ids::NetworkId;
use crate::metrics::Telemetry;
use crate::names::Override;
use crate::records::FileRecords;
use crate::state::{self, snapshot};
use crate::view::View;
use crate::zerotier::NetworkSnapshot;
use crate::zone::{self, SerialBook, Settings, Zones};
use crate::{background, clock, memory};

/// How long the builder waits for another sync before sweeping the memory freed by the last
/// one back to the system: once syncs pause, not between syncs in quick succession (webhooks,
/// a members file rewritten in bursts), whose next build would only take it again.
const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// Rebuilds zones from the latest snapshot of every network and the records files.
pub struct Builder {
    networks: Vec<config::Network>,
    snapshots: HashMap<NetworkId, Arc<NetworkSnapshot>>,
    settings: Settings,
    files: FileRecords,
    /// The public view's addresses (its NS name's records), when it is configured.
    public_addresses: Vec<IpAddr>,
    book: SerialBook,
    public_book: SerialBook,
    state_dir: PathBuf,
    /// Serial books stamped since they were last written (private, public).
    unsaved: (bool, bool),
    warned_state: bool,
    store: snapshot::Store,
    writer: snapshot::Writer,
    /// Member names already reported as taken over by a records file (logged once each).
    overrides_seen: HashSet<Override>,
    /// Networks synced by this process (the others, if held, come from a snapshot).
    fresh: HashSet<NetworkId>,
    telemetry: Arc<Telemetry>,
    /// False for the one-shot commands (`zone`): they read `state_dir` (the serials a running
    /// server saved) but never write it, which would race with that server.
    persist: bool,
    /// The IXFR journals of the backhaul zones.
    journals: Journals,
    /// `[follow]`: the primary's zones as last transferred, served in place of any built
    /// here; `None` unless this server follows one.
    followed: Option<Vec<zone::ZoneContent>>,
    /// `[[update]]`: what each key may change.
    policies: Vec<config::UpdatePolicy>,
    /// What updates wrote, per view ([`updates::slot`]) and key.
    written: [zone::update::Written; 2],
    /// The zones last published, kept while journals or updates need them.
    last: Option<Built>,
}

impl Builder {
    pub fn new(config: &Config, files: FileRecords, telemetry: Arc<Telemetry>) -> Builder {
        Builder {
            networks: config.networks.clone(),
            snapshots: HashMap::new(),
            settings: Settings::new(config),
            files,
            public_addresses: public_addresses(config),
            book: state::load_serials(&config.state_dir, View::Backhaul),
            public_book: state::load_serials(&config.state_dir, View::Public),
            state_dir: config.state_dir.clone(),
            unsaved: (false, false),
            warned_state: false,
            store: snapshot::Store::new(&config.state_dir),
            writer: snapshot::Writer::new(&config.state_dir),
            overrides_seen: HashSet::new(),
            fresh: HashSet::new(),
            telemetry,
            persist: true,
            journals: Journals::new(config),
            followed: config.follow.as_ref().map(|_| Vec::new()),
            policies: config.updates.clone(),
            written: Default::default(),
            last: None,
        }
        .with_written()
    }

    /// Starts from the update-written records saved in `state_dir`.
    fn with_written(mut self) -> Builder {
        self.load_written();
        self
    }

    /// A builder for a one-shot command: it reads `state_dir` (saved serials, so that what it
    /// prints carries the serials the server serves) and writes nothing there.
    pub fn read_only(config: &Config, files: FileRecords) -> Builder {
        Builder {
            persist: false,
            journals: Journals::off(&config.state_dir),
            ..Builder::new(config, files, Arc::default())
        }
    }

    /// Starts every network from its last good snapshot, if one was saved: served at once,
    /// whether or not the API answers.
    pub fn load_snapshots(&mut self) {
        let ids: Vec<NetworkId> = self.networks.iter().map(|n| n.id).collect();
        self.load_snapshots_of(&ids);
    }

    fn load_snapshots_of(&mut self, ids: &[NetworkId]) {
        for id in ids {
            if self.snapshots.contains_key(id) {
                continue;
            }
            if let Some(loaded) = self.store.load(*id) {
                let saved = clock::unix_now().saturating_sub(loaded.age.as_secs());
                self.telemetry.snapshot_saved(*id, saved);
                tracing::info!(network = %id, members = loaded.snapshot.members.len(),
                    age = %humantime::format_duration(Duration::from_secs(loaded.age.as_secs())),
                    "serving the last good snapshot until the first sync");
                self.snapshots.insert(*id, Arc::new(loaded.snapshot));
            } else {
                tracing::info!(network = %id, "no snapshot: names in this network get SERVFAIL until the first sync");
            }
        }
    }

    /// Records a successful sync's snapshot (the writer saves it); returns whether it changed.
    pub fn set(&mut self, snapshot: NetworkSnapshot) -> bool {
        if !self.networks.iter().any(|n| n.id == snapshot.id) {
            return false; // removed from the config while it was being fetched
        }
        let held = self.snapshots.get(&snapshot.id);
        let changed = held.is_none_or(|h| **h != snapshot);
        // The first sync after a snapshot changes where the data comes from, if not the data.
        let first = self.fresh.insert(snapshot.id);
        // The newest is kept even when nothing changed: its `lastSeen` times are newer.
        let snapshot = Arc::new(snapshot);
        if self.persist {
            self.writer.save(&snapshot, changed);
            if changed {
                self.telemetry
                    .snapshot_saved(snapshot.id, clock::unix_now());
            }
        }
        self.snapshots.insert(snapshot.id, snapshot);
        changed || first
    }

    /// What the names directory is worked out from (see [`zone::directory`]): the data of
    /// the last build, shared, not copied (the records files aside).
    /// What the names directory of the last build is worked out from; `scopes`: that build's.
    pub fn names_source(
        &self,
        scopes: Arc<zone::ScopeMap>,
        updated: zone::RecordList,
    ) -> NamesSource {
        NamesSource {
            scopes,
            networks: self.networks.clone(),
            snapshots: (self.networks.iter())
                .map(|n| self.snapshots.get(&n.id).cloned())
                .collect(),
            settings: self.settings.clone(),
            files: self.files.clone(),
            updated,
        }
    }

    /// The names directory of what is held now (for `backhaul-dns hosts`).
    pub fn directory(&self) -> zone::Directory {
        let updated = updates::all_written(&self.written[0]);
        self.names_source(Arc::default(), updated).directory()
    }

    /// The snapshot held for `network`.
    pub fn snapshot(&self, network: NetworkId) -> Option<&NetworkSnapshot> {
        self.snapshots.get(&network).map(Arc::as_ref)
    }

    /// The thread that saves snapshots (for waiting on it at shutdown).
    pub fn snapshot_writer(&self) -> snapshot::Writer {
        self.writer.clone()
    }

    /// Takes a reloaded configuration and records files; snapshots of networks still
    /// configured are kept, so nothing disappears while the pollers start again.
    pub fn reconfigure(&mut self, config: &Config, files: FileRecords) {
        let added: Vec<NetworkId> = (config.networks.iter())
            .filter(|n| !self.networks.iter().any(|o| o.id == n.id))
            .map(|n| n.id)
            .collect();
        self.networks = config.networks.clone();
        let ids: HashSet<NetworkId> = self.networks.iter().map(|n| n.id).collect();
        self.snapshots.retain(|id, _| ids.contains(id));
        self.fresh.retain(|id| ids.contains(id));
        self.load_snapshots_of(&added);
        let addresses = std::mem::take(&mut self.settings.nameserver_addresses);
        self.settings = Settings::new(config);
        self.settings.nameserver_addresses = addresses;
        self.files = files;
        self.public_addresses = public_addresses(config);
        self.policies = config.updates.clone();
        if self.persist {
            self.journals.reconfigure(config);
        }
        if !self.journals.on() && self.policies.is_empty() {
            self.last = None;
        }
    }

    /// Records the server's own addresses (the NS name's records); returns whether they changed.
    pub fn set_nameserver_addresses(&mut self, mut addresses: Vec<IpAddr>) -> bool {
        addresses.sort();
        if self.settings.nameserver_addresses == addresses {
            return false;
        }
        self.settings.nameserver_addresses = addresses;
        true
    }

    /// Builds every zone of both views from what is held now, with serials stamped. A book
    /// that changed is written at once without waiting for the disk, so a `backhaul-dns zone`
    /// run as soon as the zone is served reads the serial served (not the one before);
    /// [`Builder::save_serials`] makes it durable once the zones are published.
    pub fn build(&mut self) -> Built {
        let inputs: Vec<zone::Input<'_>> = self
            .networks
            .iter()
            .map(|network| zone::Input {
                network,
                snapshot: self.snapshots.get(&network.id).map(Arc::as_ref),
            })
            .collect();
        let now = clock::unix_now() as u32;
        let mut private = match &self.followed {
            // A follower serves the primary's zones as they are, with its serials.
            Some(zones) => Zones {
                zones: zones.clone(),
                ..Zones::default()
            },
            None => {
                let written = updates::all_written(&self.written[0]);
                let mut private = zone::build(&inputs, &self.settings, &self.files, &written);
                self.unsaved.0 |= self.book.stamp(&mut private, now, &self.settings);
                private
            }
        };
        let published = self.last.as_ref().map(|b| &b.private);
        let held = self.journals.update(&mut private, published);
        self.telemetry.journals(&held);
        for o in &private.overridden {
            if !self.overrides_seen.contains(o) {
                tracing::info!(name = %o.name, member = %o.member, network = %o.network,
                    "the records file or a service defines this name: the member keeps only its zt- name");
            }
        }
        self.overrides_seen = private.overridden.iter().cloned().collect();
        let settings = Settings {
            nameserver_addresses: self.public_addresses.clone(),
            ..self.settings.clone()
        };
        let written = updates::all_written(&self.written[1]);
        let mut public =
            (self.files.public.as_ref()).map(|r| zone::build_public(r, &settings, &written));
        if let Some(zones) = &mut public {
            self.unsaved.1 |= self.public_book.stamp(zones, now, &settings);
        }
        self.show_serials();
        Built { private, public }
    }

    /// A follower's zones as they are now; false (nothing to build) unless following.
    pub fn set_followed(&mut self, zones: Vec<zone::ZoneContent>) -> bool {
        match &mut self.followed {
            Some(held) => {
                *held = zones;
                true
            }
            None => false,
        }
    }

    /// Keeps the zones just published, while something needs them: the next build's journal
    /// entries are the difference from them, and updates patch them.
    pub fn keep_published(&mut self, built: Built) {
        self.last = (self.journals.on() || !self.policies.is_empty()).then_some(built);
    }

    /// Writes the journals that changed since the last call (after the swap, like the
    /// serials).
    pub fn save_journals(&mut self) {
        self.journals.save();
    }

    /// What the zones just published hold, for /metrics and /readyz: after the swap, so
    /// that a server reported ready answers from those zones.
    pub fn report(&self, built: &Built) {
        let (private, public) = (&built.private, built.public.as_ref());
        for net in &self.networks {
            let data = match (
                self.snapshots.contains_key(&net.id),
                self.fresh.contains(&net.id),
            ) {
                (false, _) => "none",
                (true, true) => "sync",
                (true, false) => "snapshot",
            };
            let count = |m: &BTreeMap<NetworkId, usize>| m.get(&net.id).copied().unwrap_or(0);
            let conflicts = private
                .conflicts
                .iter()
                .filter(|c| c.network == net.id)
                .count();
            self.telemetry.network_zone(
                net.id,
                data,
                count(&private.members),
                count(&private.records_by_network),
                conflicts,
            );
        }
        let views = std::iter::once(("backhaul", private)).chain(public.map(|p| ("public", p)));
        let serials = views
            .flat_map(|(view, zones)| {
                zones
                    .zones
                    .iter()
                    .map(move |z| (view, z.apex.to_ascii(), z.serial))
            })
            .collect();
        self.telemetry.zone_serials(serials);
    }

    /// Writes the serial books stamped since the last build where other processes read them
    /// (page cache only: microseconds, whatever the disk).
    fn show_serials(&mut self) {
        if !self.persist {
            return;
        }
        let (private, public) = self.unsaved;
        for (view, changed) in [(View::Backhaul, private), (View::Public, public)] {
            if changed {
                let book = match view {
                    View::Backhaul => &self.book,
                    View::Public => &self.public_book,
                };
                let outcome = state::show_serials(&self.state_dir, view, book);
                self.state_outcome(outcome);
            }
        }
    }

    /// Makes the serial books written by the last builds durable. After the swap, not inside
    /// the build: two fsyncs take 2 ms on an idle disk and far longer on a busy one, and the
    /// new zone need not wait for them. A crash in between loses nothing that matters: the
    /// next build gives a changed zone the current time as its serial, later than any it
    /// served.
    pub fn save_serials(&mut self) {
        let (private, public) = std::mem::take(&mut self.unsaved);
        if !self.persist {
            return;
        }
        for (view, changed) in [(View::Backhaul, private), (View::Public, public)] {
            if changed {
                let outcome = state::make_durable(&state::serials_path(&self.state_dir, view));
                self.state_outcome(outcome);
            }
        }
    }

    fn state_outcome(&mut self, outcome: std::io::Result<()>) {
        match outcome {
            Ok(()) => self.warned_state = false,
            // Serials still move forward in this process; only a restart could reuse one.
            Err(e) if !self.warned_state => {
                self.warned_state = true;
                tracing::warn!(state_dir = %self.state_dir.display(), error = %e,
                    "cannot save zone serials: make state_dir writable by this user");
            }
            Err(_) => {}
        }
    }
}

fn public_addresses(config: &Config) -> Vec<IpAddr> {
    config
        .public
        .as_ref()
        .map(|p| p.addresses.clone())
        .unwrap_or_default()
}

/// The zone builder thread: applies updates one at a time, rebuilding and swapping the zones
/// when one changed something.
pub(super) struct BuilderThread {
    pub(super) builder: Builder,
    pub(super) views: Views,
    pub(super) runtime: tokio::runtime::Handle,
    /// Tells the secondaries (`[transfer] notify`) of every serial that moved.
    pub(super) notifier: Notifier,
    /// The current poller generation of every network.
    pub(super) generations: HashMap<NetworkId, u64>,
    /// Refused updates already logged, by key and reason.
    pub(super) refusals: crate::once::LogOnce<(String, String)>,
}

impl BuilderThread {
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Update>) {
        background::lower_priority();
        // Set after a build: the memory it freed goes back to the system once syncs pause.
        let mut release = false;
        loop {
            let update = if release {
                // The timer must be made inside the runtime's context.
                let next = async { tokio::time::timeout(RELEASE_AFTER, rx.recv()).await };
                match self.runtime.block_on(next) {
                    Ok(update) => update,
                    Err(_) => {
                        memory::release_freed();
                        release = false;
                        continue;
                    }
                }
            } else {
                rx.blocking_recv()
            };
            let Some(update) = update else { break };
            // Everything that queued up during the last build is applied before building once:
            // syncs arriving faster than builds (a burst of webhooks) cost one build, and the
            // zone never lags behind a queue of stale updates.
            let mut updates = vec![update];
            while let Ok(more) = rx.try_recv() {
                updates.push(more);
            }
            // A bug in a build must not end every later sync with it: the current zone keeps
            // answering and the next update gets its own try.
            let applied = std::panic::AssertUnwindSafe(|| self.apply(updates));
            match std::panic::catch_unwind(applied) {
                Ok(built) => release |= built,
                Err(_) => tracing::error!(
                    "building the zone failed (a bug: please report it with the panic message \
                     above); the current zone keeps answering"
                ),
            }
        }
    }

    /// Applies updates in order, then builds and publishes new zones if any of them changed
    /// something; returns whether it did.
    fn apply(&mut self, updates: Vec<Update>) -> bool {
        let (jobs, updates): (Vec<Update>, Vec<Update>) =
            (updates.into_iter()).partition(|u| matches!(u, Update::Dynamic(_)));
        let built = self.apply_syncs(updates);
        let jobs: Vec<UpdateJob> = (jobs.into_iter())
            .filter_map(|u| match u {
                Update::Dynamic(job) => Some(job),
                _ => None,
            })
            .collect();
        if !jobs.is_empty() {
            self.apply_updates(jobs);
        }
        built
    }

    /// The updates other than UPDATEs: a build if any of them changed something.
    fn apply_syncs(&mut self, updates: Vec<Update>) -> bool {
        let mut causes = Vec::new();
        for update in updates {
            let (cause, changed) = self.take(update);
            if changed {
                causes.push(cause);
            } else {
                tracing::debug!(cause, "sync: no change");
            }
        }
        if causes.is_empty() {
            return false;
        }
        causes.dedup();
        let cause = causes.join(", ");
        let started = std::time::Instant::now();
        let built = self.builder.build();
        self.views.publish(&built);
        self.builder.report(&built);
        let (scopes, updated) = (built.private.scopes.clone(), built.private.updated.clone());
        (self.views.names).set(self.builder.names_source(scopes, updated));
        self.builder.save_serials();
        self.builder.save_journals();
        self.notifier.published(&built.private);
        let zones = &built.private;
        let serial = zones.zones.iter().map(|z| z.serial).max().unwrap_or(0);
        tracing::info!(
            cause,
            names = zones.members.values().sum::<usize>(),
            records = zones.record_count(),
            conflicts = zones.conflicts.len(),
            serial,
            took_ms = started.elapsed().as_millis() as u64,
            "zone updated"
        );
        self.builder.keep_published(built);
        true
    }

    /// Takes one update into the builder's data; returns its cause and whether it changed
    /// anything.
    fn take(&mut self, update: Update) -> (String, bool) {
        let builder = &mut self.builder;
        match update {
            Update::Snapshot(generation, snapshot) => {
                let network = snapshot.id;
                // A poller stopped by a reload may still deliver one last fetch.
                let current = self.generations.get(&network) == Some(&generation);
                let changed = current && builder.set(snapshot);
                if current && !changed {
                    if let Some(held) = builder.snapshot(network) {
                        self.views.services.seen(held);
                    }
                }
                (format!("network {network}"), changed)
            }
            Update::Nameservers(addresses) => (
                "listen addresses".to_owned(),
                builder.set_nameserver_addresses(addresses),
            ),
            Update::Followed(zones) => ("followed zones".to_owned(), builder.set_followed(zones)),
            Update::Dynamic(job) => {
                // Taken apart in `apply`; one that got here is answered, not lost.
                let _ = job.done.send(crate::zone::update::SERVFAIL);
                ("update".to_owned(), false)
            }
            Update::Reconfigure(config, files, generations) => {
                self.generations = generations;
                self.notifier.configure(&config.transfer);
                builder.reconfigure(&config, files);
                ("reload".to_owned(), true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::index::Lookup;
    use crate::zerotier;
    use crate::zone::serial_after;

    /// The A RDATA of `db.backhaul.` in the published backhaul view.
    fn db_address(views: &Views) -> Option<Vec<u8>> {
        let zone = views.private.load();
        match zone.lookup(b"\x02db\x08backhaul\x00") {
            Lookup::Found(node, _) => node
                .rrset(1)
                .map(|set| set.wire[set.wire.len() - 4..].to_vec()),
            _ => None,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn updates_queued_during_a_build_are_built_once_with_the_latest_data() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.json"), "[]").unwrap();
        let text = "state_dir = \"state\"\n[listen]\naddresses = [\"127.0.0.1\"]\n[[network]]\n\
                    id = \"8056c2e21c000001\"\nsource = \"file\"\nmembers_file = \"m.json\"\n";
        let config = Config::parse(&dir.path().join("c.toml"), text).unwrap();
        let id = config.networks[0].id;
        let views = Views::new();
        let mut thread = BuilderThread {
            builder: Builder::new(&config, FileRecords::default(), Arc::default()),
            views: views.clone(),
            runtime: tokio::runtime::Handle::current(),
            notifier: Notifier::new(tokio::runtime::Handle::current()),
            generations: HashMap::from([(id, 2)]),
            refusals: Default::default(),
        };
        let db_at = |ip: &str, generation| {
            let list = format!(
                r#"[{{"nodeId": "a45dc9d260", "name": "db", "config": {{"authorized": true,
                   "ipAssignments": ["{ip}"]}}}}]"#
            );
            Update::Snapshot(
                generation,
                zerotier::file::parse(list.as_bytes(), id).unwrap(),
            )
        };
        let built = thread.apply(vec![
            db_at("10.0.0.1", 2),
            db_at("10.0.0.2", 2),
            db_at("10.0.0.3", 1), // from a poller stopped by a reload: ignored
        ]);
        assert!(built);
        assert_eq!(db_address(&views), Some(vec![10, 0, 0, 2]));
        // Nothing new: no build.
        assert!(!thread.apply(vec![db_at("10.0.0.2", 2)]));
    }

    #[test]
    fn the_ixfr_journal_goes_on_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.json"), "[]").unwrap();
        let text = "state_dir = \"state\"\n[listen]\naddresses = [\"127.0.0.1\"]\n\
                    [transfer]\nallow = [\"10.0.0.7\"]\n[[network]]\n\
                    id = \"8056c2e21c000001\"\nsource = \"file\"\nmembers_file = \"m.json\"\n";
        let config = Config::parse(&dir.path().join("c.toml"), text).unwrap();
        let id = config.networks[0].id;
        let members = |names: &[&str]| {
            let list: Vec<String> = (names.iter().enumerate())
                .map(|(i, n)| {
                    format!(
                        r#"{{"nodeId": "a45dc9d26{i}", "name": "{n}", "config": {{"authorized": true,
                           "ipAssignments": ["10.0.0.{}"]}}}}"#,
                        i + 1
                    )
                })
                .collect();
            zerotier::file::parse(format!("[{}]", list.join(",")).as_bytes(), id).unwrap()
        };
        let serial = |built: &Built| {
            let z = (built.private.zones.iter()).find(|z| z.apex.to_ascii() == "backhaul.");
            z.unwrap().serial
        };
        // A server: two versions of the zone, the change journaled and saved.
        let mut first = Builder::new(&config, FileRecords::default(), Arc::default());
        first.set(members(&["db"]));
        let built = first.build();
        let s1 = serial(&built);
        first.keep_published(built);
        first.set(members(&["db", "cache"]));
        let built = first.build();
        let s2 = serial(&built);
        first.keep_published(built);
        first.save_serials();
        first.save_journals();
        drop(first);
        // Restarted: the zone from the saved snapshot is published first (as `start` does),
        // then a sync that changed something while it was down.
        let mut again = Builder::new(&config, FileRecords::default(), Arc::default());
        again.set(members(&["db", "cache"]));
        let built = again.build();
        assert_eq!(serial(&built), s2, "the same zone keeps its serial");
        again.keep_published(built);
        again.set(members(&["db", "cache", "logs"]));
        let built = again.build();
        let s3 = serial(&built);
        let z = (built.private.zones.iter()).find(|z| z.apex.to_ascii() == "backhaul.");
        let journal = z.unwrap().journal.clone().expect("journals are kept");
        assert_eq!(journal.len(), 2, "the saved change and the new one");
        let condensed = journal
            .since(s1)
            .expect("reaches back to before the restart");
        let added: Vec<String> = (condensed.added.iter())
            .map(|r| crate::dname::wire_to_text(r.owner))
            .collect();
        assert!(added.contains(&"cache.backhaul.".to_owned()), "{added:?}");
        assert!(added.contains(&"logs.backhaul.".to_owned()), "{added:?}");
        assert!(serial_after(s3, s2) && serial_after(s2, s1));
    }
}
