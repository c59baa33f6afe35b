//! `bde`: command-line companion of the kit.
//!
//! - `bde health` — prints the state of Kafka, Redis and MariaDB; exit code 1 if one is down.

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
        _ => {
            eprintln!("usage: bde health");
            ExitCode::from(2)
        }
    }
}
