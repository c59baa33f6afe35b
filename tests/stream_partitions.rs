//! Issue 19, item 2: partitions added to a source topic are read, while the query runs and after
//! a restart, from their beginning (everything in a new partition is newer than the query).

#[path = "stream_util/mod.rs"]
mod stream_util;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bde_kit::course::visit::Visit;
use bde_kit::io::kafka;
use bde_kit::rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
use bde_kit::rdkafka::client::DefaultClientContext;
use bde_kit::rdkafka::producer::{FutureProducer, FutureRecord};
use bde_kit::stream::sink::foreach::foreach_batch;
use bde_kit::stream::{KafkaSource, Query, Start, Status, Stream, StreamingQuery, Trigger};
use bde_kit::Settings;
use stream_util::*;

fn grow(settings: &Settings, topic: &str, total: usize) {
    let admin: AdminClient<DefaultClientContext> =
        kafka::client_config(settings).create().expect("admin");
    let t = topic.to_string();
    let r = bde_kit::block_on(async move {
        admin
            .create_partitions(&[NewPartitions::new(&t, total)], &AdminOptions::new())
            .await
    })
    .expect("runtime")
    .expect("create partitions");
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
}

fn produce_to(settings: &Settings, topic: &str, partition: i32, vs: &[Visit]) {
    let p: FutureProducer = kafka::client_config(settings).create().expect("producer");
    let values: Vec<String> = vs.iter().map(Visit::to_json).collect();
    let t = topic.to_string();
    bde_kit::block_on(async move {
        for v in &values {
            p.send(
                FutureRecord::<(), _>::to(&t)
                    .partition(partition)
                    .payload(v),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("send");
        }
    })
    .expect("produce");
}

fn wait_rows(seen: &Arc<Mutex<usize>>, n: usize, q: &StreamingQuery) {
    let t = Instant::now();
    while *seen.lock().expect("lock") < n {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{} of {n} rows; {:?}",
            seen.lock().expect("lock"),
            q.status()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn partitions_added_while_running_and_while_stopped_are_read_from_their_beginning() {
    let mut f = Fixture::new("grow");
    let topic = f.topic("visits");
    let seen = Arc::new(Mutex::new(0usize));
    let start = || {
        let seen = seen.clone();
        Query::new(&format!("grow-{}", f.tag))
            .settings(f.settings.clone())
            .trigger(Trigger::every(Duration::from_millis(100)))
            .quiet(true)
            .start([
                Stream::<Visit>::read(KafkaSource::new(&topic).starting(Start::Latest)).write(
                    foreach_batch("count", move |_, rows: &[Visit]| {
                        *seen.lock().expect("lock") += rows.len();
                        Ok(())
                    }),
                ),
            ])
            .expect("start")
    };
    let q = start();
    // Running: the reader is open and its start pinned, so what comes after it is read
    let t = Instant::now();
    while q.status() != Status::Running {
        assert!(t.elapsed() < Duration::from_secs(60), "{:?}", q.status());
        std::thread::sleep(Duration::from_millis(20));
    }
    produce_to(&f.settings, &topic, 0, &visits(3));
    wait_rows(&seen, 3, &q);
    grow(&f.settings, &topic, 2);
    produce_to(&f.settings, &topic, 1, &visits(5));
    wait_rows(&seen, 8, &q);
    q.stop().expect("stop");
    // added while stopped: a restart with Start::Latest still reads it from its beginning
    grow(&f.settings, &topic, 3);
    produce_to(&f.settings, &topic, 2, &visits(4));
    produce_to(&f.settings, &topic, 1, &visits(1));
    let q = start();
    wait_rows(&seen, 13, &q);
    let s = q.stop().expect("stop");
    assert_eq!(*seen.lock().expect("lock"), 13, "nothing twice: {s:?}");
}
