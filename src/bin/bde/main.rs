//! `bde`: the kit's small command-line companion.
//!
//! - `bde health` — prints the state of Kafka, Redis and MariaDB; exit code 1 if one is down.
//! - `bde stream-worker …` (hidden) — the analytics query as a child process, for the crash tests
//!   (`tests/stream_crash.rs`, `tests/stream_engine_guards.rs`; see [`worker`]).
//!
//! The benchmarks are another crate of the workspace, `bench/` (binary `bde-bench`, clap): a
//! dependency of this package compiles into every notebook kernel (evcxr builds the package with
//! all its dependencies), so `bde` parses its two commands with a match and needs no parser crate.

mod worker;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("health") => {
            let h = bde_kit::health(&bde_kit::Settings::from_env());
            print!("{h}");
            if h.all_up() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        // Hidden: the analytics query as a child process (crash test).
        Some("stream-worker") => match worker::main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("stream-worker failed: {e}");
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("usage: bde health   (the benchmarks: bde-bench --help, crate bench/)");
            ExitCode::from(2)
        }
    }
}
