//! Dynamic updates (RFC 2136) in the builder. Each is worked out on the zone as last
//! published ([`crate::zone::update`]); what it wrote is saved in `state_dir` before anything
//! else; the zone is patched (not built again), given the next serial, and journaled; then
//! every update that arrived together is served with one compile and one NOTIFY.

use hickory_proto::rr::Name;

use super::{Builder, BuilderThread};
use crate::dname::{is_at_or_below, name_wire};
use crate::dns::update::UpdateJob;
use crate::state;
use crate::view::View;
use crate::zone::journal::{self, Change};
use crate::zone::update::{self, Refusal, Written, NOTAUTH, REFUSED, SERVFAIL};
use crate::zone::{RecordList, Settings};
use crate::{clock, zone};

/// What an update changed: the zone's apex and the names (lowercase wire) whose records moved.
pub type Changed = (Name, Vec<Vec<u8>>);

/// The slot of a view in [`Builder::written`].
pub(super) fn slot(view: View) -> usize {
    match view {
        View::Backhaul => 0,
        View::Public => 1,
    }
}

/// Every record a view's updates wrote, in one list (what a build adds to the zones).
pub(super) fn all_written(written: &Written) -> RecordList {
    let mut all = RecordList::default();
    for list in written.values() {
        for r in list.iter() {
            all.push(r);
        }
    }
    all.sorted()
}

impl Builder {
    /// Applies one UPDATE to the zones last published; `Ok(Some(changed))` when a zone
    /// changed (then it is to be served), `Ok(None)` when there was nothing to change.
    pub fn update(&mut self, job: &UpdateJob) -> Result<Option<Changed>, Refusal> {
        let refusal = |rcode, why: &str| Refusal {
            rcode,
            why: why.to_owned(),
        };
        let policy = (self.policies.iter())
            .find(|p| p.key == job.key && p.view == job.view)
            .cloned()
            .ok_or_else(|| refusal(REFUSED, "no [[update]] table names this key in this view"))?;
        let req = update::read(&job.message)?;
        let slot = slot(job.view);
        let settings = match job.view {
            View::Backhaul => self.settings.clone(),
            View::Public => Settings {
                nameserver_addresses: self.public_addresses.clone(),
                ..self.settings.clone()
            },
        };
        let Some(last) = self.last.as_mut() else {
            return Err(refusal(SERVFAIL, "no zone is served yet"));
        };
        let zones = match job.view {
            View::Backhaul => &mut last.private,
            View::Public => {
                (last.public.as_mut()).ok_or_else(|| refusal(NOTAUTH, "no public view"))?
            }
        };
        let apexes: Vec<Vec<u8>> = zones.zones.iter().map(|z| name_wire(&z.apex)).collect();
        let Some(i) = zones.zones.iter().position(|z| z.apex == req.zone) else {
            return Err(refusal(
                NOTAUTH,
                "not a zone this server serves in this view",
            ));
        };
        if !zones.zones[i].complete || zones.zones[i].expired {
            return Err(refusal(SERVFAIL, "the zone has not synced yet"));
        }
        let apex = apexes[i].clone();
        // In the zone: at or below its apex, and not in a zone of ours below it.
        let in_zone = |owner: &[u8]| {
            is_at_or_below(owner, &apex)
                && !(apexes.iter()).any(|a| a.len() > apex.len() && is_at_or_below(owner, a))
        };
        let zone = update::Zone {
            apex: &apex,
            records: &zones.zones[i].records,
            in_zone: &in_zone,
        };
        let applied = update::apply(&zone, &self.written[slot], &job.key, &policy, &req)?;
        if !applied.changed() {
            return Ok(None);
        }
        // Kept before it is served or answered: an update acknowledged survives a crash.
        let mut written = self.written[slot].clone();
        match applied.written.is_empty() {
            true => written.remove(&job.key),
            false => written.insert(job.key.clone(), applied.written.clone()),
        };
        if let Err(e) = state::save_updates(&self.state_dir, job.view, &written) {
            tracing::error!(state_dir = %self.state_dir.display(), error = %e,
                "cannot keep an update in state_dir: refused (SERVFAIL) rather than lost at the next restart");
            return Err(refusal(SERVFAIL, "state_dir cannot be written"));
        }
        self.written[slot] = written;
        // Every record updates hold was taken against the zone as served: all are served.
        zones.updated = all_written(&self.written[slot]);
        let mut owners: Vec<Vec<u8>> = (applied.deleted.iter().chain(applied.added.iter()))
            .map(|r| r.owner.to_vec())
            .collect();
        owners.sort();
        owners.dedup();
        let z = &mut zones.zones[i];
        let soa = z.records.get(0);
        let (mut deleted, mut added) = (RecordList::default(), RecordList::default());
        deleted.push(soa);
        added.push(soa);
        for r in applied.deleted.iter() {
            deleted.push(r);
        }
        for r in applied.added.iter() {
            added.push(r);
        }
        let change = Change {
            from: z.serial,
            to: z.serial,
            deleted,
            added,
        };
        let Some(records) = journal::patch(&z.records, &change) else {
            tracing::error!(zone = %z.apex, "an update does not fit the zone it was worked out on (a bug: please report it); it is served from the next build");
            return Ok(None);
        };
        z.records = records;
        z.hash = zone::content_hash(&z.records);
        let now = clock::unix_now() as u32;
        match job.view {
            View::Backhaul => self.book.advance(z, now, &settings),
            View::Public => self.public_book.advance(z, now, &settings),
        }
        // Into the IXFR journal as it is, from the old SOA to the new one: no diff of the zone.
        if job.view == View::Backhaul {
            let mut added = RecordList::default();
            added.push(z.records.get(0));
            for r in applied.added.iter() {
                added.push(r);
            }
            let to = z.serial;
            let change = Change {
                to,
                added,
                ..change
            };
            self.journals.record(z, change);
        }
        self.unsaved.0 |= job.view == View::Backhaul;
        self.unsaved.1 |= job.view == View::Public;
        Ok(Some((z.apex.clone(), owners)))
    }

