//! The engine's guards against the real servers: one instance per checkpoint (another process,
//! a reset under a running query), a topic recreated under a checkpoint, a wall clock stepped
//! back, a bounded run over a topic ending in transaction markers, and a bounded tail.

#[path = "stream_util/mod.rs"]
mod stream_util;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bde_kit::course::visit::Visit;
use bde_kit::io::kafka;
use bde_kit::rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use bde_kit::stream::checkpoint;
use bde_kit::stream::sink::foreach::foreach_batch;
use bde_kit::stream::{
    KafkaSource, ManualClock, Query, Start, Status, Stream, Trigger, Window, WindowRow,
};
use bde_kit::Error;
use stream_util::*;

#[test]
fn a_second_instance_in_another_process_fails_at_once_naming_the_holder() {
    let mut f = Fixture::new("guard_two");
    let topic = f.topic("visits");
    let carts = f.topic_name("carts");
    let key = f.key("countries");
    let db = f.database();
    produce(&f.settings, &topic, &visits(30));
    let query = format!("two-{}", f.tag);
    let q = Query::new(&query)
        .settings(f.settings.clone())
        .trigger(Trigger::every(Duration::from_millis(100)))
        .quiet(true)
        .start([
            Stream::<Visit>::read(KafkaSource::new(&topic).starting(Start::Earliest))
                .write(foreach_batch("count", |_, _: &[Visit]| Ok(()))),
        ])
        .expect("first instance");
    q.for_batches(1).expect("first instance runs");

    let bin = env!("CARGO_BIN_EXE_bde");
    let worker = || {
        Command::new(bin)
            .args([
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
            ])
            .args([
                "--checkpoint",
                &f.cp_root.to_string_lossy(),
                "--idle-ms",
                "500",
            ])
            .env_remove("BDE_CRASH_AT")
            .output()
            .expect("run the worker")
    };
    let second = worker();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(
        second.status.code(),
        Some(1),
        "the second instance must fail: {err}"
    );
    assert!(err.contains("is running elsewhere"), "{err}");
    assert!(
        err.contains(&format!("pid={}", std::process::id())),
        "the error names the holder's pid: {err}"
    );
    assert!(err.contains("since="), "{err}");

    // a reset does not delete the checkpoint of a running query
    let reset = checkpoint::reset(&f.cp_root, &query).expect_err("reset under a running query");
    assert!(matches!(reset, Error::CheckpointLocked { .. }), "{reset}");
    assert!(checkpoint::dir_for(&f.cp_root, &query)
        .join("checkpoint.json")
        .exists());

    // once stopped, the lock is free for the next instance
    q.stop().expect("stop");
    let third = worker();
    assert_eq!(
        third.status.code(),
        Some(0),
        "after the stop another process may run the query: {}",
        String::from_utf8_lossy(&third.stderr)
    );
}

#[test]
fn a_recreated_topic_under_a_checkpoint_fails_loudly_with_the_fix() {
    let mut f = Fixture::new("guard_recreated");
    let topic = f.topic("visits");
    produce(&f.settings, &topic, &visits(12));
    let query = format!("recreated-{}", f.tag);
    let seen = Arc::new(Mutex::new(0usize));
    let run = |seen: Arc<Mutex<usize>>| {
        Query::new(&query)
            .settings(f.settings.clone())
            .trigger(Trigger::AvailableNow)
            .quiet(true)
            .start([
                Stream::<Visit>::read(KafkaSource::new(&topic).starting(Start::Earliest)).write(
                    foreach_batch("count", move |_, rows: &[Visit]| {
                        *seen.lock().expect("lock") += rows.len();
                        Ok(())
                    }),
                ),
            ])
            .expect("start")
    };
    let q = run(seen.clone());
    assert!(q.await_termination(Duration::from_secs(60)).expect("wait"));
    assert_eq!(q.status(), Status::Stopped);
    assert_eq!(*seen.lock().expect("lock"), 12);

    kafka::delete_topics(&f.settings, &[&topic]).expect("delete");
    std::thread::sleep(Duration::from_millis(500));
    kafka::create_topics(&f.settings, &[&topic], 1).expect("recreate");
    produce(&f.settings, &topic, &visits(3));
    let q = run(seen.clone());
    assert!(q.await_termination(Duration::from_secs(60)).expect("wait"));
    let Status::Failed(msg) = q.status() else {
        panic!("the query must fail, it is {:?}", q.status())
    };
    assert!(msg.contains("deleted and recreated"), "{msg}");
    assert!(msg.contains("reset"), "the message gives the fix: {msg}");
    assert_eq!(
        *seen.lock().expect("lock"),
        12,
        "no record of the new topic was counted or skipped silently"
    );

    // the fix works: after a reset the query reads the new topic from its start
    checkpoint::reset(&f.cp_root, &query).expect("reset");
    let q = run(seen.clone());
    assert!(q.await_termination(Duration::from_secs(60)).expect("wait"));
    assert_eq!(q.status(), Status::Stopped);
    assert_eq!(*seen.lock().expect("lock"), 15);
}

