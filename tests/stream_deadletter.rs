//! Dead letters: malformed JSON, an unknown field, a negative duration, a null country and a
//! 10 MB value are each written to `<topic>.dlq` with a reason; the query never stops and no
//! valid visit is lost.

#[path = "stream_util/mod.rs"]
mod stream_util;

use std::time::Duration;

use bde_kit::course::visit::Visit;
use bde_kit::io::kafka;
use bde_kit::rdkafka::producer::{FutureProducer, FutureRecord};
use bde_kit::stream::sink::RedisZIncr;
use bde_kit::stream::{DeadLetter, KafkaSource, Query, Start, Stream, Trigger};
use stream_util::*;

#[test]
fn bad_records_are_dead_lettered_with_a_reason_and_valid_ones_all_arrive() {
    let mut f = Fixture::new("dlq");
    let topic = f.topic("visits");
    let key = f.key("countries");
    let vs = visits(40);
    let big = format!("{{\"country\": \"{}\"}}", "x".repeat(10 * 1024 * 1024));
    let bad: Vec<(String, &str)> = vec![
        ("{\"country\": \"USA\", \"last_action\": ".into(), "malformed JSON"),
        (r#"{"country": "USA", "last_action": "Order", "visit_date": "2024-08-12 13:01:16", "duration": 11, "browser": "x"}"#.into(), "unknown field"),
        (r#"{"country": "USA", "last_action": "Order", "visit_date": "2024-08-12 13:01:16", "duration": -4}"#.into(), "negative duration"),
        (r#"{"country": null, "last_action": "Order", "visit_date": "2024-08-12 13:01:16", "duration": 4}"#.into(), "null"),
        (big, "exceeds the limit"),
    ];
    // interleave: 8 valid, 1 bad, …
    let mut values: Vec<String> = Vec::new();
    let mut bi = bad.iter();
    for (i, v) in vs.iter().enumerate() {
        values.push(v.to_json());
        if i % 8 == 7 {
            if let Some((b, _)) = bi.next() {
                values.push(b.clone());
            }
        }
    }
    // The broker refuses a 10 MB batch uncompressed (MessageSizeTooLarge); lz4 brings this one
    // far below its limit, and the consumer sees the full 10 MB value.
    let s = f.settings.clone();
    let t = topic.clone();
    bde_kit::block_on(async move {
        let p: FutureProducer = kafka::client_config(&s)
            .set("message.max.bytes", "20000000")
            .set("compression.type", "lz4")
            .set("enable.idempotence", "true")
            .create()
            .expect("producer");
        for v in &values {
            p.send(
                FutureRecord::<(), _>::to(&t).payload(v),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("send");
        }
    })
    .expect("produce");

    let q = Query::new(&format!("dlq-{}", f.tag))
        .settings(f.settings.clone())
        .trigger(Trigger::AvailableNow)
        .start([Stream::<Visit>::read(
            KafkaSource::new(&topic)
                .starting(Start::Earliest)
                .max_records(10),
        )
        .write(RedisZIncr::new(
            &key,
            |v: &Visit| v.country.clone(),
            |v: &Visit| v.duration as f64,
        ))])
        .expect("start");
    assert!(q.await_termination(Duration::from_secs(60)).expect("wait"));
    let s = q.summary();
    assert_eq!(
        s.status,
        bde_kit::stream::Status::Stopped,
        "a bad record never stops the query"
    );
    assert_eq!(s.total_rows, 45);
    assert_eq!(
        s.total_dead_letters, 5,
        "dead letters are visible in progress"
    );
    assert_eq!(
        redis_scores(&f.settings, &key),
        sum_by(&vs, |v| v.country.clone()),
        "no valid visit lost"
    );

    let letters: Vec<DeadLetter> = kafka::read_all(
        &f.settings,
        &DeadLetter::topic_for(&topic),
        Duration::from_secs(20),
    )
    .expect("dlq")
    .into_iter()
    .map(|(_, v)| serde_json::from_str(&v).expect("envelope"))
    .collect();
    assert_eq!(letters.len(), 5);
    for ((_, reason), l) in bad.iter().zip(&letters) {
        assert!(
            l.reason.contains(reason),
            "{} should mention {reason}",
            l.reason
        );
        assert_eq!(l.topic, topic);
    }
    let huge = &letters[4];
    assert_eq!(huge.value_bytes, 10 * 1024 * 1024 + 15);
    assert!(huge.truncated && huge.value.as_ref().is_some_and(|v| v.len() <= 4096));
    let offsets: Vec<i64> = letters.iter().map(|l| l.offset).collect();
    assert_eq!(offsets, vec![8, 17, 26, 35, 44]);
}

/// Issue 19, item 6: a sink closure that panics on one row (`country[..3]` on "US") dead-letters
/// that row with the panic's message; every other row is applied once and the query goes on.
#[test]
fn a_row_on_which_a_sink_closure_panics_is_a_dead_letter() {
    let mut f = Fixture::new("dlq_panic");
    let topic = f.topic("visits");
    let key = f.key("prefixes");
    let mut vs = visits(30);
    let mut us = vs[7].clone();
    us.country = "US".into();
    vs.insert(8, us);
    produce(&f.settings, &topic, &vs);
    let q = Query::new(&format!("dlq-panic-{}", f.tag))
        .settings(f.settings.clone())
        .trigger(Trigger::AvailableNow)
        .quiet(true)
        .start([Stream::<Visit>::read(
            KafkaSource::new(&topic)
                .starting(Start::Earliest)
                .max_records(10),
        )
        .write(RedisZIncr::new(
            &key,
            |v: &Visit| v.country[..3].to_string(),
            |v: &Visit| v.duration as f64,
        ))])
        .expect("start");
    assert!(q.await_termination(Duration::from_secs(60)).expect("wait"));
    let s = q.summary();
    assert_eq!(s.status, bde_kit::stream::Status::Stopped, "{:?}", s.status);
    assert_eq!(s.total_dead_letters, 1);
    let good: Vec<Visit> = vs.iter().filter(|v| v.country != "US").cloned().collect();
    assert_eq!(
        redis_scores(&f.settings, &key),
        sum_by(&good, |v| v.country[..3].to_string()),
        "every other row applied once"
    );
    let letters: Vec<DeadLetter> = kafka::read_all(
        &f.settings,
        &DeadLetter::topic_for(&topic),
        Duration::from_secs(20),
    )
    .expect("dlq")
    .into_iter()
    .map(|(_, v)| serde_json::from_str(&v).expect("envelope"))
    .collect();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].offset, 8);
    assert!(
        letters[0].reason.contains("panicked") && letters[0].reason.contains("byte index 3"),
        "{}",
        letters[0].reason
    );
}
