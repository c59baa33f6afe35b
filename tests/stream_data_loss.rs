//! Issue 19, item 3: records the broker removed (retention, deleted records) below a query's
//! checkpoint are data loss. By default the query stops with an error naming topic, partition
//! and the lost range (Spark's `failOnDataLoss=true`); with `fail_on_data_loss(false)` it goes on
//! at the first offset still held and the batch's progress names the skipped range.
//!
//! The loss is made for real on the broker: `io::kafka::delete_records` (Kafka's DeleteRecords)
//! moves the partition's low watermark above the stopped query's checkpoint.

#[path = "stream_util/mod.rs"]
mod stream_util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bde_kit::course::visit::Visit;
use bde_kit::io::kafka;
use bde_kit::stream::sink::foreach::foreach_batch;
use bde_kit::stream::{
    DataLoss, KafkaSource, Query, Start, Status, Stream, StreamingQuery, Trigger,
};
use stream_util::*;

/// Runs query `name` over `topic` until the end offsets (AvailableNow); counts rows into `seen`.
fn run(f: &Fixture, name: &str, source: KafkaSource, seen: &Arc<Mutex<usize>>) -> StreamingQuery {
    let seen = seen.clone();
    let q = Query::new(name)
        .settings(f.settings.clone())
        .trigger(Trigger::AvailableNow)
        .quiet(true)
        .start([Stream::<Visit>::read(source).write(foreach_batch(
            "count",
            move |_, rows: &[Visit]| {
                *seen.lock().expect("lock") += rows.len();
                Ok(())
            },
        ))])
        .expect("start");
    assert!(q.await_termination(Duration::from_secs(60)).expect("wait"));
    q
}

/// A topic whose query checkpoint stands at offset 10 while the broker holds only 15..20.
fn checkpoint_below_low_watermark(f: &mut Fixture, query: &str) -> (String, Arc<Mutex<usize>>) {
    let topic = f.topic("visits");
    let seen = Arc::new(Mutex::new(0usize));
    produce(&f.settings, &topic, &visits(10));
    let q = run(
        f,
        query,
        KafkaSource::new(&topic).starting(Start::Earliest),
        &seen,
    );
    assert_eq!(q.status(), Status::Stopped);
    assert_eq!(*seen.lock().expect("lock"), 10);
    produce(&f.settings, &topic, &visits(10));
    let lo = kafka::delete_records(&f.settings, &topic, 0, 15).expect("delete records");
    assert_eq!(lo, 15, "the broker's low watermark after DeleteRecords");
    let marks = kafka::watermarks(&f.settings, &topic).expect("watermarks");
    assert_eq!(
        marks,
        vec![(0, 15, 20)],
        "offsets 10..15 are gone, 15..20 held"
    );
    (topic, seen)
}

#[test]
fn records_removed_below_the_checkpoint_stop_the_query_naming_the_lost_range() {
    let mut f = Fixture::new("loss_fail");
    let query = format!("loss-fail-{}", f.tag);
    let (topic, seen) = checkpoint_below_low_watermark(&mut f, &query);

    let q = run(&f, &query, KafkaSource::new(&topic), &seen);
    let Status::Failed(msg) = q.status() else {
        panic!("the query must stop on data loss, it is {:?}", q.status())
    };
    assert!(
        msg.contains(&format!("{topic}[0] offsets 10..15")),
        "names topic, partition and range: {msg}"
    );
    assert!(
        msg.contains("fail_on_data_loss(false)"),
        "names the option: {msg}"
    );
    assert_eq!(
        *seen.lock().expect("lock"),
        10,
        "nothing read past the loss"
    );
}