#[test]
fn a_wall_clock_stepped_back_an_hour_drops_no_row_as_late() {
    let mut f = Fixture::new("guard_clock");
    let topic = f.topic("visits");
    let clock = ManualClock::new(1_700_000_000_000);
    let windows: Arc<Mutex<Vec<WindowRow>>> = Arc::new(Mutex::new(Vec::new()));
    let w = windows.clone();
    let q = Query::new(&format!("clock-{}", f.tag))
        .settings(f.settings.clone())
        .trigger(Trigger::every(Duration::from_millis(50)))
        .clock(clock.clone())
        .quiet(true)
        .start([
            Stream::<Visit>::read(KafkaSource::new(&topic).starting(Start::Earliest))
                .with_watermark(Duration::from_secs(5))
                .window(Window::tumbling(Duration::from_secs(5)), |v: &Visit| {
                    v.last_action.clone()
                })
                .sum(|v: &Visit| v.duration)
                .write(foreach_batch("windows", move |_, rows: &[WindowRow]| {
                    w.lock().expect("lock").extend_from_slice(rows);
                    Ok(())
                })),
        ])
        .expect("start");
    let first = visits(20);
    produce(&f.settings, &topic, &first);
    q.until_idle(Duration::from_millis(800))
        .expect("first rows");
    clock.advance(-3_600_000); // NTP steps the wall clock back an hour
    let second = visits(20);
    produce(&f.settings, &topic, &second);
    q.until_idle(Duration::from_millis(800))
        .expect("second rows");
    let s = q.stop().expect("stop");
    assert_eq!(s.total_late, 0, "rows read after the step are not late");
    let emitted: i64 = windows.lock().expect("lock").iter().map(|r| r.delta).sum();
    let all: i64 = first.iter().chain(&second).map(|v| v.duration).sum();
    assert_eq!(emitted, all, "every duration reaches the window sink");
    assert!(
        s.batches
            .windows(2)
            .all(|b| b[0].batch_time_ms <= b[1].batch_time_ms),
        "batch times never go backwards"
    );
}

