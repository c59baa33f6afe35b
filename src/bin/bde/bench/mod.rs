//! Side-by-side benchmarks with PySpark (`bde bench …`, driven by `benches/compare.py`).
//!
//! Each subcommand does one measured step in its own process, so the orchestrator can sample
//! that process's memory, and prints one JSON object on the last line of stdout:
//!
//! - `bde bench gen-stock --dir D --rows N [--seed S]` — a Hive-style stock tree written
//!   directly with Polars ([`stock::generate`]), no MariaDB;
//! - `bde bench aggregate --dir D [--repeat R] [--plan whole|partitionwise]` — the course's aggregation (SPEC §4.4) with
//!   [`bde_kit::course::stock_data::aggregate::summary_plan`], timed, with the column sums used to check
//!   PySpark's result;
//! - `bde bench gen-visits --dir D --visits N [--per-file K] [--seed S]` — the course's visits
//!   as JSON-lines files (what PySpark's file source reads);
//! - `bde bench stream --dir D [--carts-out F]` — the same visits produced to a fresh Kafka
//!   topic, the raw rdkafka consume rate (the ceiling), then the analytics query with its three
//!   real sinks ([`visits::run_stream`]);
//! - `bde bench latency [--visits N] [--spread-ms S] [--trigger-ms T]` — producer-to-Redis latency
//!   of the analytics query on its 1-second trigger ([`latency::run`]);
//! - `bde bench chart --results F --out F.svg` — the ratios of a run as an SVG ([`chart::run`]).
//!
//! Nothing here asserts timings: the figures are printed, the orchestrator compares results.

pub mod analytics;
pub mod batch;
pub mod chart;
pub mod latency;
pub mod stream;
pub mod stock;
pub mod visits;

use bde_kit::error::{Error, Result};

/// Value of `--flag` in `args`, if present.
pub fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

/// Numeric value of `--flag` (underscores allowed), or `default`.
pub fn num_flag(args: &[String], name: &str, default: u64) -> Result<u64> {
    match flag(args, name) {
        None => Ok(default),
        Some(v) => v.replace('_', "").parse().map_err(|_| Error::invalid(format!("{name}: '{v}' is not a number"))),
    }
}

fn required<'a>(args: &'a [String], name: &str) -> Result<&'a str> {
    flag(args, name).ok_or_else(|| Error::invalid(format!("{name} is required")))
}

/// `bde bench <step> …`: runs one step and prints its JSON result as the last stdout line.
pub fn main(args: &[String]) -> Result<()> {
    let step = args.first().map(String::as_str).unwrap_or("");
    let rest = args.get(1..).unwrap_or(&[]);
    let out = match step {
        "gen-stock" => {
            let dir = std::path::PathBuf::from(required(rest, "--dir")?);
            let shape = stock::Shape::for_rows(num_flag(rest, "--rows", 1_000_000)?);
            stock::generate(&dir, &shape, num_flag(rest, "--seed", 42)?)?
        }
        "aggregate" => {
            let dir = std::path::PathBuf::from(required(rest, "--dir")?);
            let plan = stock::Plan::parse(flag(rest, "--plan").unwrap_or("partitionwise"))?;
            stock::aggregate(&dir, num_flag(rest, "--repeat", 1)?.max(1) as usize, plan)?
        }
        "gen-visits" => {
            let dir = std::path::PathBuf::from(required(rest, "--dir")?);
            let n = num_flag(rest, "--visits", 1_000_000)?;
            let per_file = num_flag(rest, "--per-file", 50_000)?.max(1);
            visits::generate(&dir, n, per_file, num_flag(rest, "--seed", 7)?)?
        }
        "stream" => {
            let dir = std::path::PathBuf::from(required(rest, "--dir")?);
            let carts = flag(rest, "--carts-out").map(std::path::PathBuf::from);
            let max = num_flag(rest, "--max-records", 50_000)? as usize;
            visits::run_stream(&dir, carts.as_deref(), max)?
        }
        "latency" => {
            let n = num_flag(rest, "--visits", 1_000)?.max(1) as usize;
            let spread = std::time::Duration::from_millis(num_flag(rest, "--spread-ms", 20_000)?);
            let trigger = std::time::Duration::from_millis(num_flag(rest, "--trigger-ms", 1_000)?);
            latency::run(n, spread, trigger)?
        }
        "chart" => chart::run(flag(rest, "--results").unwrap_or("build/bench/results.json").as_ref(), flag(rest, "--out").unwrap_or("build/bench/ratios.svg").as_ref())?,
        other => {
            return Err(Error::invalid(format!(
                "unknown bench step '{other}': use gen-stock, aggregate, gen-visits, stream, latency or chart (see benches/compare.py)"
            )))
        }
    };
    println!("{out}");
    Ok(())
}
