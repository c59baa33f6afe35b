//! Processing-time clocks: the wall clock, and a manual clock for deterministic tests.
//!
//! Times in the engine are milliseconds since the Unix epoch in UTC: a daylight-saving change
//! does not move them, and windows are aligned to multiples of their size since the epoch.
//! Rendered as zone-less `YYYY-MM-DD HH:MM:SS` (UTC), the way the course's timestamps read.
//! The engine never lets a batch time go below the previous one, so a wall clock stepped back
//! (NTP) cannot make rows late (see `Checkpoint::last_batch_time_ms`).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A source of processing time in milliseconds.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The machine's wall clock, in UTC.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that moves only when told (tests).
#[derive(Debug, Default, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start_ms: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(start_ms)))
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Renders engine milliseconds as `YYYY-MM-DD HH:MM:SS`.
pub fn fmt_ms(ms: i64) -> String {
    to_naive(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Engine milliseconds as a naive date-time.
pub fn to_naive(ms: i64) -> Option<chrono::NaiveDateTime> {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.naive_utc())
}
