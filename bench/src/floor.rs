//! `bde-bench floor --dir D`: the analytics job's floor on this machine, the least work its three
//! effects need, step by step with the crates the kit uses, over the same visits the `stream`
//! step reads (the topic `bde-bench produce` made, or a fresh topic of their own):
//!
//! 1. **consume** the whole topic with one rdkafka `BaseConsumer` (assigned from the low
//!    watermarks), each value copied out as the kit's read step keeps it;
//! 2. **decode** every value with serde_json into [`Visit`];
//! 3. **carts**: the ShoppingCart visits as Spark's CSV line through one idempotent producer
//!    ([`kio::producer`], the kit's settings), one wait for every delivery;
//! 4. **redis**: the durations summed per country, one pipeline of `ZINCRBY`;
//! 5. **mariadb**: the durations summed per (5-second processing-time window, last action), one
//!    multi-row `INSERT … ON DUPLICATE KEY UPDATE DURATION = DURATION + VALUES(DURATION)`.
//!
//! Clients are created (and the carts topic, and the producer's first delivery made) before the
//! clock starts: the kit pays those once per query, not per row. What the floor leaves out is
//! what the kit adds for the job's guarantees and its shape: micro-batches, the write-ahead log
//! and checkpoint, exactly-once markers (the Lua script, the progress row, the record headers),
//! row checks and dead letters, the watermark. The effects are read back so the orchestrator can
//! check them equal to the kit's and the peers'.

use bde_kit::{chrono, mysql, rdkafka, redis, serde_json};

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};

use crate::stream::BenchObjects;
use bde_kit::config::Settings;
use bde_kit::course::visit::Visit;
use bde_kit::error::{Error, Result, Service};
use bde_kit::io::{kafka as kio, mariadb as mio, redis as rio};
use bde_kit::runtime;

/// The floor's table: `visit_stats`' columns with the key the upsert merges on.
const FLOOR_TABLE: &str = "visit_stats_floor";

/// Produces the visits under `dir` to a fresh topic (or reads `topic`, produced beforehand by
/// `bde-bench produce`), runs the five steps (the measured phase, [`crate::phase::mark`]),
/// reads the effects back.
pub fn run(dir: &Path, topic: Option<&str>) -> Result<Value> {
    let settings = Settings::from_env();
    let lines = if topic.is_none() {
        crate::visits::read_lines(dir)?
    } else {
        Vec::new()
    };
    let visits = if topic.is_none() {
        lines.len()
    } else {
        crate::visits::count_lines(dir)?
    };
    if visits == 0 {
        return Err(Error::invalid(format!(
            "no visits under {}: run `bde-bench gen-visits` first",
            dir.display()
        )));
    }
    let given = topic.is_some();
    let objects = BenchObjects::create_on(&settings, 1, topic)?;
    let result = (|| {
        if !given {
            crate::visits::produce(&settings, &objects.topic, lines)?;
        }
        kio::create_topics(&settings, &[&objects.carts, &warmup_topic(&objects)], 1)?;
        mio::execute(
            &settings,
            Some(&objects.db),
            &format!(
                "CREATE TABLE `{FLOOR_TABLE}` (INTERVAL_TIMESTAMP DATETIME NOT NULL, \
                 LAST_ACTION VARCHAR(45) NOT NULL, DURATION BIGINT NOT NULL, \
                 PRIMARY KEY (INTERVAL_TIMESTAMP, LAST_ACTION))"
            ),
        )?;
        steps(&settings, &objects, visits)
    })();
    let _ = kio::delete_topics(&settings, &[&warmup_topic(&objects)]);
    objects.remove(&settings);
    result
}

/// The topic of the producer's warm-up record: one of the run's own, so that a visits topic
/// other engines read too (`--topic`) holds the visits and nothing else.
fn warmup_topic(o: &BenchObjects) -> String {
    format!("{}.warmup", o.carts)
}

/// One step's name and milliseconds.
fn step(name: &str, t0: Instant) -> (String, f64) {
    (name.to_string(), t0.elapsed().as_secs_f64() * 1000.0)
}

