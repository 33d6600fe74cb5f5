//! Publishing: both views' compiled zone indexes, swapped in whole with one atomic store
//! each, and the replaced ones freed off the query threads.

use crate::lock::lock;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use std::sync::{Mutex, Weak};

use super::names::NamesSource;
use crate::dns::{SharedZone, ZoneIndex};
use crate::metrics::Telemetry;
use crate::services::Services;
use crate::zone::Directory;
use crate::zone::Zones;

/// Both views, built together from the same data.
pub struct Built {
    pub private: Zones,
    pub public: Option<Zones>,
}

/// The zones every listener reads, one per view; a sync replaces each whole with one atomic
/// pointer swap, so a query sees the old zone or the new one, never a mix.
#[derive(Clone)]
pub struct Views {
    pub private: SharedZone,
    /// Empty (every name REFUSED) unless `[public]` is configured.
    pub public: SharedZone,
    /// The service names' health and live answers (backhaul view only).
    pub services: Arc<Services>,
    /// The names directory of the last build, worked out when asked.
    pub names: Arc<Names>,
}

/// The names directory (`/`, `/api/v1/names`, `/hosts`): worked out from the last build's
/// data when asked for, and shared by the requests under way, but not kept after them: at
/// 100,000 members it is some 40 MB, for a page someone opens now and then.
#[derive(Default)]
pub struct Names {
    source: Mutex<Option<Arc<NamesSource>>>,
    /// The directory of `source` while some request still holds it.
    shared: Mutex<Weak<Directory>>,
    /// Counts the builds set so far.
    builds: std::sync::atomic::AtomicUsize,
}

impl Names {
    pub fn set(&self, source: NamesSource) {
        let mut current = lock(&self.source);
        *current = Some(Arc::new(source));
        self.builds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        drop(current);
        *lock(&self.shared) = Weak::new();
    }

    /// Which build the directory is of now (changes with every build; `None` before the
    /// first): what renderings of it are kept by.
    pub fn build(&self) -> Option<usize> {
        let source = lock(&self.source);
        source
            .as_ref()
            .map(|_| self.builds.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The scopes of the last build (`None` before the first).
    pub fn scopes(&self) -> Option<Arc<crate::zone::ScopeMap>> {
        lock(&self.source).as_ref().map(|s| s.scopes().clone())
    }

    /// The directory of the last build (`None` before the first). Takes a zone build's naming
    /// work unless another request holds it: call it off the async workers.
    pub fn directory(&self) -> Option<Arc<Directory>> {
        // Requests arriving together wait for one piece of work rather than each doing it.
        let mut shared = lock(&self.shared);
        if let Some(d) = shared.upgrade() {
            return Some(d);
        }
        let source = lock(&self.source).clone()?;
        let directory = Arc::new(source.directory());
        // A build that came in meanwhile made this one stale: share it only if not.
        if lock(&self.source)
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, &source))
        {
            *shared = Arc::downgrade(&directory);
        }
        Some(directory)
    }
}

impl Views {
    /// Views that run no health checks (tests and benchmarks: a check would connect to the
    /// members' addresses); service names answer with every member unless results are given
    /// to [`Services::take_results`].
    pub fn new() -> Views {
        Views::with(Services::one_shot())
    }

    /// The server's views: services run their checks and report to `telemetry`.
    pub fn reporting(telemetry: Arc<Telemetry>) -> Views {
        Views::with(Services::new(telemetry))
    }

    fn with(services: Services) -> Views {
        Views {
            private: Arc::new(ArcSwap::from_pointee(ZoneIndex::default())),
            public: Arc::new(ArcSwap::from_pointee(ZoneIndex::default())),
            services: Arc::new(services),
            names: Arc::default(),
        }
    }

    /// Compiles both views and swaps them in. The zones they replace are freed here, not on
    /// a query thread. The service plans go first: the live table has the new services'
    /// answers before the zone that names them is served.
    pub fn publish(&self, built: &Built) {
        self.services.plan(built.private.services.clone());
        let index = ZoneIndex::compile(&built.private).with_live(self.services.live());
        let private = self.private.swap(Arc::new(index));
        let public = built
            .public
            .as_ref()
            .map(ZoneIndex::compile)
            .unwrap_or_default();
        let public = self.public.swap(Arc::new(public));
        retire(private);
        retire(public);
    }

    /// One view with the names dynamic updates changed in `zone` (`owners`, lowercase wire)
    /// patched into the index it serves, not compiled again; compiled whole (from `built`)
    /// when the index does not hold that zone.
    pub fn patch_view(
        &self,
        built: &Built,
        view: crate::view::View,
        zone: &crate::zone::ZoneContent,
        owners: &[Vec<u8>],
    ) {
        let shared = match view {
            crate::view::View::Backhaul => &self.private,
            crate::view::View::Public => &self.public,
        };
        let patched = shared.load().patched(zone, owners);
        match patched {
            Some(index) => retire(shared.swap(Arc::new(index))),
            None => self.publish_view(built, view),
        }
    }

    /// Compiles and swaps in one view of `built` only (the one dynamic updates changed): the
    /// other keeps the index it has.
    pub fn publish_view(&self, built: &Built, view: crate::view::View) {
        match view {
            crate::view::View::Backhaul => {
                let index = ZoneIndex::compile(&built.private).with_live(self.services.live());
                retire(self.private.swap(Arc::new(index)));
            }
            crate::view::View::Public => {
                let public = built.public.as_ref().map(ZoneIndex::compile);
                retire(self.public.swap(Arc::new(public.unwrap_or_default())));
            }
        }
    }
}

/// Frees a replaced zone on this thread. A query thread may still be answering a batch from
/// it (for microseconds); whoever lets go last frees it, and freeing a large zone (100,000
/// members: ~24 MB handed back to the system) would be a latency spike on a query thread.
/// A zone transfer can hold one for longer: after a second it is left to the transfer.
fn retire(mut old: Arc<ZoneIndex>) {
    for _ in 0..1000 {
        match Arc::try_unwrap(old) {
            Ok(zone) => return drop(zone),
            Err(shared) => old = shared,
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl Default for Views {
    fn default() -> Views {
        Views::new()
    }
}
