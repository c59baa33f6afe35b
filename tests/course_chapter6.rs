//! Chapter 6 extraction against the real MariaDB and broker, on a database and topic of its own:
//! bounds, the threshold, the partitioned read, publishing once (the ledger), an empty range.

use std::time::Duration;

use bde_kit::course::long_actions::{ledger_counts, read_long_actions_from};
use bde_kit::io::{kafka, mariadb};
use bde_kit::Settings;
use chrono::NaiveDate;

fn unique(p: &str) -> String {
    format!(
        "{p}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    )
}

#[test]
fn extraction_publishes_rows_above_15_once_and_handles_an_empty_range() {
    let s = Settings::from_env();
    let db = unique("bde_test_ch6");
    let topic = unique("bde_test_long");
    kafka::create_topics(&s, &[&topic], 1).expect("topic");
    mariadb::execute(&s, None, &format!("CREATE DATABASE {db}")).expect("db");
    mariadb::execute(&s, Some(&db), "CREATE TABLE visit_stats (ID INT(11) NOT NULL AUTO_INCREMENT PRIMARY KEY, INTERVAL_TIMESTAMP DATETIME, LAST_ACTION VARCHAR(45), DURATION INT(10))").expect("table");
    // 6 rows on 2024-08-12 (3 above 15, one exactly 15), 1 row on another day above 15.
    mariadb::execute(
        &s,
        Some(&db),
        "INSERT INTO visit_stats (INTERVAL_TIMESTAMP, LAST_ACTION, DURATION) VALUES \
         ('2024-08-12 10:00:00','FAQ',22), ('2024-08-12 10:00:00','Order',15), ('2024-08-12 10:00:05','FAQ',16), \
         ('2024-08-12 10:00:05','Catalog',3), ('2024-08-12 23:59:55','ShoppingCart',40), ('2024-08-12 11:00:00','Order',1), \
         ('2024-09-01 10:00:00','FAQ',50)",
    )
    .expect("rows");
    let day = NaiveDate::from_ymd_opt(2024, 8, 12).expect("date");
    let next = day.succ_opt().expect("next");
    let long = read_long_actions_from(&s, &db, &topic, day, next).expect("read");
    assert_eq!(long.bounds, Some((1, 6)));
    assert_eq!(long.rows.height(), 3, "DURATION > 15, strictly");
    assert_eq!(
        long.rows_per_partition.len(),
        2,
        "two partitions as in the course"
    );
    assert_eq!(long.rows_per_partition.iter().sum::<usize>(), 3);
    let first = long.publish().expect("publish");
    assert_eq!(
        (first.selected, first.published, first.published_before),
        (3, 3, 0)
    );
    let msgs = kafka::read_all(&s, &topic, Duration::from_secs(20)).expect("read topic");
    let mut got: Vec<(Option<String>, String)> = msgs;
    got.sort();
    assert_eq!(
        got,
        vec![
            (Some("FAQ".into()), "FAQ".into()),
            (Some("FAQ".into()), "FAQ".into()),
            (Some("ShoppingCart".into()), "ShoppingCart".into())
        ]
    );
    // Running the extraction again publishes nothing.
    let again = read_long_actions_from(&s, &db, &topic, day, next)
        .expect("read again")
        .publish()
        .expect("publish again");
    assert_eq!(
        (again.selected, again.published, again.published_before),
        (3, 0, 3)
    );
    assert_eq!(kafka::message_count(&s, &topic).expect("count"), 3);
    assert_eq!(
        ledger_counts(&s, &db).expect("ledger"),
        vec![("FAQ".to_string(), 2), ("ShoppingCart".to_string(), 1)]
    );
    // An empty range is a message, not an error.
    let empty_day = NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
    let none =
        read_long_actions_from(&s, &db, &topic, empty_day, empty_day).expect("empty range is fine");
    assert_eq!(none.bounds, None);
    assert_eq!(none.publish().expect("nothing").published, 0);
    assert!(
        read_long_actions_from(&s, &db, &topic, next, day).is_err(),
        "reversed range is refused"
    );
    mariadb::execute(&s, None, &format!("DROP DATABASE {db}")).expect("cleanup");
    kafka::delete_topics(&s, &[&topic]).expect("cleanup");
}

/// A database with `visit_stats` holding `n` rows above the threshold on 2024-08-12, and a topic.
fn long_rows(n: usize) -> (Settings, String, String) {
    let s = Settings::from_env();
    let db = unique("bde_test_ch6");
    let topic = unique("bde_test_long");
    kafka::create_topics(&s, &[&topic], 1).expect("topic");
    mariadb::execute(&s, None, &format!("CREATE DATABASE {db}")).expect("db");
    mariadb::execute(&s, Some(&db), "CREATE TABLE visit_stats (ID INT(11) NOT NULL AUTO_INCREMENT PRIMARY KEY, INTERVAL_TIMESTAMP DATETIME, LAST_ACTION VARCHAR(45), DURATION INT(10))").expect("table");
    let actions = ["Catalog", "FAQ", "Order", "ShoppingCart"];
    let values: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "('2024-08-12 10:00:{:02}', '{}', {})",
                i % 60,
                actions[i % 4],
                16 + i
            )
        })
        .collect();
    mariadb::execute(
        &s,
        Some(&db),
        &format!(
            "INSERT INTO visit_stats (INTERVAL_TIMESTAMP, LAST_ACTION, DURATION) VALUES {}",
            values.join(", ")
        ),
    )
    .expect("rows");
    (s, db, topic)
}

