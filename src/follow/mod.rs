//! Follower mode (`[follow]`): this server serves another backhaul-dns's (or any primary's)
//! zones as a secondary does. It takes each zone by IXFR from the serial it holds (AXFR when
//! it holds nothing or the changes do not fit), signed with the `[follow]` key; checks again
//! when the primary NOTIFYs it and on the SOA refresh timer (retry after a failure); keeps the
//! zones in `state_dir` so a restart serves them at once; and, when the primary has not
//! vouched for a zone for longer than the SOA expire, answers SERVFAIL for it.
//!
//! With `catalog`, the zones followed are the members of the primary's catalog zone (RFC
//! 9432), itself followed like any zone: a network added on the primary is followed here
//! without touching this server. The zones go to the builder ([`crate::sync`]), which serves
//! them with the primary's serials through the same index as any zone.

pub mod xfr;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hickory_proto::rr::Name;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Follow, Followed};
use crate::dname::name_wire;
use crate::dns::tsig::Keyring;
use crate::metrics::{FollowedStatus, Telemetry};
use crate::state;
use crate::sync::SyncHandle;
use crate::zone::{journal, member_zones, RecordList, ZoneContent};
use xfr::{Got, Primary, Transfer};

/// Bounds on the SOA timers as used here: a primary's refresh of 0 must not make a busy
/// loop, nor one of a year a zone that is never checked.
const MIN_TIMER: u32 = 1;
const MAX_REFRESH: u32 = 86_400;

/// One zone followed.
struct Zone {
    apex: Name,
    /// SOA first; `None` until the first transfer (or a kept copy).
    records: Option<RecordList>,
    /// When the primary last vouched for the records held.
    confirmed: Option<SystemTime>,
    next: Instant,
    expired: bool,
    last_error: Option<String>,
}

impl Zone {
    fn new(apex: Name) -> Zone {
        Zone {
            apex,
            records: None,
            confirmed: None,
            next: Instant::now(),
            expired: false,
            last_error: None,
        }
    }

    fn serial(&self) -> Option<u32> {
        let r = self.records.as_ref()?;
        xfr::serial(r.get(0).rdata)
    }

    /// Refresh, retry and expire of the SOA held (a first transfer is retried soon).
    fn timers(&self) -> (Duration, Duration, Duration) {
        let (refresh, retry, expire) = (self.records.as_ref())
            .and_then(|r| xfr::timers(r.get(0).rdata))
            .unwrap_or((MIN_TIMER, 5, u32::MAX));
        let secs = |s: u32| Duration::from_secs(u64::from(s.max(MIN_TIMER)));
        (
            secs(refresh.min(MAX_REFRESH)),
            secs(retry.min(MAX_REFRESH)),
            secs(expire),
        )
    }
}

/// The running follower.
pub struct Follower {
    primary: Primary,
    catalog: Option<Name>,
    zones: BTreeMap<Vec<u8>, Zone>,
    state_dir: std::path::PathBuf,
    telemetry: Arc<Telemetry>,
}

impl Follower {
    /// The follower of `follow`, its zones loaded from `state_dir` ([`Follower::zones`]:
    /// served from the start, before the primary answers).
    pub fn new(
        follow: &Follow,
        keys: Arc<Keyring>,
        state_dir: &std::path::Path,
        telemetry: Arc<Telemetry>,
    ) -> Follower {
        let mut f = Follower {
            primary: Primary {
                address: follow.primary,
                key: follow.key.clone(),
                keys,
            },
            catalog: None,
            zones: BTreeMap::new(),
            state_dir: state_dir.to_owned(),
            telemetry,
        };
        let listed = match &follow.zones {
            Followed::Catalog(c) => {
                f.catalog = Some(c.to_lowercase());
                vec![c.clone()]
            }
            Followed::Listed(zones) => zones.clone(),
        };
        for apex in listed {
            f.add(apex);
        }
        f.follow_catalog();
        f.report();
        f
    }

