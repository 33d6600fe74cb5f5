//! Wall-clock time as Unix seconds, the form serials, webhook timestamps and `/readyz` use.
//! Ground floor: imports nothing of ours.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch of `t`; 0 for a time before it (a badly set clock).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    unix_secs(SystemTime::now())
}

/// Milliseconds since the Unix epoch, now (the unit of Central's `lastSeen`).
pub fn unix_now_ms() -> i64 {
    (SystemTime::now().duration_since(UNIX_EPOCH))
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
