//! Each exactly-once sink applied twice with the same batch (a replay) changes nothing twice;
//! scale-out: two members of one consumer group split the partitions and their effects add up.

#[path = "stream_util/mod.rs"]
mod stream_util;

use std::time::Duration;

use bde_kit::course::visit::Visit;
use bde_kit::io::kafka;
use bde_kit::stream::sink::{BatchInfo, KafkaSink, RedisZIncr, Sink};
use bde_kit::stream::{KafkaSource, Query, Start, Stream, Trigger, Window, WindowRow};
use stream_util::*;

fn info(f: &Fixture, batch_id: u64, replay: bool) -> BatchInfo {
    BatchInfo {
        query: "q".into(),
        batch_id,
        batch_time_ms: 0,
        replay,
        flush: false,
        settings: f.settings.clone(),
    }
}

#[test]
fn redis_and_mariadb_skip_a_batch_they_already_applied() {
    let mut f = Fixture::new("sinks");
    let key = f.key("z");
    let db = f.database();
    let vs = visits(50);
    let mut z = RedisZIncr::new(
        &key,
        |v: &Visit| v.country.clone(),
        |v: &Visit| v.duration as f64,
    );
    z.open("q", &f.settings).expect("open");
    assert!(
        z.apply(&info(&f, 0, false), &vs, &serde_json::Value::Null)
            .expect("apply")
            > 0
    );
    assert_eq!(
        z.apply(&info(&f, 0, true), &vs, &serde_json::Value::Null)
            .expect("replay"),
        0
    );
    assert_eq!(
        redis_scores(&f.settings, &key),
        sum_by(&vs, |v| v.country.clone())
    );
    z.apply(&info(&f, 1, false), &vs[..10], &serde_json::Value::Null)
        .expect("next");
    let mut want = sum_by(&vs, |v| v.country.clone());
    for (k, d) in sum_by(&vs[..10], |v| v.country.clone()) {
        *want.entry(k).or_default() += d;
    }
    assert_eq!(redis_scores(&f.settings, &key), want);

    let rows: Vec<WindowRow> = (0..1200)
        .map(|i| WindowRow {
            start_ms: 1_723_467_675_000 + (i % 7) * 5000,
            end_ms: 0,
            key: ["FAQ", "Order"][i as usize % 2].into(),
            total: 3,
            delta: 3,
            values: vec![],
        })
        .collect();
    let mut m = bde_kit::course::analytics::visit_stats_writer(&db);
    m.open("q", &f.settings).expect("open adds the unique key");
    assert_eq!(
        m.apply(&info(&f, 5, false), &rows, &serde_json::Value::Null)
            .expect("apply"),
        1200
    );
    assert_eq!(
        m.apply(&info(&f, 5, true), &rows, &serde_json::Value::Null)
            .expect("replay"),
        0
    );
    assert_eq!(
        m.apply(&info(&f, 4, true), &rows, &serde_json::Value::Null)
            .expect("older"),
        0
    );
    let (sums, n) = db_window_sums(&f.settings, &db);
    assert_eq!(n, 14, "additive upsert: one row per (window, action)");
    assert_eq!(sums.values().sum::<i64>(), 3600);
}

#[test]
fn kafka_sink_replay_check_sends_only_what_is_missing() {
    let mut f = Fixture::new("ksink");
    let out = f.topic("out");
    let vs = visits(30);
    let mut k = KafkaSink::new(&out, Visit::csv_line);
    k.open("q", &f.settings).expect("open");
    let b = info(&f, 3, false);
    let plan = k.plan(&b).expect("plan");
    // a crash after part of the batch was written: only the first 12 rows made it
    k.apply(&b, &vs[..12], &plan).expect("partial");
    // the replay of the whole batch sends the 18 missing rows only
    assert_eq!(k.apply(&info(&f, 3, true), &vs, &plan).expect("replay"), 18);
    assert_eq!(
        k.apply(&info(&f, 3, true), &vs, &plan)
            .expect("replay again"),
        0
    );
    let got: Vec<String> = kafka::read_all(&f.settings, &out, Duration::from_secs(20))
        .expect("read")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(got, vs.iter().map(Visit::csv_line).collect::<Vec<_>>());
    // without replay information (a foreign writer, a new query name) the sink is at-least-once
    k.apply(&info(&f, 3, false), &vs[..1], &plan)
        .expect("blind resend");
    assert_eq!(kafka::message_count(&f.settings, &out).expect("count"), 31);
}

#[test]
fn two_members_of_one_group_split_partitions_and_their_sums_add_up() {
    let mut f = Fixture::new("scale");
    let topic = format!("bde_test.scale.{}", f.tag);
    kafka::create_topics(&f.settings, &[&topic], 2).expect("topic");
    f.topics.push(topic.clone());
    let key = f.key("z");
    let db = f.database();
    let vs = visits(400);
    // keyed by country: the partitioner spreads countries over the two partitions
    produce(&f.settings, &topic, &vs);
    let member = |i: u32| {
        Query::new(&format!("scale-{}-m{i}", f.tag))
            .settings(f.settings.clone())
            .trigger(Trigger::AvailableNow)
            .quiet(true)
            .start({
                let s = Stream::<Visit>::read(
                    KafkaSource::new(&topic)
                        .starting(Start::Earliest)
                        .group(&format!("scale-{}", f.tag))
                        .member(i, 2)
                        .max_records(60),
                );
                [
                    s.write(RedisZIncr::new(
                        &key,
                        |v: &Visit| v.country.clone(),
                        |v: &Visit| v.duration as f64,
                    )),
                    s.with_event_time(Visit::event_ms, Duration::from_secs(5))
                        .window(Window::tumbling(Duration::from_secs(5)), |v: &Visit| {
                            v.last_action.clone()
                        })
                        .sum(|v: &Visit| v.duration)
                        .write(bde_kit::course::analytics::visit_stats_writer(&db)),
                ]
            })
            .expect("start")
    };
    let (a, b) = (member(0), member(1));
    assert!(
        a.await_termination(Duration::from_secs(60)).expect("a")
            && b.await_termination(Duration::from_secs(60)).expect("b")
    );
    let (ra, rb) = (a.summary().total_rows, b.summary().total_rows);
    eprintln!(
        "members read {ra} and {rb}; watermarks {:?}; status {:?} {:?}",
        kafka::watermarks(&f.settings, &topic),
        a.status(),
        b.status()
    );
    assert_eq!(ra + rb, 400, "each record read by exactly one member");
    assert!(ra > 0 && rb > 0, "both members got partitions ({ra}, {rb})");
    assert_eq!(
        redis_scores(&f.settings, &key),
        sum_by(&vs, |v| v.country.clone())
    );
    let (sums, _) = db_window_sums(&f.settings, &db);
    assert_eq!(
        sums,
        expected_window_sums(&vs),
        "per-window rows of both members merge additively"
    );
}