    /// The zones last published, while journals or updates need them.
    pub(super) fn last_built(&self) -> Option<&super::Built> {
        self.last.as_ref()
    }

    /// The update-written records as last saved, per view (read at start).
    pub(super) fn load_written(&mut self) {
        for view in [View::Backhaul, View::Public] {
            self.written[slot(view)] = state::load_updates(&self.state_dir, view);
        }
    }

    /// After updates changed zones: their journals' sizes reported and the serial books
    /// shown; returns the zones to serve.
    pub fn updated(&mut self) -> Option<&super::Built> {
        self.telemetry.journals(&self.journals.held());
        self.show_serials();
        self.last.as_ref()
    }
}

impl BuilderThread {
    /// Applies UPDATEs in order to the zones last published, serves what changed with one
    /// compile, then answers each (after the swap: a client that reads back its change finds
    /// it).
    pub(super) fn apply_updates(&mut self, jobs: Vec<UpdateJob>) {
        let started = std::time::Instant::now();
        // Per view and zone, the names the updates changed.
        let mut changed: Vec<(View, Name, Vec<Vec<u8>>)> = Vec::new();
        let mut answers = Vec::with_capacity(jobs.len());
        for job in jobs {
            let rcode = match self.builder.update(&job) {
                Ok(change) => {
                    let c = change.is_some();
                    if let Some((apex, owners)) = change {
                        match changed
                            .iter_mut()
                            .find(|(v, a, _)| *v == job.view && *a == apex)
                        {
                            Some((_, _, held)) => held.extend(owners),
                            None => changed.push((job.view, apex, owners)),
                        }
                    }
                    tracing::info!(key = %job.key, view = job.view.name(), changed = c, "update applied");
                    0
                }
                Err(refusal) => {
                    if self
                        .refusals
                        .first((job.key.to_ascii(), refusal.why.clone()))
                    {
                        tracing::warn!(key = %job.key, view = job.view.name(),
                            rcode = crate::metrics::rcode_name(refusal.rcode), why = %refusal.why,
                            "update not applied");
                    }
                    refusal.rcode
                }
            };
            answers.push((job.done, rcode));
        }
        if !changed.is_empty() {
            if let Some(last) = self.builder.updated() {
                for (view, apex, owners) in &mut changed {
                    owners.sort();
                    owners.dedup();
                    let zones = match view {
                        View::Backhaul => Some(&last.private),
                        View::Public => last.public.as_ref(),
                    };
                    match zones.and_then(|zs| zs.zones.iter().find(|z| z.apex == *apex)) {
                        Some(zone) => self.views.patch_view(last, *view, zone, owners),
                        None => self.views.publish_view(last, *view),
                    }
                }
                self.notifier.published(&last.private);
                let (scopes, updated) = (last.private.scopes.clone(), last.private.updated.clone());
                (self.views.names).set(self.builder.names_source(scopes, updated));
                self.builder.save_serials();
                self.builder.save_journals();
                if let Some(built) = self.builder.last_built() {
                    self.builder.report(built);
                }
            }
            tracing::info!(
                updates = answers.len(),
                took_ms = started.elapsed().as_millis() as u64,
                "zone updated by UPDATE"
            );
        }
        for (done, rcode) in answers {
            let _ = done.send(rcode);
        }
    }
}
