//! Foundation integration tests against the real servers on loopback: health, and a round trip
//! through each of Kafka, Redis and MariaDB with the kit's io layer.

use std::time::{Duration, Instant};

use bde_kit::error::Service;
use bde_kit::io::{health::health, kafka, mariadb, redis};
use bde_kit::Settings;
use mysql::prelude::Queryable;

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() % 1_000_000
    )
}

#[test]
fn health_reports_all_three_services_up() {
    let h = health(&Settings::from_env());
    for s in &h.services {
        assert!(s.up, "{} at {} is down: {}", s.service, s.address, s.detail);
    }
    assert_eq!(h.services.len(), 3);
    assert!(h.to_html().matches(">up</b>").count() == 3);
}

#[test]
fn health_names_down_services_with_address_and_fix_without_hanging() {
    let s = Settings {
        kafka: "127.0.0.1:1".into(),
        redis: "redis://127.0.0.1:1".into(),
        mariadb: "mysql://spark:spark@127.0.0.1:1".into(),
        ..Settings::from_env()
    };
    let t0 = Instant::now();
    let h = health(&s);
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "health took {:?}",
        t0.elapsed()
    );
    for service in [Service::Kafka, Service::Redis, Service::MariaDb] {
        let e = h.get(service).expect("entry");
        assert!(!e.up, "{service} should be down");
        assert!(e.address.ends_with(":1"), "{}", e.address);
        assert!(e.detail.contains("kernel/services.sh up"), "{}", e.detail);
    }
    assert!(!h.all_up());
}

#[test]
fn kafka_topic_round_trip() {
    let s = Settings::from_env();
    let topic = unique("bde_test_foundation");
    let made = kafka::create_topics(&s, &[&topic], 1).expect("create");
    assert_eq!(made, vec![(topic.clone(), kafka::TopicOutcome::Created)]);
    assert!(kafka::list_topics(&s).expect("list").contains(&topic));
    let again = kafka::create_topics(&s, &[&topic], 1).expect("create again");
    assert_eq!(again[0].1, kafka::TopicOutcome::AlreadyExists);
    let n = kafka::produce_all(
        &s,
        &topic,
        vec![(Some("USA".into()), "a".into()), (None, "b".into())],
    )
    .expect("produce");
    assert_eq!(n, 2);
    assert_eq!(kafka::message_count(&s, &topic).expect("count"), 2);
    let got = kafka::read_all(&s, &topic, Duration::from_secs(20)).expect("read");
    assert_eq!(
        got,
        vec![
            (Some("USA".to_string()), "a".to_string()),
            (None, "b".to_string())
        ]
    );
    assert_eq!(
        kafka::delete_topics(&s, &[&topic]).expect("delete"),
        vec![topic.clone()]
    );
}

#[test]
fn kafka_reports_a_missing_topic_clearly() {
    let s = Settings::from_env();
    let e = kafka::partitions(&s, "bde_test_no_such_topic_xyz").expect_err("missing");
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[test]
fn redis_sorted_set_round_trip() {
    let s = Settings::from_env();
    let key = unique("bde_test_zset");
    let mut con = redis::connect(&s).expect("connect");
    redis::zincrby(&s, &mut con, &key, "USA", 3.0).expect("zincrby");
    redis::zincrby(&s, &mut con, &key, "India", 5.0).expect("zincrby");
    redis::zincrby(&s, &mut con, &key, "USA", 4.0).expect("zincrby");
    let got = redis::scores(&s, &key).expect("scores");
    assert_eq!(
        got,
        vec![("USA".to_string(), 7.0), ("India".to_string(), 5.0)]
    );
    assert_eq!(redis::delete(&s, &[&key]).expect("del"), 1);
}

#[test]
fn mariadb_course_user_can_use_a_test_database() {
    let s = Settings::from_env();
    let db = unique("bde_test_found");
    mariadb::execute(&s, None, &format!("CREATE DATABASE {db}")).expect("create db");
    let mut c = mariadb::conn(&s, Some(&db)).expect("conn");
    c.query_drop("CREATE TABLE t (ID INT PRIMARY KEY, V DECIMAL(10,2))")
        .expect("table");
    c.exec_drop(
        "INSERT INTO t VALUES (?, ?), (?, ?)",
        (1, "2.99", 2, "5.99"),
    )
    .expect("insert");
    let sum: Option<String> = c
        .query_first("SELECT CAST(SUM(V) AS CHAR) FROM t")
        .expect("sum");
    assert_eq!(sum.as_deref(), Some("8.98"));
    drop(c);
    mariadb::execute(&s, None, &format!("DROP DATABASE {db}")).expect("drop");
}
