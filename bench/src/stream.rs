//! `bde-bench stream-rate [--visits N]`: end-to-end rate of the analytics query (three sinks) versus
//! the raw consume rate of the same broker, in one run, on fresh topics/keys/database.

// The kit's re-exports: the same crates, versions and features the kit compiles with.
use bde_kit::{chrono, mysql, rand, rdkafka};

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use bde_kit::config::Settings;
use bde_kit::course::analytics::Analytics;
use bde_kit::course::visit::random_visit;
use bde_kit::error::{Error, Result, Service};
use bde_kit::io::{kafka as kio, mariadb as mio, redis as rio};
use bde_kit::runtime;
use bde_kit::stream::source::Start;
use bde_kit::stream::trigger::Trigger;
use bde_kit::stream::{StreamingQuery, Summary};

/// Figures of one benchmark run.
#[derive(Debug, Clone)]
pub struct BenchResult {
    pub visits: usize,
    pub produce_per_sec: f64,
    pub raw_consume_per_sec: f64,
    pub end_to_end_per_sec: f64,
}

/// Produces `n` random visits to `topic` as fast as the idempotent producer goes.
pub fn produce_visits(
    settings: &Settings,
    topic: &str,
    n: usize,
    base: chrono::NaiveDateTime,
    step_ms: i64,
) -> Result<()> {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(rand::random());
    let records = (0..n)
        .map(|i| {
            let date = base + chrono::Duration::milliseconds(i as i64 * step_ms);
            let v = random_visit(&mut rng, date.with_nanosecond_trunc());
            (Some(v.country.clone()), v.to_json())
        })
        .collect();
    kio::produce_all(settings, topic, records).map(|_| ())
}

/// Watches an available-now query until it ends (at most an hour) and checks that it succeeded
/// and read exactly `visits` records; returns its summary.
pub fn run_to_end(q: &StreamingQuery, visits: usize) -> Result<Summary> {
    q.for_batches(u64::MAX)?;
    if !q.await_termination(Duration::from_secs(3600))? {
        return Err(Error::Task(format!(
            "the query {} did not finish within an hour",
            q.name()
        )));
    }
    let s = q.summary();
    if let bde_kit::stream::Status::Failed(e) = &s.status {
        return Err(Error::Task(format!("the query {} failed: {e}", q.name())));
    }
    if s.total_rows != visits as u64 {
        return Err(Error::Task(format!(
            "the query {} read {} of {visits} visits",
            q.name(),
            s.total_rows
        )));
    }
    Ok(s)
}

