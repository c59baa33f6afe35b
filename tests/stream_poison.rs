//! Poison records: values that decode but a sink would always refuse. Each sink's `check` names
//! them (against the real servers, and the servers agree: what `check` refuses fails there, what
//! it accepts is stored), and a query sends them to `<topic>.dlq` with their reason while every
//! good row is applied exactly once.

#[path = "stream_util/mod.rs"]
mod stream_util;

use std::time::Duration;

use bde_kit::course::visit::Visit;
use bde_kit::io::kafka;
use bde_kit::rdkafka::producer::{FutureProducer, FutureRecord};
use bde_kit::stream::sink::{
    foreach::foreach_batch, BatchInfo, KafkaSink, MariaDbInsert, RedisZIncr, Sink,
};
use bde_kit::stream::{
    DeadLetter, KafkaSource, MemorySource, Query, Start, Stream, Trigger, Window, WindowRow,
};
use stream_util::*;

fn info(f: &Fixture, batch_id: u64, batch_time_ms: i64) -> BatchInfo {
    BatchInfo {
        query: "q".into(),
        batch_id,
        batch_time_ms,
        replay: false,
        flush: false,
        settings: f.settings.clone(),
    }
}

fn row(key: &str, delta: i64) -> WindowRow {
    WindowRow {
        start_ms: 1_723_467_675_000,
        end_ms: 1_723_467_680_000,
        key: key.into(),
        total: delta,
        delta,
        values: vec![],
    }
}

fn refused_indices(r: &[(usize, String)]) -> Vec<usize> {
    r.iter().map(|(i, _)| *i).collect()
}

#[test]
fn mariadb_check_refuses_what_the_table_refuses_and_nothing_else() {
    let mut f = Fixture::new("pmaria");
    let db = f.database();
    let mut m = bde_kit::course::analytics::visit_stats_writer(&db);
    m.open("q", &f.settings)
        .expect("open reads the column limits");
    let rows = vec![
        row("FAQ", 2_147_483_647),
        row("Order", 2_147_483_648),
        row("Catalog", -2_147_483_648),
        row(&"x".repeat(46), 1),
        row(&"é".repeat(45), 1),
        row("Order", -2_147_483_649),
    ];
    let refused = m.check(&info(&f, 0, 0), &rows);
    assert_eq!(refused_indices(&refused), vec![1, 3, 5]);
    assert!(
        refused[0].1.contains("DURATION") && refused[0].1.contains("2147483647"),
        "{}",
        refused[0].1
    );
    assert!(
        refused[1].1.contains("LAST_ACTION") && refused[1].1.contains("45 characters"),
        "{}",
        refused[1].1
    );
    // the server agrees: each refused row fails alone, the accepted ones are stored
    for i in [1, 3, 5] {
        assert!(
            m.apply(
                &info(&f, 10 + i as u64, 0),
                &rows[i..=i],
                &serde_json::Value::Null
            )
            .is_err(),
            "row {i} must fail at the server"
        );
    }
    let good = [rows[0].clone(), rows[2].clone(), rows[4].clone()];
    assert_eq!(
        m.apply(&info(&f, 20, 0), &good, &serde_json::Value::Null)
            .expect("accepted rows"),
        3
    );
    let (sums, n) = db_window_sums(&f.settings, &db);
    assert_eq!(n, 3);
    assert_eq!(
        sums.values().sum::<i64>(),
        2_147_483_647 - 2_147_483_648 + 1
    );
    // a missing table is named at open, with the fix
    let mut missing = MariaDbInsert::<WindowRow>::new(&db, "no_such_table", &["A"], |_| vec![]);
    let e = missing.open("q", &f.settings).expect_err("missing table");
    assert!(
        e.to_string().contains("no_such_table") && e.to_string().contains("create it"),
        "{e}"
    );
}

fn visit_at(base: &Visit, action: &str, duration: i64, ahead_ms: i64) -> Visit {
    let mut v = base.clone();
    v.last_action = action.into();
    v.duration = duration;
    v.visit_date += chrono::Duration::milliseconds(ahead_ms);
    v
}

