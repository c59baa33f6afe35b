//! Phase marks for the orchestrator's memory sampler: `benches/compare.py` samples each step's
//! process tree RSS every 50 ms and reports the peak between a step's `start` and `end` marks
//! (the phase every engine is measured over: consume → effects), beside the whole process's.
//! A mark is one line `NAME UNIX_SECONDS` appended to the file named by `BENCH_PHASE_FILE`;
//! without that variable marks do nothing. The Python peers write the same lines
//! (`benches/kafka_common.py`'s `phase`).

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends `name` and the time to `$BENCH_PHASE_FILE` (a mark the sampler reads; errors are
/// reported on stderr and otherwise ignored: a missing mark only widens the measured window).
pub fn mark(name: &str) {
    let Some(path) = std::env::var_os("BENCH_PHASE_FILE") else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{name} {now:.3}"));
    if let Err(e) = written {
        eprintln!("bde-bench: phase mark {name} not written: {e}");
    }
}