    /// Follows `apex` from now on, starting from the copy kept in `state_dir`, if any.
    fn add(&mut self, apex: Name) {
        let apex = apex.to_lowercase();
        let key = name_wire(&apex);
        if self.zones.contains_key(&key) {
            return;
        }
        let mut zone = Zone::new(apex);
        if let Some((records, confirmed)) =
            state::load_followed(&self.state_dir, &zone.apex.to_ascii())
        {
            zone.records = Some(records);
            zone.confirmed = Some(confirmed);
            let (_, _, expire) = zone.timers();
            zone.expired = confirmed.elapsed().is_ok_and(|age| age > expire);
            tracing::info!(zone = %zone.apex, serial = zone.serial().unwrap_or(0),
                "serving the followed zone as last transferred, until the primary answers");
        }
        self.zones.insert(key, zone);
    }

    /// With a catalog: follows its members as it lists them now, and stops following the
    /// ones it no longer lists (their kept copies are removed).
    fn follow_catalog(&mut self) {
        let Some(catalog) = self.catalog.clone() else {
            return;
        };
        let Some(records) = self
            .zones
            .get(&name_wire(&catalog))
            .and_then(|z| z.records.as_ref())
        else {
            return;
        };
        let Some(members) = member_zones(&catalog, records) else {
            tracing::warn!(catalog = %catalog, "the primary's catalog zone is not of version 2 (RFC 9432): its members are not followed");
            return;
        };
        let wanted: Vec<Vec<u8>> = members.iter().map(name_wire).collect();
        let catalog_key = name_wire(&catalog);
        let gone: Vec<Vec<u8>> = (self.zones.keys())
            .filter(|k| **k != catalog_key && !wanted.contains(k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(z) = self.zones.remove(&key) {
                tracing::info!(zone = %z.apex, "the primary's catalog no longer lists this zone: no longer served");
                state::remove_followed(&self.state_dir, &z.apex.to_ascii());
            }
        }
        for apex in members {
            if !self.zones.contains_key(&name_wire(&apex)) {
                tracing::info!(zone = %apex, "the primary's catalog lists a new zone: following it");
                self.add(apex);
            }
        }
    }

    /// The zones held now, to serve.
    pub fn zones(&self) -> Vec<ZoneContent> {
        (self.zones.values())
            .filter_map(|z| {
                let records = z.records.clone()?;
                let serial = z.serial()?;
                Some(ZoneContent::followed(
                    z.apex.clone(),
                    serial,
                    records,
                    z.expired,
                ))
            })
            .collect()
    }

    fn report(&self) {
        let unix = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs())
        };
        let statuses = (self.zones.values())
            .map(|z| FollowedStatus {
                zone: z.apex.to_ascii(),
                primary: self.primary.address.to_string(),
                serial: z.serial(),
                confirmed: z.confirmed.and_then(unix),
                expired: z.expired,
                last_error: z.last_error.clone(),
                stale: false,
            })
            .collect();
        self.telemetry.followed(statuses);
    }

    /// Follows until `shutdown`: each zone when its timer is due or the primary NOTIFYs it
    /// (`notices`: apexes in lowercase wire form).
    pub async fn run(
        mut self,
        sync: SyncHandle,
        mut notices: mpsc::Receiver<Vec<u8>>,
        shutdown: CancellationToken,
    ) {
        loop {
            let due = self.zones.values().map(|z| z.next).min();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(apex) = notices.recv() => {
                    match self.zones.get_mut(&apex) {
                        Some(z) => {
                            tracing::debug!(zone = %z.apex, "NOTIFY from the primary");
                            z.next = Instant::now();
                        }
                        None => tracing::debug!(zone = %crate::dname::wire_to_text(&apex),
                            "NOTIFY for a zone not followed: ignored"),
                    }
                }
                _ = tokio::time::sleep_until(due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))) => {}
            }
            let now = Instant::now();
            let due: Vec<Vec<u8>> = (self.zones.iter())
                .filter(|(_, z)| z.next <= now)
                .map(|(k, _)| k.clone())
                .collect();
            if due.is_empty() {
                continue;
            }
            let mut changed = false;
            for key in due {
                // The catalog first changes which zones there are: a zone it dropped is gone.
                if self.zones.contains_key(&key) {
                    changed |= self.refresh(&key).await;
                }
                if changed && self.catalog.as_ref().is_some_and(|c| name_wire(c) == key) {
                    self.follow_catalog();
                }
            }
            if changed {
                sync.followed(self.zones()).await;
            }
            self.report();
        }
    }

    /// Brings one zone up to the primary's serial; returns whether what is served changed
    /// (its data, or whether it expired).
    async fn refresh(&mut self, key: &[u8]) -> bool {
        let Some(zone) = self.zones.get(key) else {
            return false;
        };
        let (apex, held) = (zone.apex.clone(), zone.serial());
        let started = std::time::Instant::now();
        let mut result = self.primary.transfer(&apex, held).await;
        // Changes that do not fit what is held: the whole zone instead.
        let mut patched = None;
        if let (
            Ok(Transfer {
                got: Got::Changes(changes),
                ..
            }),
            Some(zone),
        ) = (&result, self.zones.get(key))
        {
            patched = zone.records.as_ref().and_then(|r| apply(r, changes));
            if patched.is_none() {
                tracing::warn!(zone = %apex, "the primary's IXFR does not fit the zone held: transferring it whole");
                result = self.primary.transfer(&apex, None).await;
            }
        }
        let state_dir = self.state_dir.clone();
        let Some(zone) = self.zones.get_mut(key) else {
            return false;
        };
        let (refresh, retry, expire) = zone.timers();
        let was_expired = zone.expired;
        match result {
            Ok(t) => {
                let kind = match (&t.got, &patched) {
                    (Got::Current, _) => None,
                    (Got::Changes(c), Some(_)) => Some(format!("IXFR ({} changes)", c.len())),
                    _ => Some("AXFR".to_owned()),
                };
                let records = match t.got {
                    Got::Current => None,
                    Got::Whole(r) => Some(r),
                    Got::Changes(_) => patched,
                };
                zone.confirmed = Some(SystemTime::now());
                zone.expired = false;
                zone.next = Instant::now() + refresh;
                if zone.last_error.take().is_some() {
                    tracing::info!(zone = %apex, primary = %self.primary.address, "the primary answers again");
                }
                let Some(records) = records else {
                    let name = apex.to_ascii();
                    tokio::task::spawn_blocking(move || state::confirm_followed(&state_dir, &name));
                    return was_expired;
                };
                tracing::info!(zone = %apex, serial = t.serial, transfer = kind.as_deref().unwrap_or(""),
                    records = records.len(), bytes = t.bytes, messages = t.messages,
                    took_ms = started.elapsed().as_millis() as u64, "zone transferred from the primary");
                // Kept before it is served: a restart right after serves this version.
                let (name, kept) = (apex.to_ascii(), records.clone());
                let saved = tokio::task::spawn_blocking(move || {
                    state::save_followed(&state_dir, &name, &kept)
                })
                .await;
                if let Ok(Err(e)) = saved {
                    tracing::warn!(zone = %apex, error = %e, "cannot keep the followed zone in state_dir; a restart transfers it whole");
                }
                zone.records = Some(records);
                true
            }
            Err(e) => {
                let text = e.to_string();
                if zone.last_error.as_deref() != Some(&text) {
                    tracing::warn!(zone = %apex, primary = %self.primary.address, error = %text,
                        "cannot refresh the followed zone; serving the version held");
                }
                zone.last_error = Some(text);
                zone.next = Instant::now() + retry;
                let age = zone.confirmed.and_then(|c| c.elapsed().ok());
                zone.expired = zone.records.is_some() && age.is_some_and(|a| a > expire);
                if zone.expired && !was_expired {
                    tracing::error!(zone = %apex, primary = %self.primary.address, expire_s = expire.as_secs(),
                        "the primary has not answered for longer than the zone's SOA expire: answering SERVFAIL for it until it does");
                }
                zone.expired != was_expired
            }
        }
    }
}

/// `held` with the IXFR's changes applied in order; `None` if one does not fit.
fn apply(held: &RecordList, changes: &[journal::Change]) -> Option<RecordList> {
    let mut current: Option<RecordList> = None;
    for c in changes {
        let next = journal::patch(current.as_ref().unwrap_or(held), c)?;
        current = Some(next);
    }
    current
}
