//! `bde-bench`: bde_kit's benchmarks, a crate of its own in the workspace (`bench/`) so that
//! neither its code nor its argument parser (clap) compiles into a notebook kernel, which builds
//! only the `bde_kit` package.
//!
//! The side-by-side comparison (driven by `benches/compare.py`, run with `kernel/bench.sh`): each
//! step does one measured thing in its own process, so the orchestrator can sample that process's
//! memory, and prints one JSON object on the last line of stdout:
//!
//! - `bde-bench gen-stock --dir D --rows N [--seed S]` — a Hive-style stock tree written
//!   directly with Polars ([`stock::generate`]), no MariaDB;
//! - `bde-bench aggregate --dir D [--repeat R] [--plan whole|partitionwise]` — the course's
//!   aggregation (SPEC §4.4) with [`bde_kit::course::stock_data::aggregate::summary_plan`], timed,
//!   with the column sums used to check the peers' results;
//! - `bde-bench gen-visits --dir D --visits N [--per-file K] [--seed S]` — the course's visits
//!   as JSON-lines files (what PySpark's file source reads);
//! - `bde-bench produce --dir D --topic T` — the visits produced to a fresh topic, once, before
//!   every engine reads it ([`visits::produce_dir`]);
//! - `bde-bench raw-consume --topic T` — the raw rdkafka consume rate of T, the ceiling
//!   ([`visits::raw_consume`]);
//! - `bde-bench stream --dir D [--topic T] [--carts-out F] [--max-records N]` — the analytics
//!   query with its three real sinks over T ([`visits::run_stream`]); without --topic, the
//!   visits are first produced to a fresh topic and its raw consume rate measured in the same
//!   process (the older interface, which `--stream-vs` builds of older commits also have);
//! - `bde-bench floor --dir D [--topic T]` — the job's floor: the same visits consumed, decoded,
//!   the carts produced, one Redis pipeline and one MariaDB upsert, step by step with the kit's
//!   crates and nothing else ([`floor::run`]);
//!
//! The steps that run an engine mark their measured phase (consume → effects) for the
//! orchestrator's memory sampler ([`phase::mark`]).
//! - `bde-bench latency [--visits N] [--spread-ms S] [--trigger-ms T]` — producer-to-Redis latency
//!   of the analytics query on its 1-second trigger ([`latency::run`]);
//! - `bde-bench chart --results F --out F.svg` — the ratios of a run as an SVG ([`chart::run`]).
//!
//! Two stand-alone benchmarks that print their figures as text:
//!
//! - `bde-bench stream-rate [--visits N] [--partitions P] [--cleanup]` — the analytics query's
//!   end-to-end rate against the raw consume rate ([`stream::run_with`]); `--cleanup` removes what
//!   interrupted runs left behind;
//! - `bde-bench batch --warehouses W --days D --items I [--partitions N] [--connections C]
//!   [--chunk-ids K] [--seed S] [--no-index] [--keep]` — the batch pipeline through MariaDB at a
//!   chosen scale ([`batch::run`]).
//!
//! Numbers may be written with underscores (`--rows 1_000_000`). Nothing here asserts timings.

mod batch;
mod chart;
mod floor;
mod latency;
mod phase;
mod stock;
mod stream;
mod visits;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bde_kit::error::Result;
use clap::{Parser, Subcommand};

/// bde_kit's benchmarks (the steps of benches/compare.py and two stand-alone runs).
#[derive(Debug, Parser)]
#[command(name = "bde-bench", version)]
struct Cli {
    #[command(subcommand)]
    step: Step,
}

