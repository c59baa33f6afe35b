//! Chapter 4 course pieces against the real servers: the visits generator (seeded, fast) and
//! the monitor's views, on a test topic, key and database of their own.

use std::time::Duration;

use bde_kit::course::monitor::{action_sums, Monitor};
use bde_kit::course::visits::VisitGenerator;
use bde_kit::io::{kafka, mariadb, redis};
use bde_kit::Settings;

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
fn seeded_generator_sends_what_it_reports() {
    let s = Settings::from_env();
    let topic = unique("bde_test_visits");
    kafka::create_topics(&s, &[&topic], 1).expect("topic");
    let run = |seed| {
        let h = VisitGenerator::course(&s)
            .topic(&topic)
            .count(25)
            .seed(seed)
            .speed(0.0)
            .start()
            .expect("start");
        h.wait(Duration::from_secs(60)).expect("report")
    };
    let a = run(7);
    let b = run(7);
    assert_eq!(a.sent, 25);
    assert_eq!(
        a.duration_by_country, b.duration_by_country,
        "same seed, same visits"
    );
    let msgs = kafka::read_all(&s, &topic, Duration::from_secs(20)).expect("read");
    assert_eq!(msgs.len(), 50);
    let total: i64 = msgs
        .iter()
        .map(|(k, v)| {
            let j: serde_json::Value = serde_json::from_str(v).expect("json");
            assert_eq!(k.as_deref(), j["country"].as_str(), "key = country");
            j["duration"].as_i64().expect("duration")
        })
        .sum();
    assert_eq!(total, 2 * a.duration_by_country.values().sum::<i64>());
    kafka::delete_topics(&s, &[&topic]).expect("cleanup");
}

#[test]
fn generator_can_be_stopped_and_reports_a_missing_topic() {
    let s = Settings::from_env();
    assert!(VisitGenerator::course(&s)
        .topic("bde_test_missing_topic_q")
        .start()
        .is_err());
    let topic = unique("bde_test_visits_stop");
    kafka::create_topics(&s, &[&topic], 1).expect("topic");
    let h = VisitGenerator::course(&s)
        .topic(&topic)
        .count(1000)
        .speed(1.0)
        .start()
        .expect("start");
    std::thread::sleep(Duration::from_millis(300));
    h.stop();
    let r = h.wait(Duration::from_secs(10)).expect("stops");
    assert!(r.stopped_early && r.sent < 1000, "sent {}", r.sent);
    kafka::delete_topics(&s, &[&topic]).expect("cleanup");
}

#[test]
fn monitor_shows_new_carts_redis_and_mariadb_figures() {
    let s = Settings::from_env();
    let topic = unique("bde_test_carts");
    let key = unique("bde_test_country");
    let db = unique("bde_test_mon");
    kafka::create_topics(&s, &[&topic], 1).expect("topic");
    mariadb::execute(&s, None, &format!("CREATE DATABASE {db}")).expect("db");
    mariadb::execute(&s, Some(&db), "CREATE TABLE visit_stats (ID INT NOT NULL AUTO_INCREMENT PRIMARY KEY, INTERVAL_TIMESTAMP DATETIME, LAST_ACTION VARCHAR(45), DURATION INT)").expect("table");
    mariadb::execute(&s, Some(&db), "INSERT INTO visit_stats (INTERVAL_TIMESTAMP, LAST_ACTION, DURATION) VALUES (NOW(), 'FAQ', 20), (NOW(), 'FAQ', 3), (NOW(), 'Order', 7)").expect("rows");
    let mut con = redis::connect(&s).expect("redis");
    redis::zincrby(&s, &mut con, &key, "India", 12.0).expect("zincrby");
    kafka::produce_all(&s, &topic, vec![(None, "old,ShoppingCart,x,1".into())]).expect("old cart");
    let t2 = topic.clone();
    let s2 = s.clone();
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        kafka::produce_all(
            &s2,
            &t2,
            vec![(None, "USA,ShoppingCart,2024-08-12 13:01:16,4".into())],
        )
        .expect("new cart");
    });
    let r = Monitor::course(&s)
        .until_job_stops(None)
        .names(&topic, &key, &db)
        .every(Duration::from_millis(700))
        .refreshes(5)
        .run()
        .expect("monitor");
    producer.join().expect("producer");
    assert_eq!(r.refreshes, 5);
    assert_eq!(
        r.carts,
        vec!["USA,ShoppingCart,2024-08-12 13:01:16,4".to_string()],
        "only carts after the start"
    );
    assert_eq!(r.countries, vec![("India".to_string(), 12.0)]);
    assert_eq!(
        r.actions,
        vec![("FAQ".to_string(), 23), ("Order".to_string(), 7)]
    );
    assert_eq!(action_sums(&s, &db).expect("sums").len(), 2);
    assert_eq!(r.windows.iter().map(|w| w.2).sum::<i64>(), 30);
    let html = r.report().to_html();
    assert!(html.contains("<svg") && html.contains("India"));
    redis::delete(&s, &[&key]).expect("cleanup");
    mariadb::execute(&s, None, &format!("DROP DATABASE {db}")).expect("cleanup");
    kafka::delete_topics(&s, &[&topic]).expect("cleanup");
}
