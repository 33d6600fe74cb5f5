//! [`Places`]: how many connections each client, and all clients together, hold now, so that
//! one client (or many) cannot take every file descriptor. Used by TCP DNS and the HTTP
//! endpoints alike.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::lock::lock;

/// The connections held now.
#[derive(Clone, Default)]
pub struct Places(Arc<Held>);

#[derive(Default)]
struct Held {
    per_client: Mutex<HashMap<IpAddr, usize>>,
    /// Read often (DNS over TCP shortens its idle time when busy): an atomic, not the lock.
    total: AtomicUsize,
}

/// One connection's place; dropping it gives the place back.
pub struct Place {
    held: Arc<Held>,
    client: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut per_client = lock(&self.held.per_client);
        self.held.total.fetch_sub(1, Ordering::Relaxed);
        if let Some(n) = per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                per_client.remove(&self.client);
            }
        }
    }
}

/// The unit one client's connections are counted in: an IPv4 address (also when seen as
/// IPv4-mapped IPv6), or an IPv6 /64 (one host can use a whole /64).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

impl Places {
    /// A place for a new connection from `client`, unless `total` are taken or this client
    /// holds `per_client` already.
    pub fn take(&self, client: IpAddr, total: usize, per_client: usize) -> Option<Place> {
        let key = client_key(client);
        // Taken and given back under the lock, so the two counts move together.
        let mut held = lock(&self.0.per_client);
        let mine = held.get(&key).copied().unwrap_or(0);
        if self.0.total.load(Ordering::Relaxed) >= total || mine >= per_client {
            return None;
        }
        self.0.total.fetch_add(1, Ordering::Relaxed);
        *held.entry(key).or_default() += 1;
        Some(Place {
            held: self.0.clone(),
            client: key,
        })
    }

    /// Connections held now, by all clients.
    pub fn total(&self) -> usize {
        self.0.total.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_client_and_in_all() {
        let places = Places::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "fd00::1".parse().unwrap();
        let b2: IpAddr = "fd00::2".parse().unwrap(); // the same /64
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap(); // a, seen through IPv6
        let a1 = places.take(a, 4, 2).unwrap();
        let _a2 = places.take(a, 4, 2).unwrap();
        assert!(
            places.take(mapped, 4, 2).is_none(),
            "a third from one client"
        );
        let _b1 = places.take(b, 4, 2).unwrap();
        let _b2 = places.take(b2, 4, 2).unwrap();
        assert!(
            places.take(b2, 4, 2).is_none(),
            "the same /64 is one client"
        );
        assert!(
            places.take("10.0.0.9".parse().unwrap(), 4, 2).is_none(),
            "none left"
        );
        assert_eq!(places.total(), 4);
        drop(a1);
        assert!(places.take(a, 4, 2).is_some(), "a place given back");
    }
}
