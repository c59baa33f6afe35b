//! A query whose checkpoint was deleted (a reset, a fresh clone) starts a new lineage: its sinks
//! must apply its batches even though an older lineage of the same query name left applied-batch
//! markers behind in Redis and MariaDB (batch ids restart at 0).

use std::time::Duration;

use bde_kit::io::{kafka, redis};
use bde_kit::stream::sink::RedisZIncr;
use bde_kit::stream::{checkpoint, KafkaSource, Query, Start, Stream, Trigger};
use bde_kit::Settings;

/// Settings, and a fresh topic (created), Redis key and checkpoint root named after `what`.
fn fixture(what: &str) -> (Settings, String, String, std::path::PathBuf) {
    let s = Settings::from_env();
    let tag = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let topic = format!("bde_test_{what}_{tag}");
    kafka::create_topics(&s, &[&topic], 1).expect("topic");
    (
        s,
        topic,
        format!("bde_test_{what}:{tag}"),
        std::env::temp_dir().join(format!("bde_{what}_{tag}")),
    )
}

#[test]
fn a_fresh_checkpoint_is_not_skipped_because_of_old_markers() {
    let (s, topic, key, root) = fixture("lineage");
    kafka::produce_all(
        &s,
        &topic,
        ["FAQ", "FAQ", "Order"]
            .iter()
            .map(|a| (Some(a.to_string()), a.to_string()))
            .collect(),
    )
    .expect("produce");
    let run = || {
        let q = Query::new("lineage-test")
            .settings(s.clone())
            .trigger(Trigger::AvailableNow)
            .checkpoint_dir(&root)
            .quiet(true)
            .replace_running(true)
            .start([
                Stream::<String>::read(KafkaSource::new(&topic).starting(Start::Earliest))
                    .write(RedisZIncr::new(&key, |a: &String| a.clone(), |_| 1.0)),
            ])
            .expect("start");
        assert!(
            q.await_termination(Duration::from_secs(60)).expect("wait"),
            "available-now ends"
        );
        redis::scores(&s, &key).expect("scores")
    };
    let first = run();
    assert_eq!(
        first,
        vec![("FAQ".to_string(), 2.0), ("Order".to_string(), 1.0)]
    );
    // Restart with the checkpoint: nothing new, nothing counted twice.
    assert_eq!(run(), first);
    // Reset: delete the key and the checkpoint, count again from scratch.
    redis::delete(&s, &[&key]).expect("del");
    checkpoint::reset(&root, "lineage-test").expect("reset");
    assert_eq!(run(), first, "the new lineage applies its batches");
    let markers = redis::keys(&s, &format!("{key}:applied:*")).expect("markers");
    assert_eq!(markers.len(), 2, "one marker per lineage: {markers:?}");
    let mut all = markers.clone();
    all.push(key.clone());
    redis::delete(&s, &all.iter().map(String::as_str).collect::<Vec<_>>()).expect("cleanup");
    kafka::delete_topics(&s, &[&topic]).expect("cleanup");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_running_query_is_visible_from_outside_through_its_heartbeat() {
    let (s, topic, key, root) = fixture("heartbeat");
    let dir = checkpoint::dir_for(&root, "heartbeat-test");
    assert!(!checkpoint::is_alive(&dir, Duration::from_secs(5)));
    let q = Query::new("heartbeat-test")
        .settings(s.clone())
        .trigger(Trigger::every(Duration::from_millis(200)))
        .checkpoint_dir(&root)
        .quiet(true)
        .replace_running(true)
        .start([
            Stream::<String>::read(KafkaSource::new(&topic).starting(Start::Latest))
                .write(RedisZIncr::new(&key, |a: &String| a.clone(), |_| 1.0)),
        ])
        .expect("start");
    // An idle query (no records at all) still ticks.
    let t0 = std::time::Instant::now();
    while !checkpoint::is_alive(&dir, Duration::from_secs(5))
        && t0.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        checkpoint::is_alive(&dir, Duration::from_secs(5)),
        "running query shows a heartbeat"
    );
    q.stop().expect("stop");
    assert!(
        !checkpoint::is_alive(&dir, Duration::from_secs(5)),
        "a stopped query shows none"
    );
    kafka::delete_topics(&s, &[&topic]).expect("cleanup");
    let _ = std::fs::remove_dir_all(&root);
}