fn steps(settings: &Settings, o: &BenchObjects, visits: usize) -> Result<Value> {
    let mut times = Vec::new();

    // 1. consume
    crate::phase::mark("start");
    let consumer = consumer(settings, &o.topic)?;
    let t0 = Instant::now();
    let values = consume_all(settings, &consumer, visits)?;
    times.push(step("consume", t0));
    drop(consumer);

    // 2. decode
    let t0 = Instant::now();
    let rows: Vec<Visit> = values
        .iter()
        .map(|v| serde_json::from_slice::<Visit>(v))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::invalid(format!("floor: a visit did not decode: {e}")))?;
    times.push(step("decode", t0));
    drop(values);

    // 3. carts: one producer, one delivery wait (the topic exists and the producer knows its
    // leader before the clock starts)
    let producer = kio::producer(settings)?;
    producer
        .client()
        .fetch_metadata(Some(&o.carts), kio::REQUEST_TIMEOUT)
        .map_err(|e| Error::service(Service::Kafka, &settings.kafka, "carts metadata", e))?;
    // The idempotent producer's first delivery waits for its producer id (about 0.5 s here):
    // paid once per producer, so it is paid here, by one record to a warm-up topic of the run's.
    let warm = Instant::now();
    let warmup = warmup_topic(o);
    runtime::handle().block_on(kio::send(&producer, settings, &warmup, None, "warm-up"))?;
    let warmup_ms = warm.elapsed().as_secs_f64() * 1000.0;
    let t0 = Instant::now();
    let carts = produce_carts(settings, &producer, &o.carts, &rows)?;
    times.push(step("carts", t0));

    // 4. redis: one pipeline of ZINCRBY
    let mut con = rio::connect(settings)?;
    let t0 = Instant::now();
    let mut by_country: HashMap<&str, i64> = HashMap::new();
    for v in &rows {
        *by_country.entry(v.country.as_str()).or_default() += v.duration;
    }
    let mut pipe = redis::pipe();
    for (country, d) in &by_country {
        pipe.zincr(&o.key, *country, *d).ignore();
    }
    pipe.query::<()>(&mut con)
        .map_err(|e| rio::map_err(settings, "ZINCRBY pipeline", e))?;
    times.push(step("redis", t0));

    // 5. mariadb: one multi-row upsert of the 5-second window sums
    let mut c = mio::conn(settings, Some(&o.db))?;
    let t0 = Instant::now();
    // processing time, as the course's windows: one batch, one window
    let start = window_start(chrono::Local::now().naive_local(), 5);
    let mut by_action: BTreeMap<&str, i64> = BTreeMap::new();
    for v in &rows {
        *by_action.entry(v.last_action.as_str()).or_default() += v.duration;
    }
    let placeholders = vec!["(?, ?, ?)"; by_action.len()].join(", ");
    let params: Vec<mysql::Value> = by_action
        .iter()
        .flat_map(|(a, d)| [start.as_str().into(), (*a).into(), (*d).into()])
        .collect();
    c.exec_drop(
        format!(
            "INSERT INTO `{FLOOR_TABLE}` (INTERVAL_TIMESTAMP, LAST_ACTION, DURATION) VALUES \
             {placeholders} ON DUPLICATE KEY UPDATE DURATION = DURATION + VALUES(DURATION)"
        ),
        params,
    )
    .map_err(|e| mio::map_err(&settings.mariadb, "upsert the window sums", e))?;
    times.push(step("mariadb", t0));
    crate::phase::mark("end");

    let sum_ms: f64 = times.iter().map(|(_, ms)| ms).sum();
    eprintln!(
        "bde-bench floor: {visits} visits, steps {}; sum {:.0} ms",
        times
            .iter()
            .map(|(n, ms)| format!("{n} {ms:.0} ms"))
            .collect::<Vec<_>>()
            .join(", "),
        sum_ms
    );

    // The effects, read back for the orchestrator's checks.
    let totals: serde_json::Map<String, Value> = rio::scores(settings, &o.key)?
        .into_iter()
        .map(|(c, v)| (c, json!(v as i64)))
        .collect();
    let in_topic = kio::message_count(settings, &o.carts)?;
    let (stat_rows, stat_sum): (i64, i64) = c
        .query_first(format!(
            "SELECT COUNT(*), CAST(COALESCE(SUM(DURATION), 0) AS SIGNED) FROM `{FLOOR_TABLE}`"
        ))
        .map_err(|e| mio::map_err(&settings.mariadb, "read the floor's window sums", e))?
        .unwrap_or((0, 0));
    Ok(json!({
        "engine": "floor (rdkafka, serde_json, one producer, one Redis pipeline, one upsert)",
        "visits": visits,
        "steps_ms": times.iter().map(|(n, ms)| json!([n, ms])).collect::<Vec<_>>(),
        "sum_ms": sum_ms,
        "producer_warmup_ms": warmup_ms,
        "rows_per_sec": visits as f64 / (sum_ms / 1000.0).max(1e-9),
        "redis_totals": totals,
        "carts": carts,
        "carts_in_topic": in_topic,
        "visit_stats_rows": stat_rows,
        "visit_stats_sum": stat_sum,
    }))
}

