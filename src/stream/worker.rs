//! `bde stream-worker`: the chapter-4 analytics query as a child process, for the crash test.
//!
//! `bde stream-worker --query Q --topic T --carts T2 --redis-key K --db DB --checkpoint DIR
//! [--max-records N] [--event-time] [--watermark-ms MS] [--idle-ms MS]` builds the query (carts as CSV to Kafka,
//! duration per country to Redis, 5 s window sums per action to MariaDB, on processing time
//! unless `--event-time`), runs until no record arrived for `idle-ms` (default 3000), stops with
//! a final flush and exits 0. It prints `replayed batch N` the moment a batch left pending by an
//! earlier run is committed, and `committed batch N` for every other batch. With
//! `BDE_CRASH_AT=step@batch` it aborts at that point ([`crate::stream::crashpoint`]).

use std::io::Write;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::stream::query::Query;
use crate::stream::sink::{KafkaSink, MariaDbInsert, RedisZIncr, Windowed};
use crate::stream::source::{KafkaSource, Start};
use crate::stream::trigger::Trigger;
use crate::stream::visit::Visit;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// Runs the worker with command-line arguments (without the subcommand).
pub fn main(args: &[String]) -> Result<()> {
    let need = |n: &str| arg(args, n).ok_or_else(|| Error::invalid(format!("stream-worker needs {n}")));
    let max_records = arg(args, "--max-records").and_then(|v| v.parse().ok()).unwrap_or(100);
    let idle = Duration::from_millis(arg(args, "--idle-ms").and_then(|v| v.parse().ok()).unwrap_or(3000));
    let watermark = Duration::from_millis(arg(args, "--watermark-ms").and_then(|v| v.parse().ok()).unwrap_or(5000));

    let carts = KafkaSink::new(&need("--carts")?, Visit::csv_line).filter(|v: &Visit| v.last_action == "ShoppingCart");
    let countries = RedisZIncr::new(&need("--redis-key")?, |v: &Visit| v.country.clone(), |v: &Visit| v.duration as f64);
    let mut window = Windowed::tumbling(Duration::from_secs(5))
        .watermark(watermark)
        .key(|v: &Visit| v.last_action.clone())
        .sum(|v: &Visit| v.duration);
    if args.iter().any(|a| a == "--event-time") {
        window = window.event_time(Visit::event_ms);
    }
    let q = Query::<Visit>::new(&need("--query")?)
        .source(KafkaSource::new(&need("--topic")?).starting(Start::Earliest).max_records(max_records))
        .trigger(Trigger::every(Duration::ZERO))
        .sink(carts)
        .sink(countries)
        .sink(window.to(MariaDbInsert::visit_stats(&need("--db")?)))
        .checkpoint_dir(need("--checkpoint")?)
        .quiet(true)
        .on_progress(|p| {
            let what = if p.replay { "replayed" } else { "committed" };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{what} batch {}", p.batch_id);
            let _ = out.flush();
        })
        .start()?;
    q.until_idle(idle)?;
    let s = q.stop()?;
    println!("stream-worker done: {} batches, {} rows", s.batches.len(), s.total_rows);
    Ok(())
}