#[test]
fn with_fail_on_data_loss_off_the_query_goes_on_and_its_progress_shows_the_skipped_range() {
    let mut f = Fixture::new("loss_accept");
    let query = format!("loss-accept-{}", f.tag);
    let (topic, seen) = checkpoint_below_low_watermark(&mut f, &query);

    let q = run(
        &f,
        &query,
        KafkaSource::new(&topic).fail_on_data_loss(false),
        &seen,
    );
    assert_eq!(q.status(), Status::Stopped);
    assert_eq!(
        *seen.lock().expect("lock"),
        15,
        "the 5 records still held were read"
    );
    let progress = q.progress();
    assert_eq!(
        progress[0].data_loss,
        vec![DataLoss {
            topic: topic.clone(),
            partition: 0,
            from: 10,
            to: 15
        }],
        "the first batch after the restart names the skipped range"
    );
    assert!(
        progress[0].line().contains("offsets 10..15"),
        "{}",
        progress[0].line()
    );
    assert!(
        progress[1..].iter().all(|p| p.data_loss.is_empty()),
        "reported once: {progress:?}"
    );
}

/// A running query whose first batch (offsets 0..5 of 20) is held in its sink while the broker
/// deletes the records below offset 12; then the batch is released. Returns the query and the
/// rows counted.
fn loss_while_running(
    f: &mut Fixture,
    source: impl Fn(&str) -> KafkaSource,
) -> (StreamingQuery, String, Arc<Mutex<usize>>) {
    let topic = f.topic("visits");
    produce(&f.settings, &topic, &visits(20));
    let seen = Arc::new(Mutex::new(0usize));
    let entered = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let (s, e, r) = (seen.clone(), entered.clone(), release.clone());
    let q = Query::new(&format!("loss-running-{}", f.tag))
        .settings(f.settings.clone())
        .trigger(Trigger::every(Duration::from_millis(50)))
        .quiet(true)
        .start([
            Stream::<Visit>::read(source(&topic).starting(Start::Earliest).max_records(5)).write(
                foreach_batch("count", move |_, rows: &[Visit]| {
                    e.store(true, Ordering::SeqCst);
                    while !r.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    *s.lock().expect("lock") += rows.len();
                    Ok(())
                }),
            ),
        ])
        .expect("start");
    let t = Instant::now();
    while !entered.load(Ordering::SeqCst) {
        assert!(t.elapsed() < Duration::from_secs(60), "{:?}", q.status());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        kafka::delete_records(&f.settings, &topic, 0, 12).expect("delete records"),
        12
    );
    release.store(true, Ordering::SeqCst);
    (q, topic, seen)
}

#[test]
fn records_removed_under_a_running_query_stop_it_naming_the_lost_range() {
    let mut f = Fixture::new("loss_run_fail");
    let (q, topic, seen) = loss_while_running(&mut f, KafkaSource::new);
    assert!(q.await_termination(Duration::from_secs(60)).expect("wait"));
    let Status::Failed(msg) = q.status() else {
        panic!("the query must stop on data loss, it is {:?}", q.status())
    };
    assert!(msg.contains(&format!("{topic}[0] offsets 5..12")), "{msg}");
    assert_eq!(
        *seen.lock().expect("lock"),
        5,
        "only the first batch was applied"
    );
}

#[test]
fn records_removed_under_a_running_query_are_skipped_and_shown_with_the_option() {
    let mut f = Fixture::new("loss_run_accept");
    let (q, topic, seen) =
        loss_while_running(&mut f, |t| KafkaSource::new(t).fail_on_data_loss(false));
    let t = Instant::now();
    while *seen.lock().expect("lock") < 13 {
        assert!(t.elapsed() < Duration::from_secs(60), "{:?}", q.status());
        std::thread::sleep(Duration::from_millis(20));
    }
    q.stop().expect("stop");
    assert_eq!(
        *seen.lock().expect("lock"),
        13,
        "0..5 and 12..20, nothing twice"
    );
    let lost: Vec<DataLoss> = q.progress().into_iter().flat_map(|p| p.data_loss).collect();
    assert_eq!(
        lost,
        vec![DataLoss {
            topic,
            partition: 0,
            from: 5,
            to: 12
        }]
    );
}