#[test]
fn available_now_ends_on_a_topic_whose_end_is_a_transaction_marker() {
    let mut f = Fixture::new("guard_markers");
    let topic = f.topic("txn");
    let (s, t) = (f.settings.clone(), topic.clone());
    bde_kit::runtime::run_blocking(move || -> Result<(), String> {
        let p: ThreadedProducer<DefaultProducerContext> = kafka::client_config(&s)
            .set(
                "transactional.id",
                format!("bde-guard-txn-{}", std::process::id()),
            )
            .set("transaction.timeout.ms", "10000")
            .create()
            .map_err(|e| e.to_string())?;
        p.init_transactions(Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        p.begin_transaction().map_err(|e| e.to_string())?;
        for i in 0..5 {
            p.send(BaseRecord::<(), _>::to(&t).payload(&format!("FAQ{i}")))
                .map_err(|(e, _)| e.to_string())?;
        }
        p.commit_transaction(Duration::from_secs(10))
            .map_err(|e| e.to_string())
    })
    .expect("join")
    .expect("transactional produce");
    let marks = kafka::watermarks(&f.settings, &topic).expect("watermarks");
    assert_eq!(marks[0].2, 6, "5 records and the commit marker");
    let all = kafka::read_all(&f.settings, &topic, Duration::from_secs(20))
        .expect("read_all ends on the position past the marker");
    assert_eq!(all.len(), 5);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let q = Query::new(&format!("markers-{}", f.tag))
        .settings(f.settings.clone())
        .trigger(Trigger::AvailableNow)
        .deadline(Duration::from_secs(60))
        .quiet(true)
        .start([
            Stream::<String>::read(KafkaSource::new(&topic).starting(Start::Earliest)).write(
                foreach_batch("collect", move |_, rows: &[String]| {
                    s2.lock().expect("lock").extend_from_slice(rows);
                    Ok(())
                }),
            ),
        ])
        .expect("start");
    assert!(
        q.await_termination(Duration::from_secs(90)).expect("wait"),
        "the bounded run ends"
    );
    assert_eq!(
        q.status(),
        Status::Stopped,
        "it reached the end offsets past the marker"
    );
    assert_eq!(seen.lock().expect("lock").len(), 5);
}

#[test]
fn a_tail_poll_is_bounded_in_values() {
    let mut f = Fixture::new("guard_tail");
    let topic = f.topic("tail");
    let tail = kafka::Tail::latest(&f.settings, &topic).expect("tail");
    let recs: Vec<(Option<String>, String)> = (0..50).map(|i| (None, format!("v{i}"))).collect();
    kafka::produce_all(&f.settings, &topic, recs).expect("produce");
    let first = tail.poll_at_most(Duration::from_secs(5), 20).expect("poll");
    assert_eq!(first.len(), 20, "at most the bound");
    assert_eq!(first[0], "v0");
    let mut rest = Vec::new();
    while rest.len() < 30 {
        let got = tail.poll_at_most(Duration::from_secs(5), 20).expect("poll");
        assert!(got.len() <= 20);
        if got.is_empty() {
            break;
        }
        rest.extend(got);
    }
    assert_eq!(
        rest.first().map(String::as_str),
        Some("v20"),
        "the rest stays for the next poll"
    );
    assert_eq!(rest.len(), 30);
}

#[test]
fn a_tail_poll_is_bounded_in_bytes() {
    let mut f = Fixture::new("guard_tail_bytes");
    let topic = f.topic("tail_bytes");
    let tail = kafka::Tail::latest(&f.settings, &topic).expect("tail");
    // ten values of 200 000 bytes; a poll bounded to 500 000 bytes ends with the value that
    // reaches the bound: the third
    let recs: Vec<(Option<String>, String)> = (0..10)
        .map(|i| (None, format!("{i}{}", "x".repeat(199_999))))
        .collect();
    kafka::produce_all(&f.settings, &topic, recs).expect("produce");
    let first = tail
        .poll_bounded(Duration::from_secs(5), 100, 500_000)
        .expect("poll");
    assert_eq!(
        first.len(),
        3,
        "the value that reaches the bound is the last"
    );
    assert!(first[0].starts_with('0') && first[2].starts_with('2'));
    let mut rest = Vec::new();
    while rest.len() < 7 {
        let got = tail
            .poll_bounded(Duration::from_secs(5), 100, 500_000)
            .expect("poll");
        assert!(got.len() <= 3, "every poll is bounded: {}", got.len());
        if got.is_empty() {
            break;
        }
        rest.extend(got);
    }
    let firsts: String = rest.iter().filter_map(|v| v.chars().next()).collect();
    assert_eq!(
        firsts, "3456789",
        "the rest stays for the next polls, in order"
    );
}
