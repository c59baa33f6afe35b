//! End-to-end tests of `bde_kit::stream` against the local Kafka, Redis and MariaDB.

#[path = "stream_util/mod.rs"]
mod stream_util;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bde_kit::course::visit::Visit;
use bde_kit::io::kafka;
use bde_kit::stream::sink::foreach::foreach_batch;
use bde_kit::stream::sink::{KafkaSink, RedisZIncr};
use bde_kit::stream::{
    self, KafkaSource, ManualClock, Query, Start, Status, Stream, Trigger, Window,
};
use stream_util::*;

#[test]
fn analytics_query_fans_out_to_three_sinks_and_flushes_on_stop() {
    let mut f = Fixture::new("e2e");
    let topic = f.topic("visits");
    let carts = f.topic_name("carts");
    let key = f.key("countries");
    let db = f.database();
    let vs = visits(300);
    produce(&f.settings, &topic, &vs);

    // the course's query (notebook 4), with a test's names and a smaller batch
    let visits = Stream::<Visit>::read(
        KafkaSource::new(&topic)
            .starting(Start::Earliest)
            .max_records(70),
    );
    let q = Query::new(&format!("analytics-{}", f.tag))
        .settings(f.settings.clone())
        .trigger(Trigger::every(Duration::from_millis(200)))
        .start([
            visits
                .filter(|v| v.last_action == "ShoppingCart")
                .write(KafkaSink::new(&carts, Visit::csv_line)),
            visits.write(RedisZIncr::new(
                &key,
                |v: &Visit| v.country.clone(),
                |v: &Visit| v.duration as f64,
            )),
            visits
                .with_watermark(Duration::from_secs(5))
                .window(Window::tumbling(Duration::from_secs(5)), |v| {
                    v.last_action.clone()
                })
                .sum(|v| v.duration)
                .write(bde_kit::course::analytics::visit_stats_writer(&db)),
        ])
        .expect("start");
    // returns while the query goes on
    let s = q.until_idle(Duration::from_secs(2)).expect("watch");
    assert!(matches!(q.status(), Status::Running), "{:?}", q.status());
    assert_eq!(s.total_rows, 300);
    assert!(
        s.batches.iter().filter(|p| p.rows_in > 0).count() >= 5,
        "max_records 70 → at least 5 batches"
    );
    assert!(s.batches.iter().all(|p| p.rows_in <= 70));
    let last = q.last_progress().expect("progress");
    assert!(
        last.watermark_ms.is_some(),
        "windowed sink reports a watermark"
    );
    assert!(!q.summary().report().to_html().is_empty());

    let done = q.stop().expect("stop");
    assert_eq!(done.status, Status::Stopped);
    assert!(
        done.batches.last().is_some_and(|p| p.flush),
        "the last batch is the final flush"
    );

    // Redis: exact duration per country
    assert_eq!(
        redis_scores(&f.settings, &key),
        sum_by(&vs, |v| v.country.clone())
    );
    // MariaDB: after the final flush the window sums add up to the duration per action
    assert_eq!(
        db_sums_by_action(&f.settings, &db),
        sum_by(&vs, |v| v.last_action.clone())
    );
    // Kafka: exactly the ShoppingCart visits, as CSV lines
    let mut got: Vec<String> = kafka::read_all(&f.settings, &carts, Duration::from_secs(20))
        .expect("carts")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let mut want: Vec<String> = vs
        .iter()
        .filter(|v| v.last_action == "ShoppingCart")
        .map(Visit::csv_line)
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn raw_strings_once_available_now_and_restart_from_checkpoint() {
    let mut f = Fixture::new("str");
    let topic = f.topic("actions");
    let name = format!("str-{}", f.tag);
    let recs = |r: std::ops::Range<usize>| {
        r.map(|i| (None, ["FAQ", "Order", "Catalog"][i % 3].to_string()))
            .collect()
    };
    kafka::produce_all(&f.settings, &topic, recs(0..100)).expect("produce");
    let seen: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let run = |trigger: Trigger, max: usize| {
        let seen = seen.clone();
        let actions = Stream::<String>::read(
            KafkaSource::new(&topic)
                .starting(Start::Earliest)
                .max_records(max),
        );
        Query::new(&name)
            .settings(f.settings.clone())
            .trigger(trigger)
            .quiet(true)
            .start([
                actions.write(foreach_batch("collect", move |b, rows: &[String]| {
                    seen.lock()
                        .expect("lock")
                        .extend(rows.iter().map(|r| (b.batch_id, r.clone())));
                    Ok(())
                })),
            ])
            .expect("start")
    };
    // once: one batch of at most 30
    let q = run(Trigger::Once, 30);
    assert!(q.await_termination(Duration::from_secs(30)).expect("wait"));
    assert_eq!(q.status(), Status::Stopped);
    assert_eq!(seen.lock().expect("lock").len(), 30);
    // available-now: the remaining 70 in batches of 30, then stop; ids continue from the checkpoint
    kafka::produce_all(&f.settings, &topic, recs(100..110)).expect("more");
    let q = run(Trigger::AvailableNow, 30);
    assert!(q.await_termination(Duration::from_secs(30)).expect("wait"));
    let s = seen.lock().expect("lock").clone();
    assert_eq!(
        s.len(),
        110,
        "resumed from the checkpoint: nothing twice, nothing lost"
    );
    let ids: Vec<u64> = q.progress().iter().map(|p| p.batch_id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(s.iter().filter(|(_, v)| v == "FAQ").count(), 37);
    // the checkpoint wins over the starting offsets: a third run has nothing to read
    let q = run(Trigger::AvailableNow, 30);
    assert!(q.await_termination(Duration::from_secs(30)).expect("wait"));
    assert_eq!(seen.lock().expect("lock").len(), 110);
    let cp = stream::query::checkpoint_offsets(&f.settings, &name).expect("cp");
    assert_eq!(cp[&topic][&0], 110);
}

#[test]
fn processing_time_windows_follow_the_injected_clock() {
    let mut f = Fixture::new("clock");
    let topic = f.topic("visits");
    let clock = ManualClock::new(1_000_000);
    let windows: Arc<Mutex<Vec<bde_kit::stream::WindowRow>>> = Arc::default();
    let w2 = windows.clone();
    let q = Query::new(&format!("clock-{}", f.tag))
        .settings(f.settings.clone())
        .trigger(Trigger::every(Duration::from_millis(50)))
        .clock(clock.clone())
        .quiet(true)
        .start([
            Stream::<Visit>::read(KafkaSource::new(&topic).starting(Start::Earliest))
                .with_watermark(Duration::from_secs(5))
                .window(Window::tumbling(Duration::from_secs(5)), |v| {
                    v.last_action.clone()
                })
                .sum(|v| v.duration)
                .write(foreach_batch(
                    "windows",
                    move |_, rows: &[bde_kit::stream::WindowRow]| {
                        w2.lock().expect("lock").extend_from_slice(rows);
                        Ok(())
                    },
                )),
        ])
        .expect("start");
    let vs = visits(20);
    produce(&f.settings, &topic, &vs);
    q.until_idle(Duration::from_millis(800)).expect("batch");
    assert!(
        windows.lock().expect("lock").is_empty(),
        "window [1000 s, 1005 s) still open"
    );
    // empty batches advance the watermark as the clock moves: the window closes at 1010 s
    clock.set(1_009_999);
    std::thread::sleep(Duration::from_millis(400));
    assert!(windows.lock().expect("lock").is_empty());
    clock.set(1_010_000);
    for _ in 0..100 {
        if !windows.lock().expect("lock").is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = windows.lock().expect("lock").clone();
    assert!(
        !got.is_empty(),
        "the window was emitted after the watermark passed its end"
    );
    assert!(got
        .iter()
        .all(|w| w.start_ms == 1_000_000 && w.end_ms == 1_005_000));
    let total: i64 = got.iter().map(|w| w.total).sum();
    assert_eq!(total, vs.iter().map(|v| v.duration).sum::<i64>());
    q.stop().expect("stop");
}
