//! The IXFR journals of the backhaul zones ([`Journals`]): brought up to each new serial by
//! one pass over the records last published (the builder keeps them) and the new ones, or
//! given a dynamic update's change as it is; handed to the zones to serve, and saved in
//! `state_dir` after the swap. Kept only while secondaries may transfer.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::state;
use crate::zone::journal::Limits;
use crate::zone::{self, Journal, Zones};

pub(super) struct Journals {
    state_dir: PathBuf,
    /// How much each journal keeps; `None` (no journals) unless secondaries may transfer
    /// (`[transfer] allow`) and this is the server.
    limits: Option<Limits>,
    /// The journal of every complete backhaul zone, by apex.
    journals: HashMap<String, Arc<Journal>>,
    /// Journals changed since they were last written.
    unsaved: BTreeSet<String>,
}

fn limits(config: &Config) -> Option<Limits> {
    (!config.transfer.allow.is_empty()).then_some(Limits {
        changes: config.transfer.journal_changes,
        bytes: config.transfer.journal_bytes,
    })
}

impl Journals {
    pub(super) fn new(config: &Config) -> Journals {
        Journals {
            limits: limits(config),
            ..Journals::off(&config.state_dir)
        }
    }

    /// No journals (a one-shot command: nothing is transferred or saved).
    pub(super) fn off(state_dir: &std::path::Path) -> Journals {
        Journals {
            state_dir: state_dir.to_owned(),
            limits: None,
            journals: HashMap::new(),
            unsaved: BTreeSet::new(),
        }
    }

    /// The bounds of a reloaded config; no secondaries any more drops every journal.
    pub(super) fn reconfigure(&mut self, config: &Config) {
        self.limits = limits(config);
        if self.limits.is_none() {
            self.journals.clear();
        }
    }

    /// Whether journals are kept (secondaries may transfer).
    pub(super) fn on(&self) -> bool {
        self.limits.is_some()
    }

    /// Brings every complete zone's IXFR journal up to its new serial: the change from the
    /// records last published (`published`, the zones the builder served before), by one
    /// pass over both (no second build), and hands the journal to the zone to serve. A zone first seen by this process (a restart) keeps the
    /// journal saved in `state_dir` only if it leads to the serial the zone has now;
    /// otherwise it starts empty, and secondaries behind get the whole zone once.
    /// Returns, for /metrics, each journal held: apex, changes, bytes.
    pub(super) fn update(
        &mut self,
        zones: &mut Zones,
        published: Option<&Zones>,
    ) -> Vec<(String, usize, usize)> {
        let Some(limits) = self.limits else {
            return Vec::new();
        };
        let mut seen = HashSet::new();
        for z in zones.zones.iter_mut().filter(|z| z.complete) {
            let apex = z.apex.to_ascii();
            let journal = (self.journals.entry(apex.clone())).or_insert_with(|| {
                Arc::new(state::load_journal(&self.state_dir, &apex).unwrap_or_default())
            });
            let before = (journal.len(), journal.last_serial());
            let j = Arc::make_mut(journal);
            let before_this = (published.into_iter())
                .flat_map(|p| p.zones.iter())
                .find(|p| p.complete && p.apex == z.apex)
                .map(|p| (p.serial, &p.records));
            match before_this {
                Some((serial, _)) if serial == z.serial => {}
                Some((serial, old)) => {
                    match zone::journal::diff(old, &z.records, serial, z.serial) {
                        Some(change) => j.push(change, limits),
                        None => {
                            tracing::error!(zone = %apex, "records out of order: the IXFR journal starts over (a bug: please report it)");
                            j.clear();
                        }
                    }
                }
                None if j.last_serial() != Some(z.serial) => j.clear(),
                None if !j.leads_to(&z.records) => {
                    tracing::warn!(zone = %apex, "the IXFR journal in state_dir does not lead to the zone as served (edited or damaged): starting it over; secondaries behind get the whole zone once");
                    j.clear();
                }
                None => {}
            }
            j.trim(limits);
            if (j.len(), j.last_serial()) != before {
                self.unsaved.insert(apex.clone());
            }
            z.journal = Some(journal.clone());
            seen.insert(apex);
        }
        if zones.zones.iter().all(|z| z.complete) {
            self.journals.retain(|apex, _| seen.contains(apex));
        }
        self.held()
    }

    /// A dynamic update's `change` to the zone `z` (already patched and restamped), taken
    /// into its journal as it is: no diff of the whole zone.
    pub(super) fn record(&mut self, z: &mut zone::ZoneContent, change: zone::journal::Change) {
        let Some(limits) = self.limits.filter(|_| z.complete) else {
            return;
        };
        let apex = z.apex.to_ascii();
        let journal = (self.journals.entry(apex.clone())).or_insert_with(|| {
            Arc::new(state::load_journal(&self.state_dir, &apex).unwrap_or_default())
        });
        Arc::make_mut(journal).push(change, limits);
        z.journal = Some(journal.clone());
        self.unsaved.insert(apex);
    }

    /// For /metrics: each journal held, its changes and bytes.
    pub(super) fn held(&self) -> Vec<(String, usize, usize)> {
        (self.journals.iter())
            .map(|(apex, j)| (apex.clone(), j.len(), j.bytes()))
            .collect()
    }

    /// Writes the journals that changed since the last call (after the swap, like the
    /// serials).
    pub(super) fn save(&mut self) {
        for apex in std::mem::take(&mut self.unsaved) {
            let Some(journal) = self.journals.get(&apex) else {
                continue;
            };
            if let Err(e) = state::save_journal(&self.state_dir, &apex, journal) {
                tracing::warn!(zone = %apex, state_dir = %self.state_dir.display(), error = %e,
                    "cannot save the IXFR journal: after a restart, secondaries get the whole zone once");
            }
        }
    }
}
