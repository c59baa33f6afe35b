//! `bde stream-worker`: the analytics query as a child process, for the crash test.
//!
//! `bde stream-worker --query Q --topic T --carts T2 --redis-key K --db DB --checkpoint DIR
//! [--max-records N] [--event-time] [--idle-ms MS]` runs until no record arrived for `idle-ms`
//! (default 3000), then stops with a final flush and exits 0. It can be killed at any moment.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::bench::analytics::Analytics;
use crate::stream::source::Start;
use crate::stream::trigger::Trigger;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// Runs the worker with command-line arguments (without the subcommand).
pub fn main(args: &[String]) -> Result<()> {
    let need = |n: &str| arg(args, n).ok_or_else(|| Error::invalid(format!("stream-worker needs {n}")));
    let a = Analytics {
        query: need("--query")?,
        visits_topic: need("--topic")?,
        carts_topic: need("--carts")?,
        redis_key: need("--redis-key")?,
        db: need("--db")?,
        start: Start::Earliest,
        trigger: Trigger::every(Duration::ZERO),
        max_records: arg(args, "--max-records").and_then(|v| v.parse().ok()).unwrap_or(100),
        event_time: args.iter().any(|a| a == "--event-time"),
        ..Analytics::default()
    };
    let idle = Duration::from_millis(arg(args, "--idle-ms").and_then(|v| v.parse().ok()).unwrap_or(3000));
    let q = a.query().checkpoint_dir(need("--checkpoint")?).quiet(true).start()?;
    q.until_idle(idle)?;
    let s = q.stop()?;
    println!("stream-worker done: {} batches, {} rows", s.batches.len(), s.total_rows);
    Ok(())
}
