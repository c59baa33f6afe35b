//! Crash test: the course's analytics query (Kafka CSV carts, Redis ZINCRBY per country,
//! MariaDB 5 s window sums per action) runs as a child process (`bde stream-worker`) over a
//! 3-partition topic and aborts itself at chosen points (`BDE_CRASH_AT=step@batch`): after the
//! write-ahead, between two sinks, inside the Kafka send, inside the Redis transaction, and after
//! the sinks before the commit. Each restart must report that it replayed the batch the previous
//! run left pending, and at the end every effect must be exact: nothing lost, nothing counted
//! twice. One variant windows on processing time (the course's default: windows close and are
//! written while the runs crash), one on event time (window state carried through every crash
//! in the checkpoint, written by the final flush).
//! A third variant runs 10 s windows sliding every 5 s (each visit in two windows) behind a
//! drop of duplicate visits within the watermark (a tenth of the visits are sent again 40 visits
//! later): the
//! sliding window state and the remembered keys go through every crash in the checkpoint.
//! The visits and the order of the crash steps come from a seed (printed; `BDE_CRASH_SEED`
//! replays one).

#[path = "stream_util/mod.rs"]
mod stream_util;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bde_kit::course::visit::Visit;
use bde_kit::io::kafka;
use bde_kit::stream::crashpoint::STEPS;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use stream_util::*;

