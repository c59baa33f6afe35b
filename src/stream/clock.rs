//! Processing-time clocks: the wall clock, and a manual clock for deterministic tests.
//!
//! Times in the engine are milliseconds of naive local wall time read as if it were UTC, the way
//! the course's zone-less timestamps behave, so windows are aligned to multiples of their size
//! since the epoch in local time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A source of processing time in milliseconds.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The machine's local wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Local::now().naive_local().and_utc().timestamp_millis()
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
    to_naive(ms).map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| ms.to_string())
}

/// Engine milliseconds as a naive date-time.
pub fn to_naive(ms: i64) -> Option<chrono::NaiveDateTime> {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.naive_utc())
}