trait TruncSecs {
    fn with_nanosecond_trunc(self) -> Self;
}
impl TruncSecs for chrono::NaiveDateTime {
    fn with_nanosecond_trunc(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}

/// Reads the whole topic with a plain rdkafka consumer; returns records per second (from the
/// assignment to the last record) and prints how long the first record took: the broker's first
/// fetch, which the query pays too (about 0.5 s for a backlog of 1 M visits on the local broker,
/// none for 500).
pub fn raw_consume_rate(settings: &Settings, topic: &str) -> Result<f64> {
    let marks = kio::watermarks(settings, topic)?;
    let total: i64 = marks.iter().map(|(_, lo, hi)| hi - lo).sum();
    let s = settings.clone();
    let t = topic.to_string();
    runtime::run_blocking(move || {
        let c: BaseConsumer = kio::client_config(&s)
            .set("group.id", format!("bde-bench-raw-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "50")
            .set("fetch.max.bytes", "8388608")
            .set("receive.message.max.bytes", "1000000000")
            .create()
            .map_err(|e| Error::service(Service::Kafka, &s.kafka, "create a consumer", e))?;
        let mut tpl = TopicPartitionList::new();
        for (p, lo, _) in &marks {
            tpl.add_partition_offset(&t, *p, Offset::Offset(*lo))
                .map_err(|e| Error::service(Service::Kafka, &s.kafka, "assign", e))?;
        }
        c.assign(&tpl)
            .map_err(|e| Error::service(Service::Kafka, &s.kafka, "assign", e))?;
        let t0 = Instant::now();
        let mut n = 0i64;
        let mut bytes = 0usize;
        let mut errors = 0;
        while n < total {
            if t0.elapsed() > Duration::from_secs(600) {
                return Err(Error::Timeout {
                    what: "the raw consume".into(),
                    after: Duration::from_secs(600),
                    hint: "broker slow".into(),
                });
            }
            match c.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    if n == 0 {
                        eprintln!(
                            "raw consume: first record after {:.2} s",
                            t0.elapsed().as_secs_f64()
                        );
                    }
                    use rdkafka::message::Message;
                    bytes += m.payload().map_or(0, <[u8]>::len);
                    n += 1;
                }
                Some(Err(e)) => {
                    errors += 1;
                    eprintln!("raw consume: error after {n} records: {e}");
                    if errors > 20 {
                        return Err(Error::service(Service::Kafka, &s.kafka, "consume", e));
                    }
                }
                None => {}
            }
        }
        let _ = bytes;
        Ok(n as f64 / t0.elapsed().as_secs_f64())
    })?
}

/// Removes what interrupted benchmark runs left behind (`bde_bench.*` topics,
/// `bde_test_bench_*` databases, `bde_bench:*` keys).
pub fn cleanup_leftovers() -> Result<()> {
    use mysql::prelude::Queryable;
    let settings = Settings::from_env();
    let topics: Vec<String> = kio::list_topics(&settings)?
        .into_iter()
        .filter(|t| t.starts_with("bde_bench."))
        .collect();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    kio::delete_topics(&settings, &refs)?;
    let keys = rio::keys(&settings, "bde_bench:*")?;
    let krefs: Vec<&str> = keys.iter().map(String::as_str).collect();
    if !krefs.is_empty() {
        rio::delete(&settings, &krefs)?;
    }
    let mut c = mio::conn(&settings, None)?;
    let dbs: Vec<String> = c
        .query("SHOW DATABASES LIKE 'bde\\_test\\_bench\\_%'")
        .map_err(|e| mio::map_err(&settings.mariadb, "list databases", e))?;
    for db in dbs.iter().filter(|d| {
        d.trim_start_matches("bde_test_bench_")
            .chars()
            .all(|c| c.is_ascii_digit() || c == '_')
    }) {
        mio::execute(&settings, None, &format!("DROP DATABASE IF EXISTS `{db}`"))?;
    }
    println!(
        "removed {} topics, {} keys, {} databases",
        topics.len(),
        keys.len(),
        dbs.len()
    );
    Ok(())
}

/// The fresh objects of one benchmark run: topics, Redis key, database with `visit_stats`, and
/// a checkpoint folder, all named after the process and the time.
pub struct BenchObjects {
    pub tag: String,
    pub topic: String,
    pub carts: String,
    pub key: String,
    pub db: String,
    pub cp_root: std::path::PathBuf,
    /// The visits topic was made by this run (and is removed with the rest), not given.
    own_topic: bool,
}

impl BenchObjects {
    /// Names the objects and creates the visits topic (`partitions`) and the database.
    pub fn create(settings: &Settings, partitions: i32) -> Result<BenchObjects> {
        BenchObjects::create_on(settings, partitions, None)
    }