fn day() -> (NaiveDate, NaiveDate) {
    let d = NaiveDate::from_ymd_opt(2024, 8, 12).expect("date");
    (d, d.succ_opt().expect("next"))
}

fn cleanup(s: &Settings, db: &str, topic: &str) {
    mariadb::execute(s, None, &format!("DROP DATABASE {db}")).expect("cleanup");
    kafka::delete_topics(s, &[topic]).expect("cleanup");
}

/// Issue 10 item 9: two kernels publishing the same range at the same moment. Before the
/// reservations, both read an empty ledger and both published every row.
#[test]
fn two_publishers_at_once_publish_each_row_once() {
    let (s, db, topic) = long_rows(20);
    let (start, end) = day();
    let long = read_long_actions_from(&s, &db, &topic, start, end).expect("read");
    assert_eq!(long.rows.height(), 20);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (long, barrier) = (long.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                long.publish().expect("publish")
            })
        })
        .collect();
    let results: Vec<_> = runs
        .into_iter()
        .map(|r| r.join().expect("thread"))
        .collect();
    assert_eq!(
        kafka::message_count(&s, &topic).expect("count"),
        20,
        "each row once in the topic: {results:?}"
    );
    assert_eq!(
        results.iter().map(|r| r.published).sum::<usize>(),
        20,
        "{results:?}"
    );
    cleanup(&s, &db, &topic);
}

/// Issue 10 item 9: a run that failed after some sends leaves its rows reserved; a run inside
/// its lease leaves them alone, a run after it finds the sent ones by their header and sends
/// only the rest.
#[test]
fn a_publish_that_failed_midway_is_finished_later_without_duplicates() {
    use bde_kit::batch::publish::{KafkaPublish, DEFAULT_LEASE, ID_HEADER};
    use bde_kit::course::long_actions::LEDGER_TABLE;
    let (s, db, topic) = long_rows(5);
    let (start, end) = day();
    let rows = read_long_actions_from(&s, &db, &topic, start, end)
        .expect("read")
        .rows;
    let publish = |lease| {
        KafkaPublish::to(&s, &topic)
            .key("LAST_ACTION")
            .value("LAST_ACTION")
            .once_per("ID", &db, LEDGER_TABLE)
            .lease(lease)
    };

    let failed = publish(DEFAULT_LEASE).fail_after_sends(2).publish(&rows);
    assert!(failed.is_err(), "the hook stops the run after 2 sends");
    assert_eq!(kafka::message_count(&s, &topic).expect("count"), 2);

    let during = publish(DEFAULT_LEASE)
        .publish(&rows)
        .expect("publish during the lease");
    assert_eq!(
        (during.published, during.in_progress_elsewhere),
        (0, 5),
        "{during:?}"
    );
    assert_eq!(kafka::message_count(&s, &topic).expect("count"), 2);

    let after = publish(Duration::ZERO)
        .publish(&rows)
        .expect("publish after the lease");
    assert_eq!(
        (after.published, after.recovered, after.published_before),
        (3, 2, 0),
        "{after:?}"
    );
    let mut ids: Vec<String> = kafka::header_values(&s, &topic, ID_HEADER, Duration::from_secs(20))
        .expect("headers")
        .into_iter()
        .flatten()
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec!["1", "2", "3", "4", "5"],
        "every row once, with its ID in the header"
    );

    let again = publish(Duration::ZERO)
        .publish(&rows)
        .expect("publish again");
    assert_eq!((again.published, again.published_before), (0, 5));
    assert_eq!(
        ledger_counts(&s, &db)
            .expect("ledger")
            .iter()
            .map(|(_, n)| n)
            .sum::<i64>(),
        5
    );
    cleanup(&s, &db, &topic);
}
