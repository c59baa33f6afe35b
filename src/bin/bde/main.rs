//! `bde`: command-line companion of the kit. Its benchmark and crash-test code lives here, in
//! the binary's own modules, so the library a notebook kernel compiles carries none of it.
//!
//! - `bde health` — prints the state of Kafka, Redis and MariaDB; exit code 1 if one is down.
//! - `bde bench-stream [--visits N]` — streaming benchmark: analytics query vs raw consume rate.
//! - `bde bench <step> …` — one step of the side-by-side comparison with PySpark (gen-stock,
//!   aggregate, gen-visits, stream; driven by `benches/compare.py`, run with `kernel/bench.sh`).
//! - `bde bench-batch --warehouses W --days D --items I [--partitions N] [--connections C]` — batch
//!   benchmark: generate, upload to Parquet, aggregate, with rows/s.

mod bench;
mod worker;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("health") => {
            let h = bde_kit::health();
            print!("{h}");
            if h.all_up() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Some("bench-stream") => {
            let n = args.iter().position(|a| a == "--visits").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
            let parts = args.iter().position(|a| a == "--partitions").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(1);
            let r = if args.iter().any(|a| a == "--cleanup") {
                bench::stream::cleanup_leftovers()
            } else {
                bench::stream::run_with(n, parts).map(|r| {
                    println!("bench-stream: {} visits, produced {:.0}/s, raw consume {:.0}/s, query end to end {:.0}/s", r.visits, r.produce_per_sec, r.raw_consume_per_sec, r.end_to_end_per_sec)
                })
            };
            match r {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bench-stream failed: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Some("bench-batch") => match bench::batch::parse_args(&args[1..]).and_then(|cfg| bench::batch::run(&bde_kit::Settings::from_env(), &cfg)) {
            Ok(r) => {
                print!("{r}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bench-batch failed: {e}");
                ExitCode::from(1)
            }
        },
        Some("bench") => match bench::main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench failed: {e}");
                ExitCode::from(1)
            }
        },
        // Hidden: the analytics query as a child process (crash test).
        Some("stream-worker") => match worker::main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("stream-worker failed: {e}");
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("usage: bde health | bde bench <step> | bde bench-stream [--visits N] | bde bench-batch --warehouses W --days D --items I");
            ExitCode::from(2)
        }
    }
}