#[test]
fn windowed_check_refuses_sum_overflow_long_keys_and_far_future_times() {
    let mut f = Fixture::new("pwin");
    let db = f.database();
    let vs = visits(20);
    let now = vs[19].event_ms() + 60_000; // the batch's processing time
    let mut rows = vs.clone();
    let b = &vs[5];
    rows.push(visit_at(b, "Order", 2_147_483_648, 0)); // 20: alone past INT(10)
    rows.push(visit_at(b, "Big", 2_000_000_000, 0)); // 21: fits
    rows.push(visit_at(b, "Big", 200_000_000, 0)); // 22: the window's sum would pass INT(10)
    rows.push(visit_at(b, "Big", 100_000_000, 0)); // 23: fits beside 21
    rows.push(visit_at(b, &"y".repeat(46), 1, 0)); // 24: LAST_ACTION too long
    rows.push(visit_at(b, &"z".repeat(45), 1, 0)); // 25: fits
    rows.push(visit_at(
        &vs[19],
        "FAQ",
        1,
        (now - vs[19].event_ms()) + 2 * 24 * 3600 * 1000,
    )); // 26: two days ahead
    rows.push(visit_at(&vs[19], "FAQ", 1, 1000)); // 27: one second after the last visit: fine
    let visits = Stream::<Visit>::read(MemorySource::new("unused"));
    let mut w = visits
        .with_event_time(Visit::event_ms, Duration::from_secs(5))
        .window(Window::tumbling(Duration::from_secs(5)), |v| {
            v.last_action.clone()
        })
        .sum(|v| v.duration)
        .write(bde_kit::course::analytics::visit_stats_writer(&db));
    w.open("q", &f.settings).expect("open");
    let bi = info(&f, 0, now);
    let refused = w.check(&bi, &rows);
    assert_eq!(
        refused_indices(&refused),
        vec![20, 22, 24, 26],
        "{refused:#?}"
    );
    assert!(refused[0].1.contains("DURATION"), "{}", refused[0].1);
    assert!(refused[2].1.contains("LAST_ACTION"), "{}", refused[2].1);
    assert!(
        refused[3].1.contains("event time") && refused[3].1.contains("max_future"),
        "{}",
        refused[3].1
    );
    // the accepted rows apply, and every window reaches the table
    let good: Vec<Visit> = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| ![20, 22, 24, 26].contains(i))
        .map(|(_, v)| v.clone())
        .collect();
    w.apply(&bi, &good).expect("apply");
    w.apply(
        &BatchInfo {
            flush: true,
            batch_id: 1,
            ..bi.clone()
        },
        &[],
    )
    .expect("flush");
    assert_eq!(
        db_window_sums(&f.settings, &db).0,
        expected_window_sums(&good)
    );
    // a wider bound lets the far-future row through
    let mut wide = visits
        .with_event_time(Visit::event_ms, Duration::ZERO)
        .max_future(Duration::from_secs(3 * 24 * 3600))
        .window(Window::tumbling(Duration::from_secs(5)), |v| {
            v.last_action.clone()
        })
        .sum(|v| v.duration)
        .write(foreach_batch("none", |_, _: &[WindowRow]| Ok(())));
    wide.open("q", &f.settings).expect("open");
    assert!(wide.check(&bi, &rows[26..27]).is_empty());
}

#[test]
fn a_64_bit_window_sum_overflow_is_refused_not_wrapped() {
    let f = Fixture::new("pi64");
    let vs = visits(1);
    let rows = vec![
        visit_at(&vs[0], "A", i64::MAX, 0),
        visit_at(&vs[0], "A", 1, 0),
        visit_at(&vs[0], "B", 1, 0),
        visit_at(&vs[0], "A", -5, 0),
    ];
    let mut w = Stream::<Visit>::read(MemorySource::new("unused"))
        .with_watermark(Duration::ZERO)
        .window(Window::tumbling(Duration::from_secs(5)), |v| {
            v.last_action.clone()
        })
        .sum(|v| v.duration)
        .write(foreach_batch("sums", |_, _: &[WindowRow]| Ok(())));
    w.open("q", &f.settings).expect("open");
    let refused = w.check(&info(&f, 0, vs[0].event_ms()), &rows);
    assert_eq!(refused_indices(&refused), vec![1], "{refused:?}");
    assert!(refused[0].1.contains("64-bit"), "{}", refused[0].1);
    // applied anyway (no check): an error, never a wrapped sum or a panic
    assert!(w.apply(&info(&f, 0, vs[0].event_ms()), &rows).is_err());
}