/// How a worker run ended.
struct Run {
    signal: Option<i32>,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Waits for the child at most `limit` (then kills it: a run that hangs is a failure too).
fn finish(mut child: Child, limit: Duration) -> Run {
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the worker did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    Run {
        signal: status.signal(),
        code: status.code(),
        stdout,
        stderr,
    }
}

fn seed() -> u64 {
    std::env::var("BDE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

/// Which query the worker runs.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    ProcessingTime,
    EventTime,
    /// Event time, 10 s windows sliding every 5 s, duplicates dropped.
    SlidingDedup,
}

/// Window sums per (start, action) of 10 s windows sliding every 5 s.
fn expected_sliding_sums(vs: &[Visit]) -> BTreeMap<(String, String), i64> {
    let mut out = BTreeMap::new();
    for v in vs {
        let t = v.event_ms();
        let last = t.div_euclid(5000) * 5000;
        for start in [last - 5000, last] {
            let at = bde_kit::stream::clock::fmt_ms(start);
            *out.entry((at, v.last_action.clone())).or_default() += v.duration;
        }
    }
    out
}

fn crash_and_replay(variant: Variant) {
    let seed = seed();
    let event_time = variant != Variant::ProcessingTime;
    eprintln!(
        "crash test seed {seed} (BDE_CRASH_SEED={seed} replays it), event time: {event_time}"
    );
    let mut f = Fixture::new(match variant {
        Variant::ProcessingTime => "crash_pt",
        Variant::EventTime => "crash_et",
        Variant::SlidingDedup => "crash_sd",
    });
    let topic = f.topic_with_partitions("visits", 3);
    let carts = f.topic_name("carts");
    let key = f.key("countries");
    let db = f.database();
    let mut vs = visits_seeded(1200, seed);
    let mut sent = vs.clone();
    if variant == Variant::SlidingDedup {
        // every tenth visit again, 40 visits later (a batch or two after it, so the remembered
        // keys go through crashes; never a run of duplicates that would leave a crash step's
        // batch without a row to write); the expectations count each line once
        sent = Vec::with_capacity(vs.len() * 11 / 10);
        for (i, v) in vs.iter().enumerate() {
            sent.push(v.clone());
            if i >= 40 && (i - 40) % 10 == 0 {
                sent.push(vs[i - 40].clone());
            }
        }
        let mut seen = std::collections::HashSet::new();
        vs.retain(|v| seen.insert(v.csv_line()));
    }
    produce(&f.settings, &topic, &sent);
    let query = format!("crash-{}", f.tag);
    let bin = env!("CARGO_BIN_EXE_bde");
    let worker = |crash_at: Option<&str>| -> Child {
        let mut args: Vec<String> = [
            "stream-worker",
            "--query",
            &query,
            "--topic",
            &topic,
            "--carts",
            &carts,
            "--redis-key",
            &key,
            "--db",
            &db,
            "--checkpoint",
            &f.cp_root.to_string_lossy(),
            "--max-records",
            "20",
            "--idle-ms",
            "2500",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if event_time {
            // The three partitions are read at different paces, so a 5 s watermark would drop
            // rows of the slower ones as late, and which ones depends on the broker's fetches.
            // A watermark longer than the data's span keeps every window open until the final
            // flush: the variant proves that window state survives crashes and replays exactly.
            args.extend([
                "--event-time".into(),
                "--watermark-ms".into(),
                "3600000".into(),
            ]);
        }
        if variant == Variant::SlidingDedup {
            args.extend([
                "--window-ms".into(),
                "10000".into(),
                "--slide-ms".into(),
                "5000".into(),
                "--dedup".into(),
            ]);
        }
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("BDE_CRASH_AT");
        if let Some(at) = crash_at {
            cmd.env("BDE_CRASH_AT", at);
        }
        cmd.spawn().expect("spawn the worker")
    };

    // Every step once, in a seeded order, at batches 3, 7, 11, ...: each run gets past the batch
    // the previous run left pending before it reaches its own crash point.
    let mut steps = STEPS.to_vec();
    steps.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let mut pending: Option<u64> = None;
    for (i, step) in steps.iter().enumerate() {
        let batch = 3 + 4 * i as u64;
        let at = format!("{step}@{batch}");
        let run = finish(worker(Some(&at)), Duration::from_secs(120));
        assert_eq!(
            run.signal,
            Some(6),
            "run {i} should abort at {at} (exit code {:?}); stderr:\n{}",
            run.code,
            run.stderr
        );
        assert!(
            run.stderr
                .contains(&format!("aborting at {step} of batch {batch}")),
            "run {i} aborted elsewhere than {at}:\n{}",
            run.stderr
        );
        if let Some(b) = pending {
            assert!(
                run.stdout.contains(&format!("replayed batch {b}\n")),
                "run {i} did not replay batch {b}; stdout:\n{}",
                run.stdout
            );
        }
        assert!(
            !run.stdout.contains(&format!("batch {batch}\n")),
            "run {i} committed batch {batch} although it aborted inside it"
        );
        pending = Some(batch);
    }
    // The last run replays the last pending batch, goes to the end (idle), stops and flushes.
    let last = finish(worker(None), Duration::from_secs(180));
    assert_eq!(last.code, Some(0), "final run failed:\n{}", last.stderr);
    let b = pending.expect("a pending batch");
    assert!(
        last.stdout.contains(&format!("replayed batch {b}\n")),
        "the final run did not replay batch {b}:\n{}",
        last.stdout
    );

    // Redis: exact duration per country.
    assert_eq!(
        redis_scores(&f.settings, &key),
        sum_by(&vs, |v| v.country.clone()),
        "Redis totals per country"
    );
    // MariaDB: exact sums per action; on event time, per (window, action), one row each.
    if variant == Variant::SlidingDedup {
        let (sums, rows) = db_window_sums(&f.settings, &db);
        let want = expected_sliding_sums(&vs);
        assert_eq!(sums, want, "sliding window sums per (window, action)");
        assert_eq!(rows, want.len(), "one row per (window, action)");
    } else if event_time {
        let (sums, rows) = db_window_sums(&f.settings, &db);
        let want = expected_window_sums(&vs);
        assert_eq!(sums, want, "window sums per (window, action)");
        assert_eq!(rows, want.len(), "one row per (window, action)");
    } else {
        assert_eq!(
            db_sums_by_action(&f.settings, &db),
            sum_by(&vs, |v| v.last_action.clone()),
            "sums per action"
        );
    }
    // Kafka: every cart exactly once, across partitions and replays.
    let mut got: Vec<String> = kafka::read_all(&f.settings, &carts, Duration::from_secs(30))
        .expect("carts")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let mut expect: Vec<String> = vs
        .iter()
        .filter(|v| v.last_action == "ShoppingCart")
        .map(Visit::csv_line)
        .collect();
    got.sort();
    expect.sort();
    assert_eq!(got.len(), expect.len(), "carts written exactly once");
    assert_eq!(got, expect);
}

#[test]
fn crashes_at_every_step_replay_exactly_on_processing_time() {
    crash_and_replay(Variant::ProcessingTime);
}

#[test]
fn crashes_at_every_step_replay_exactly_on_event_time() {
    crash_and_replay(Variant::EventTime);
}

#[test]
fn crashes_at_every_step_replay_exactly_with_sliding_windows_and_dropped_duplicates() {
    crash_and_replay(Variant::SlidingDedup);
}