#[derive(Debug, Subcommand)]
enum Step {
    /// Writes a Hive-style stock tree with Polars (prints JSON).
    GenStock {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "1000000", value_parser = num::<u64>)]
        rows: u64,
        #[arg(long, default_value = "42", value_parser = num::<u64>)]
        seed: u64,
    },
    /// Runs the course's aggregation over a tree, timed, with the column sums (prints JSON).
    Aggregate {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "1", value_parser = num::<usize>)]
        repeat: usize,
        /// whole: one lazy plan over the tree; partitionwise: one STOCK_DATE folder at a time.
        #[arg(long, default_value = "partitionwise", value_parser = ["whole", "partitionwise"])]
        plan: String,
    },
    /// Writes the course's visits as JSON-lines files (prints JSON).
    GenVisits {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "1000000", value_parser = num::<u64>)]
        visits: u64,
        #[arg(long, default_value = "50000", value_parser = num::<u64>)]
        per_file: u64,
        #[arg(long, default_value = "7", value_parser = num::<u64>)]
        seed: u64,
    },
    /// Creates a topic and produces the visits under --dir to it, key = country (prints JSON).
    Produce {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        topic: String,
    },
    /// The raw rdkafka consume rate of a topic, the ceiling (prints JSON).
    RawConsume {
        #[arg(long)]
        topic: String,
    },
    /// Produces the visits to Kafka, measures the raw consume rate, runs the analytics query
    /// (prints JSON); with --topic, runs the query over that topic only.
    Stream {
        #[arg(long)]
        dir: PathBuf,
        /// Writes the cart lines the query produced to this file.
        #[arg(long)]
        carts_out: Option<PathBuf>,
        /// Records per micro-batch.
        #[arg(long, default_value = "50000", value_parser = num::<usize>)]
        max_records: usize,
        /// Read the visits from this topic (made by `produce`; --dir then only counts them).
        #[arg(long)]
        topic: Option<String>,
    },
    /// The job's floor over the same visits, step by step (prints JSON).
    Floor {
        #[arg(long)]
        dir: PathBuf,
        /// Read the visits from this topic (made by `produce`; --dir then only counts them).
        #[arg(long)]
        topic: Option<String>,
    },
    /// Producer-to-Redis latency of the analytics query (prints JSON).
    Latency {
        #[arg(long, default_value = "1000", value_parser = num::<usize>)]
        visits: usize,
        /// The visits are produced at an even pace over this many milliseconds.
        #[arg(long, default_value = "20000", value_parser = num::<u64>)]
        spread_ms: u64,
        #[arg(long, default_value = "1000", value_parser = num::<u64>)]
        trigger_ms: u64,
    },
    /// Draws the ratios of a run as an SVG (prints JSON).
    Chart {
        #[arg(long, default_value = "build/bench/results.json")]
        results: PathBuf,
        #[arg(long, default_value = "build/bench/ratios.svg")]
        out: PathBuf,
    },
    /// The analytics query's end-to-end rate against the raw consume rate.
    StreamRate {
        #[arg(long, default_value = "1000000", value_parser = num::<usize>)]
        visits: usize,
        /// Partitions of the visits topic.
        #[arg(long, default_value = "1", value_parser = num::<i32>)]
        partitions: i32,
        /// Only remove what interrupted benchmark runs left behind (topics, keys, databases).
        #[arg(long)]
        cleanup: bool,
    },
    /// The batch pipeline through MariaDB at a chosen scale: generate, upload, aggregate, write.
    Batch(BatchArgs),
}

#[derive(Debug, clap::Args)]
struct BatchArgs {
    #[arg(long, value_parser = num::<usize>)]
    warehouses: usize,
    #[arg(long, value_parser = num::<usize>)]
    days: usize,
    #[arg(long, value_parser = num::<usize>)]
    items: usize,
    /// Parallel reads per warehouse upload (Spark's numPartitions).
    #[arg(long, default_value = "2", value_parser = num::<usize>)]
    partitions: usize,
    /// Parallel connections of the generator.
    #[arg(long, default_value = "4", value_parser = num::<usize>)]
    connections: usize,
    /// IDs per read query.
    #[arg(long, default_value = "50000", value_parser = num::<i64>)]
    chunk_ids: i64,
    #[arg(long, default_value = "42", value_parser = num::<u64>)]
    seed: u64,
    /// Measure without the (WAREHOUSE_ID, STOCK_DATE) index on the source table.
    #[arg(long)]
    no_index: bool,
    /// Keep the databases and files afterwards.
    #[arg(long)]
    keep: bool,
}

impl From<BatchArgs> for batch::BenchConfig {
    fn from(a: BatchArgs) -> Self {
        batch::BenchConfig {
            warehouses: a.warehouses,
            days: a.days,
            items: a.items,
            partitions: a.partitions,
            connections: a.connections,
            chunk_ids: a.chunk_ids,
            seed: a.seed,
            index: !a.no_index,
            keep: a.keep,
        }
    }
}

/// A number, underscores allowed (`1_000_000`).
fn num<T: std::str::FromStr>(s: &str) -> std::result::Result<T, String> {
    s.replace('_', "")
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))
}