/// End to end: poison records among good ones go to the dead-letter topic with their reasons;
/// Redis, MariaDB and the carts topic get every good row exactly once.
#[test]
fn a_query_dead_letters_poison_records_and_applies_every_good_row() {
    let mut f = Fixture::new("pquery");
    let topic = f.topic("visits");
    let carts = f.topic_name("carts");
    let key = f.key("countries");
    let db = f.database();
    let good = visits(60);
    let b = &good[10];
    let poison: Vec<(Visit, &str)> = vec![
        (visit_at(b, "Order", 2_147_483_648, 0), "DURATION"),
        (visit_at(b, &"y".repeat(46), 3, 0), "LAST_ACTION"),
        (
            visit_at(b, "FAQ", 3, 5 * 365 * 24 * 3600 * 1000),
            "event time",
        ),
        (
            {
                let mut v = visit_at(b, "ShoppingCart", 3, 0);
                v.country = "C".repeat(1_000_000);
                v
            },
            "limit",
        ),
        (
            {
                let mut v = visit_at(b, "Catalog", 3, 0);
                v.country = "Nowhere".into();
                v
            },
            "NaN",
        ),
    ];
    // interleave: every 12th record is a poison one
    let mut values: Vec<String> = Vec::new();
    let mut offsets = Vec::new();
    let mut pi = poison.iter();
    for (i, v) in good.iter().enumerate() {
        values.push(v.to_json());
        if i % 12 == 11 {
            if let Some((p, _)) = pi.next() {
                offsets.push(values.len() as i64);
                values.push(p.to_json());
            }
        }
    }
    let s = f.settings.clone();
    let t = topic.clone();
    bde_kit::block_on(async move {
        let p: FutureProducer = kafka::client_config(&s)
            .set("message.max.bytes", "20000000")
            .set("compression.type", "lz4")
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

    let visits = Stream::<Visit>::read(
        KafkaSource::new(&topic)
            .starting(Start::Earliest)
            .max_records(10),
    );
    let q = Query::new(&format!("poison-{}", f.tag))
        .settings(f.settings.clone())
        .trigger(Trigger::AvailableNow)
        .quiet(true)
        .start([
            visits
                .filter(|v| v.last_action == "ShoppingCart")
                .write(KafkaSink::new(&carts, Visit::csv_line)),
            visits.write(RedisZIncr::new(
                &key,
                |v: &Visit| v.country.clone(),
                |v: &Visit| {
                    if v.country == "Nowhere" {
                        f64::NAN
                    } else {
                        v.duration as f64
                    }
                },
            )),
            visits
                .with_event_time(Visit::event_ms, Duration::from_secs(5))
                .window(Window::tumbling(Duration::from_secs(5)), |v| {
                    v.last_action.clone()
                })
                .sum(|v| v.duration)
                .write(bde_kit::course::analytics::visit_stats_writer(&db)),
        ])
        .expect("start");
    assert!(q.await_termination(Duration::from_secs(120)).expect("wait"));
    let sum = q.summary();
    assert_eq!(
        sum.status,
        bde_kit::stream::Status::Stopped,
        "poison records never stop the query"
    );
    assert_eq!(sum.total_dead_letters, 5);

    let mut letters: Vec<DeadLetter> = kafka::read_all(
        &f.settings,
        &DeadLetter::topic_for(&topic),
        Duration::from_secs(20),
    )
    .expect("dlq")
    .into_iter()
    .map(|(_, v)| serde_json::from_str(&v).expect("envelope"))
    .collect();
    letters.sort_by_key(|l| l.offset);
    assert_eq!(
        letters.iter().map(|l| l.offset).collect::<Vec<_>>(),
        offsets
    );
    for ((_, why), l) in poison.iter().zip(&letters) {
        assert!(l.reason.contains(why), "{} should mention {why}", l.reason);
    }
    assert_eq!(
        redis_scores(&f.settings, &key),
        sum_by(&good, |v| v.country.clone()),
        "every good row counted once"
    );
    assert_eq!(
        db_window_sums(&f.settings, &db).0,
        expected_window_sums(&good),
        "every good row in its window, none late"
    );
    let cart_lines: Vec<String> = kafka::read_all(&f.settings, &carts, Duration::from_secs(20))
        .expect("carts")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let want: Vec<String> = good
        .iter()
        .filter(|v| v.last_action == "ShoppingCart")
        .map(Visit::csv_line)
        .collect();
    assert_eq!(cart_lines, want);
}
