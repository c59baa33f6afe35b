//! Crash test: the course's analytics query (Kafka CSV carts, Redis ZINCRBY per country,
//! MariaDB 5 s window sums per action on event time) runs as a child process (`bde
//! stream-worker`) and is killed with SIGKILL at random moments (and, in some runs, aborts itself
//! at random points between the write-ahead and the sinks with `BDE_STREAM_CHAOS`), then
//! restarted. At the end every effect must be exact: nothing lost, nothing counted twice.

#[path = "stream_util/mod.rs"]
mod stream_util;

use std::process::{Command, Stdio};
use std::time::Duration;

use bde_kit::io::kafka;
use bde_kit::stream::Visit;
use rand::Rng;
use stream_util::*;

#[test]
fn killed_and_restarted_worker_applies_every_visit_exactly_once() {
    let mut f = Fixture::new("crash");
    let topic = f.topic("visits");
    let carts = f.topic_name("carts");
    let key = f.key("countries");
    let db = f.database();
    let vs = visits(2500);
    produce(&f.settings, &topic, &vs);
    let query = format!("crash-{}", f.tag);
    let args = |idle: &str| -> Vec<String> {
        [
            "stream-worker", "--query", &query, "--topic", &topic, "--carts", &carts, "--redis-key", &key, "--db", &db,
            "--checkpoint", &f.cp_root.to_string_lossy(), "--max-records", "40", "--event-time", "--idle-ms", idle,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let bin = env!("CARGO_BIN_EXE_bde");
    let mut rng = rand::rng();
    let mut killed = 0;
    let mut aborted = 0;
    for run in 0..8 {
        let chaos = run % 2 == 1;
        let mut cmd = Command::new(bin);
        cmd.args(args("60000")).stdout(Stdio::null()).stderr(Stdio::null());
        if chaos {
            cmd.env("BDE_STREAM_CHAOS", "0.03");
        }
        let mut child = cmd.spawn().expect("spawn worker");
        std::thread::sleep(Duration::from_millis(rng.random_range(400..1800)));
        match child.try_wait().expect("try_wait") {
            Some(status) => {
                if !status.success() {
                    aborted += 1;
                }
            }
            None => {
                child.kill().expect("SIGKILL");
                let _ = child.wait();
                killed += 1;
            }
        }
    }
    assert!(killed >= 3, "the worker was killed mid-run {killed} times");
    // every self-abort happens after a batch was written ahead and before it was committed,
    // so at least one batch was replayed
    assert!(aborted >= 1, "no run aborted itself between write-ahead and commit");
    // The last run goes to the end (idle), stops, and flushes the open windows.
    let out = Command::new(bin).args(args("2500")).output().expect("final run");
    assert!(out.status.success(), "final run failed: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!("killed {killed} times, self-aborted {aborted} times; final: {}", String::from_utf8_lossy(&out.stdout).trim());

    // Redis: exact duration per country.
    assert_eq!(redis_scores(&f.settings, &key), sum_by(&vs, |v| v.country.clone()));
    // MariaDB: exact sums per (event-time window, action), one row each (additive upsert).
    let (sums, rows) = db_window_sums(&f.settings, &db);
    let want = expected_window_sums(&vs);
    assert_eq!(sums, want);
    assert_eq!(rows, want.len());
    // Kafka: the stated guarantee (exactly-once for a single writer): every cart once.
    let mut got: Vec<String> = kafka::read_all(&f.settings, &carts, Duration::from_secs(30)).expect("carts").into_iter().map(|(_, v)| v).collect();
    let mut expect: Vec<String> = vs.iter().filter(|v| v.last_action == "ShoppingCart").map(Visit::csv_line).collect();
    got.sort();
    expect.sort();
    assert_eq!(got.len(), expect.len(), "carts written exactly once");
    assert_eq!(got, expect);
}