/// The start of the `secs`-second window holding `t`, as MariaDB's DATETIME text.
fn window_start(t: chrono::NaiveDateTime, secs: i64) -> String {
    let ms = t.and_utc().timestamp_millis();
    let start = ms - ms.rem_euclid(secs * 1000);
    chrono::DateTime::from_timestamp_millis(start)
        .map(|d| d.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// A consumer assigned to every partition of `topic` from its low watermark.
fn consumer(settings: &Settings, topic: &str) -> Result<BaseConsumer> {
    let marks = kio::watermarks(settings, topic)?;
    let c: BaseConsumer = kio::client_config(settings)
        .set(
            "group.id",
            format!("bde-bench-floor-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .set("fetch.max.bytes", "8388608")
        .set("receive.message.max.bytes", "1000000000")
        .create()
        .map_err(|e| Error::service(Service::Kafka, &settings.kafka, "create a consumer", e))?;
    let mut tpl = TopicPartitionList::new();
    for (p, lo, _) in &marks {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*lo))
            .map_err(|e| Error::service(Service::Kafka, &settings.kafka, "assign", e))?;
    }
    c.assign(&tpl)
        .map_err(|e| Error::service(Service::Kafka, &settings.kafka, "assign", e))?;
    Ok(c)
}

/// Every value of the assigned partitions, copied out (`n` of them).
fn consume_all(settings: &Settings, c: &BaseConsumer, n: usize) -> Result<Vec<Vec<u8>>> {
    let t0 = Instant::now();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        if t0.elapsed() > Duration::from_secs(600) {
            return Err(Error::Timeout {
                what: "the floor's consume".into(),
                after: Duration::from_secs(600),
                hint: "broker slow".into(),
            });
        }
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(m.payload().unwrap_or_default().to_vec()),
            Some(Err(e)) => {
                return Err(Error::service(
                    Service::Kafka,
                    &settings.kafka,
                    "consume",
                    e,
                ))
            }
            None => {}
        }
    }
    Ok(out)
}

/// Sends the carts' Spark CSV lines, then waits once for every delivery; returns how many.
fn produce_carts(
    settings: &Settings,
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    rows: &[Visit],
) -> Result<usize> {
    let cart = bde_kit::course::names::SHOPPING_CART;
    let mut pending = Vec::new();
    for v in rows.iter().filter(|v| v.last_action == cart) {
        let line = v.spark_csv_line();
        let mut rec = FutureRecord::<(), String>::to(topic).payload(&line);
        loop {
            match producer.send_result(rec) {
                Ok(f) => break pending.push(f),
                Err((e, back))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    producer.poll(Duration::from_millis(20));
                    rec = back;
                }
                Err((e, _)) => {
                    return Err(Error::service(
                        Service::Kafka,
                        &settings.kafka,
                        "send a cart",
                        e,
                    ))
                }
            }
        }
    }
    let n = pending.len();
    runtime::handle().block_on(async move {
        for f in pending {
            match f.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    return Err(Error::service(
                        Service::Kafka,
                        &settings.kafka,
                        "deliver a cart",
                        e,
                    ))
                }
                Err(_) => {
                    return Err(Error::service(
                        Service::Kafka,
                        &settings.kafka,
                        "deliver a cart",
                        "delivery cancelled",
                    ))
                }
            }
        }
        Ok(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_start_rounds_down_to_the_window() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 12, 4)
            .and_then(|d| d.and_hms_milli_opt(16, 20, 9, 999))
            .expect("date");
        assert_eq!(window_start(t, 5), "2026-12-04 16:20:05");
    }
}