    /// Like [`BenchObjects::create`], reading the visits from `topic` when given (produced
    /// beforehand, e.g. by `bde-bench produce`; left in place by [`BenchObjects::remove`]).
    pub fn create_on(
        settings: &Settings,
        partitions: i32,
        topic: Option<&str>,
    ) -> Result<BenchObjects> {
        let tag = format!(
            "{}_{}",
            std::process::id(),
            chrono::Local::now().format("%H%M%S")
        );
        let o = BenchObjects {
            topic: topic.map_or_else(|| format!("bde_bench.visits.{tag}"), str::to_string),
            own_topic: topic.is_none(),
            carts: format!("bde_bench.carts.{tag}"),
            key: format!("bde_bench:countries:{tag}"),
            db: format!("bde_test_bench_{tag}"),
            cp_root: std::env::temp_dir().join(format!("bde_bench_cp_{tag}")),
            tag,
        };
        if o.own_topic {
            kio::create_topics(settings, &[&o.topic], partitions)?;
        }
        mio::execute(
            settings,
            None,
            &format!("CREATE DATABASE IF NOT EXISTS `{}`", o.db),
        )?;
        mio::execute(
            settings,
            None,
            &bde_kit::course::analytics::visit_stats_ddl(&o.db)?,
        )?;
        Ok(o)
    }

    /// The analytics query over these objects (the course's three sinks), reading from the
    /// start of the visits topic; callers set the trigger and batch size on the result.
    pub fn analytics(&self, query: String) -> Analytics {
        Analytics {
            query,
            visits_topic: self.topic.clone(),
            carts_topic: self.carts.clone(),
            redis_key: self.key.clone(),
            db: self.db.clone(),
            start: Start::Earliest,
            ..Analytics::default()
        }
    }

    /// Removes everything the run made (topics, the key and its markers, database, checkpoints).
    pub fn remove(&self, settings: &Settings) {
        let _ = if self.own_topic {
            kio::delete_topics(settings, &[&self.topic, &self.carts])
        } else {
            kio::delete_topics(settings, &[&self.carts])
        };
        let keys = rio::keys(settings, &format!("{}*", self.key)).unwrap_or_default();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let _ = rio::delete(settings, &refs);
        let _ = mio::execute(
            settings,
            None,
            &format!("DROP DATABASE IF EXISTS `{}`", self.db),
        );
        let _ = std::fs::remove_dir_all(&self.cp_root);
    }
}

/// Runs the benchmark with a visits topic of `partitions` partitions and prints its figures.
pub fn run_with(visits: usize, partitions: i32) -> Result<BenchResult> {
    let settings = Settings::from_env();
    let objects = BenchObjects::create(&settings, partitions)?;
    let BenchObjects { topic, cp_root, .. } = &objects;
    let result = (|| {
        println!("producing {visits} visits into {topic} …");
        let t0 = Instant::now();
        produce_visits(
            &settings,
            topic,
            visits,
            chrono::Local::now().naive_local(),
            10,
        )?;
        let produce = visits as f64 / t0.elapsed().as_secs_f64();
        println!("produced at {produce:.0} records/s");
        let raw = raw_consume_rate(&settings, topic)?;
        println!("raw rdkafka consume: {raw:.0} records/s");
        let a = Analytics {
            trigger: Trigger::AvailableNow,
            max_records: 50_000,
            event_time: true,
            ..objects.analytics("bench".into())
        };
        let t0 = Instant::now();
        let q = a
            .query(&settings)
            .checkpoint_dir(cp_root)
            .quiet(visits > 20_000)
            .start(a.branches())?;
        let s = run_to_end(&q, visits)?;
        let secs = t0.elapsed().as_secs_f64();
        let e2e = visits as f64 / secs;
        println!(
            "end-to-end (3 sinks, exactly-once): {e2e:.0} rows/s over {} batches ({secs:.1} s)",
            s.batches.len()
        );
        println!(
            "time per step: {}",
            s.steps_total()
                .iter()
                .map(|(n, ms)| format!("{n} {:.1} s", *ms as f64 / 1000.0))
                .collect::<Vec<_>>()
                .join("; ")
        );
        println!(
            "ratio end-to-end / raw consume: {:.3} ({:.1} %)",
            e2e / raw,
            100.0 * e2e / raw
        );
        Ok(BenchResult {
            visits,
            produce_per_sec: produce,
            raw_consume_per_sec: raw,
            end_to_end_per_sec: e2e,
        })
    })();
    objects.remove(&settings);
    result
}
