//! When micro-batches run: at a fixed interval, once, or over everything available now.

use std::time::Duration;

/// The query's trigger (Spark's `processingTime`, `once`, `availableNow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A batch every interval (a batch that overruns starts the next one at once).
    Every(Duration),
    /// One batch (at most `max_records`), then the query stops.
    Once,
    /// Everything up to the end offsets seen at start, in batches of `max_records`, then stop.
    AvailableNow,
}

impl Trigger {
    /// A batch every `interval`.
    pub fn every(interval: Duration) -> Trigger {
        Trigger::Every(interval)
    }
}

impl Default for Trigger {
    /// As fast as data arrives, polling every 100 ms when idle.
    fn default() -> Self {
        Trigger::Every(Duration::from_millis(100))
    }
}
