//! `bde stream-worker`: the chapter-4 analytics query as a child process, for the crash test.
//!
//! `bde stream-worker --query Q --topic T --carts T2 --redis-key K --db DB --checkpoint DIR
//! [--max-records N] [--event-time] [--watermark-ms MS] [--idle-ms MS] [--window-ms MS]
//! [--slide-ms MS] [--dedup]` builds the course's query
//! ([`Analytics`]: carts as CSV to Kafka, duration per country to Redis, 5 s window sums per action
//! to MariaDB, on processing time unless `--event-time`), runs until no record arrived for
//! `idle-ms` (default 3000), stops with a final flush and exits 0. It prints `replayed batch N`
//! the moment a batch left pending by an earlier run is committed, and `committed batch N` for
//! every other batch. With `BDE_CRASH_AT=step@batch` it aborts at that point
//! ([`bde_kit::stream::crashpoint`]). Its flags are read by hand: `bde` has no argument parser
//! crate (the tests start it; the benchmarks' CLI with clap is `bde-bench`, crate `bench/`).

use std::io::Write;
use std::time::Duration;

use bde_kit::course::analytics::Analytics;
use bde_kit::error::{Error, Result};
use bde_kit::stream::source::Start;
use bde_kit::stream::trigger::Trigger;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Runs the worker with command-line arguments (without the subcommand).
pub fn main(args: &[String]) -> Result<()> {
    let need =
        |n: &str| arg(args, n).ok_or_else(|| Error::invalid(format!("stream-worker needs {n}")));
    let max_records = arg(args, "--max-records")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let idle = Duration::from_millis(
        arg(args, "--idle-ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(3000),
    );
    let watermark = Duration::from_millis(
        arg(args, "--watermark-ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(5000),
    );

    let ms_arg = |n: &str| {
        arg(args, n)
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
    };
    // The course's query (carts as readable CSV, additive window sums), every batch at once.
    let a = Analytics {
        query: need("--query")?,
        visits_topic: need("--topic")?,
        carts_topic: need("--carts")?,
        redis_key: need("--redis-key")?,
        db: need("--db")?,
        start: Start::Earliest,
        trigger: Trigger::every(Duration::ZERO),
        max_records,
        event_time: args.iter().any(|a| a == "--event-time"),
        watermark,
        window: ms_arg("--window-ms").unwrap_or(Duration::from_secs(5)),
        slide: ms_arg("--slide-ms"),
        dedup: args.iter().any(|a| a == "--dedup"),
        ..Analytics::default()
    };
    let q = a
        .query(&bde_kit::Settings::from_env())
        .checkpoint_dir(need("--checkpoint")?)
        .quiet(true)
        .on_progress(|p| {
            let what = if p.replay { "replayed" } else { "committed" };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{what} batch {}", p.batch_id);
            let _ = out.flush();
        })
        .start(a.branches())?;
    q.until_idle(idle)?;
    let s = q.stop()?;
    println!(
        "stream-worker done: {} batches, {} rows",
        s.batches.len(),
        s.total_rows
    );
    Ok(())
}
