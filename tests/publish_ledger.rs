//! The chapter-6 ledger under a stalled run and oversized values (issue 19, item 10), against
//! the real Kafka and MariaDB.

#[path = "batch_support/mod.rs"]
mod batch_support;

use std::time::{Duration, Instant};

use batch_support::{admin, settings, unique, Sandbox};
use bde_kit::batch::publish::{KafkaPublish, ID_HEADER};
use bde_kit::io::kafka;
use bde_kit::mysql::prelude::Queryable;
use bde_kit::polars::prelude::*;

const LEDGER: &str = "bde_publish_ledger";

fn rows(n: i64, value: &str) -> DataFrame {
    df!(
        "ID" => (1..=n).collect::<Vec<i64>>(),
        "LAST_ACTION" => vec![value; n as usize]
    )
    .expect("frame")
}

struct Topic(String);

impl Topic {
    fn new() -> Topic {
        let t = unique("publish").replace('_', ".");
        kafka::create_topics(&settings(), &[&t], 1).expect("topic");
        Topic(t)
    }
}

impl Drop for Topic {
    fn drop(&mut self) {
        let _ = kafka::delete_topics(&settings(), &[&self.0]);
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "waited 60 s for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A run stalls between two chunks of sends past its lease; a second run takes its rows over
/// and finishes them; the first, waking up, stops instead of sending its rest: each ID once.
#[test]
fn a_run_that_stalls_past_its_lease_stops_and_each_id_is_in_the_topic_once() {
    let mut sb = Sandbox::new("publish");
    let db = sb.database("publish", None);
    let topic = Topic::new();
    let lease = Duration::from_secs(3);
    let publish = || {
        KafkaPublish::to(&settings(), &topic.0)
            .key("LAST_ACTION")
            .value("LAST_ACTION")
            .once_per("ID", &db, LEDGER)
            .lease(lease)
    };
    let df = rows(10, "FAQ");
    let stalled = {
        let (p, df) = (
            publish()
                .send_chunk(5)
                .pause_between_chunks(Duration::from_secs(10)),
            df.clone(),
        );
        std::thread::spawn(move || p.publish(&df))
    };
    wait_for("the first chunk", || {
        kafka::message_count(&settings(), &topic.0).unwrap_or(0) == 5
    });
    wait_for("the stalled run's lease to run out", || {
        admin()
            .query_first::<i64, _>(format!(
                "SELECT COUNT(*) FROM `{db}`.{LEDGER} WHERE STATE = 'reserved' \
                 AND RESERVED_AT <= NOW() - INTERVAL {} SECOND",
                lease.as_secs() + 1
            ))
            .ok()
            .flatten()
            == Some(10)
    });
    let second = publish().publish(&df).expect("the second run");
    let first = stalled.join().expect("thread");
    let e = first.expect_err("the stalled run stops");
    assert!(e.to_string().contains("took them over"), "{e}");
    assert_eq!((second.published, second.recovered), (5, 5), "{second:?}");
    let mut ids: Vec<i64> =
        kafka::header_values(&settings(), &topic.0, ID_HEADER, Duration::from_secs(20))
            .expect("headers")
            .into_iter()
            .flatten()
            .map(|h| h.parse().expect("an ID"))
            .collect();
    ids.sort();
    assert_eq!(ids, (1..=10).collect::<Vec<i64>>(), "each ID once");
    let published: Option<i64> = admin()
        .query_first(format!(
            "SELECT COUNT(*) FROM `{db}`.{LEDGER} WHERE STATE = 'published'"
        ))
        .expect("count");
    assert_eq!(published, Some(10));
}

#[test]
fn a_value_longer_than_the_ledger_keeps_is_refused_before_anything_is_reserved() {
    let mut sb = Sandbox::new("publish");
    let db = sb.database("publish", None);
    let topic = Topic::new();
    let long = "x".repeat(256);
    let e = KafkaPublish::to(&settings(), &topic.0)
        .value("LAST_ACTION")
        .once_per("ID", &db, LEDGER)
        .publish(&rows(3, &long))
        .expect_err("refused");
    assert!(e.to_string().contains("256 characters"), "{e}");
    assert_eq!(
        kafka::message_count(&settings(), &topic.0).expect("count"),
        0
    );
    let fits = KafkaPublish::to(&settings(), &topic.0)
        .value("LAST_ACTION")
        .once_per("ID", &db, LEDGER)
        .publish(&rows(3, &"y".repeat(255)))
        .expect("255 characters fit");
    assert_eq!(fits.published, 3);
    let kept: Option<i64> = admin()
        .query_first(format!(
            "SELECT MIN(CHAR_LENGTH(RECORD_VALUE)) FROM `{db}`.{LEDGER}"
        ))
        .expect("length");
    assert_eq!(kept, Some(255), "kept whole");
}

/// IDs of a source table dropped and created again (they start at 1 again) are new rows: they
/// are published, not counted as "published before"; a second run publishes nothing new.
#[test]
fn ids_of_a_recreated_source_table_are_published_again() {
    let mut sb = Sandbox::new("publish");
    let db = sb.database("publish", None);
    let topic = Topic::new();
    let create = || {
        admin()
            .query_drop(format!(
                "CREATE TABLE `{db}`.src (ID BIGINT AUTO_INCREMENT PRIMARY KEY)"
            ))
            .expect("source table")
    };
    let publish = || {
        KafkaPublish::to(&settings(), &topic.0)
            .value("LAST_ACTION")
            .once_per("ID", &db, LEDGER)
            .source_table(&db, "src")
            .publish(&rows(3, "Order"))
            .expect("publish")
    };
    create();
    assert_eq!(publish().published, 3);
    assert_eq!(
        publish().published_before,
        3,
        "the same table: nothing twice"
    );
    // CREATE_TIME has whole seconds: the new table must be created in a later second.
    std::thread::sleep(Duration::from_millis(1100));
    admin()
        .query_drop(format!("DROP TABLE `{db}`.src"))
        .expect("drop");
    create();
    let again = publish();
    assert_eq!(
        (again.published, again.published_before),
        (3, 0),
        "{again:?}"
    );
    assert_eq!(
        kafka::message_count(&settings(), &topic.0).expect("count"),
        6
    );
}

/// A ledger made before sources were kept (ROW_ID alone the key) is given the SOURCE column and
/// keeps its rows as published: without a source as they are, and with one when they were
/// reserved after the source table was created.
#[test]
fn an_old_ledger_gets_the_source_column_and_keeps_its_rows() {
    let mut sb = Sandbox::new("publish");
    let db = sb.database("publish", None);
    let topic = Topic::new();
    admin()
        .query_drop(format!(
            "CREATE TABLE `{db}`.src (ID BIGINT AUTO_INCREMENT PRIMARY KEY)"
        ))
        .expect("source table");
    admin()
        .query_drop(format!(
            "CREATE TABLE `{db}`.{LEDGER} (ROW_ID BIGINT NOT NULL PRIMARY KEY, RECORD_VALUE VARCHAR(255), \
             STATE VARCHAR(10) NOT NULL, RUN_ID VARCHAR(100) NOT NULL, RESERVED_AT DATETIME NOT NULL, \
             PUBLISHED_AT DATETIME NULL)"
        ))
        .expect("old ledger");
    admin()
        .query_drop(format!(
            "INSERT INTO `{db}`.{LEDGER} VALUES (1, 'Order', 'published', 'old', NOW(), NOW())"
        ))
        .expect("old row");
    let p = KafkaPublish::to(&settings(), &topic.0)
        .value("LAST_ACTION")
        .once_per("ID", &db, LEDGER)
        .publish(&rows(2, "Order"))
        .expect("publish");
    assert_eq!((p.published, p.published_before), (1, 1), "{p:?}");
    let with_source = KafkaPublish::to(&settings(), &topic.0)
        .value("LAST_ACTION")
        .once_per("ID", &db, LEDGER)
        .source_table(&db, "src")
        .publish(&rows(3, "Order"))
        .expect("publish with the source");
    assert_eq!(
        (with_source.published, with_source.published_before),
        (1, 2),
        "rows 1 and 2 were published after src was created: {with_source:?}"
    );
    assert_eq!(
        kafka::message_count(&settings(), &topic.0).expect("count"),
        2
    );
}