/// Runs one step; a step of compare.py prints its JSON result as the last stdout line.
fn run(step: Step) -> Result<()> {
    let json = match step {
        Step::GenStock { dir, rows, seed } => {
            stock::generate(&dir, &stock::Shape::for_rows(rows), seed)?
        }
        Step::Aggregate { dir, repeat, plan } => {
            stock::aggregate(&dir, repeat.max(1), stock::Plan::parse(&plan)?)?
        }
        Step::GenVisits {
            dir,
            visits,
            per_file,
            seed,
        } => visits::generate(&dir, visits, per_file.max(1), seed)?,
        Step::Produce { dir, topic } => visits::produce_dir(&dir, &topic)?,
        Step::RawConsume { topic } => visits::raw_consume(&topic)?,
        Step::Stream {
            dir,
            carts_out,
            max_records,
            topic,
        } => visits::run_stream(&dir, carts_out.as_deref(), max_records, topic.as_deref())?,
        Step::Floor { dir, topic } => floor::run(&dir, topic.as_deref())?,
        Step::Latency {
            visits,
            spread_ms,
            trigger_ms,
        } => latency::run(
            visits.max(1),
            Duration::from_millis(spread_ms),
            Duration::from_millis(trigger_ms),
        )?,
        Step::Chart { results, out } => chart::run(&results, &out)?,
        Step::StreamRate { cleanup: true, .. } => return stream::cleanup_leftovers(),
        Step::StreamRate {
            visits, partitions, ..
        } => {
            let r = stream::run_with(visits, partitions)?;
            println!(
                "stream-rate: {} visits, produced {:.0}/s, raw consume {:.0}/s, query end to end {:.0}/s",
                r.visits, r.produce_per_sec, r.raw_consume_per_sec, r.end_to_end_per_sec
            );
            return Ok(());
        }
        Step::Batch(a) => {
            let r = batch::run(&bde_kit::Settings::from_env(), &a.into())?;
            print!("{r}");
            return Ok(());
        }
    };
    println!("{json}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.step) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bde-bench failed: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> std::result::Result<Step, clap::Error> {
        Cli::try_parse_from(std::iter::once("bde-bench").chain(line.split(' '))).map(|c| c.step)
    }

    #[test]
    fn steps_and_numbers_with_underscores() {
        match parse("gen-stock --dir /tmp/t --rows 1_000_000").expect("gen-stock") {
            Step::GenStock { rows, seed, .. } => assert_eq!((rows, seed), (1_000_000, 42)),
            other => panic!("{other:?}"),
        }
        match parse("aggregate --dir d --repeat 3 --plan whole").expect("aggregate") {
            Step::Aggregate { repeat, plan, .. } => {
                assert_eq!((repeat, plan.as_str()), (3, "whole"))
            }
            other => panic!("{other:?}"),
        }
        assert!(parse("aggregate --dir d --plan sideways").is_err());
        assert!(parse("gen-stock --rows 10").is_err(), "--dir is required");
        assert!(parse("gen-stock --dir d --rows ten").is_err());
        match parse("stream --dir d --carts-out c.txt --max-records 100").expect("stream") {
            Step::Stream {
                carts_out,
                max_records,
                ..
            } => assert_eq!(
                (carts_out, max_records),
                (Some(PathBuf::from("c.txt")), 100)
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("floor --dir d"),
            Ok(Step::Floor { topic: None, .. })
        ));
        match parse("stream --dir d --topic t").expect("stream --topic") {
            Step::Stream { topic, .. } => assert_eq!(topic.as_deref(), Some("t")),
            other => panic!("{other:?}"),
        }
        assert!(parse("produce --dir d").is_err(), "--topic is required");
        assert!(parse("raw-consume").is_err(), "--topic is required");
        assert!(parse("floor").is_err(), "--dir is required");
    }

    #[test]
    fn batch_args() {
        let Step::Batch(a) =
            parse("batch --warehouses 20 --days 90 --items 1_00 --no-index").expect("batch")
        else {
            panic!("not batch")
        };
        let c: batch::BenchConfig = a.into();
        assert_eq!(
            (
                c.warehouses,
                c.days,
                c.items,
                c.index,
                c.partitions,
                c.connections
            ),
            (20, 90, 100, false, 2, 4)
        );
        assert!(
            parse("batch --days 1 --items 1").is_err(),
            "--warehouses is required"
        );
        assert!(parse("batch --warehouses 1 --days").is_err());
    }

    #[test]
    fn stream_rate_defaults() {
        match parse("stream-rate --cleanup").expect("stream-rate") {
            Step::StreamRate {
                visits,
                partitions,
                cleanup,
            } => assert_eq!((visits, partitions, cleanup), (1_000_000, 1, true)),
            other => panic!("{other:?}"),
        }
    }
}
