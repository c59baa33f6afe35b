//! Notebook 4 (`code_04_04_Spark_BDE_Build_a_streaming_analytics_job`): what surrounds the
//! job. The query itself (source, schema, filter, writers, window, watermark) is written in the
//! notebook's cells; this module has a cross-kernel "is the job running" check used by the
//! generator notebook (the job starts from the latest offsets, so it must run before visits are
//! produced), a watch that lasts until the visits stop coming, the opt-in reset of the country
//! totals, and the check of the pipeline's outputs against the generator's report.
//!
//! [`Analytics`] is the same query as one builder with the course's names as defaults, every
//! name and knob a field, for the benchmarks (`bde-bench`) and the crash-test worker
//! (`bde stream-worker`); notebook 4 does not use it: its cells write the query step by step.

use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::course::names;
use crate::course::names::{CARTS_TOPIC, COUNTRY_KEY, STATS_DB};
use crate::course::visit::Visit;
use crate::error::{Error, Result};
use crate::stream::dataflow::{sum, Branch, Stream, Window};
use crate::stream::query::Query;
use crate::stream::sink::{KafkaSink, Merge, RedisZIncr};
use crate::stream::source::{KafkaSource, Start};
use crate::stream::trigger::Trigger;
use crate::stream::{checkpoint, StreamingQuery, Summary};

pub use crate::course::names::ANALYTICS_JOB as JOB_NAME;

/// Watches the job (one line per batch) until visits have arrived and then none came for
/// `idle`; gives up after `max` if no visit ever arrives. The job keeps running.
pub fn run_until_visits_stop(
    job: &StreamingQuery,
    idle: Duration,
    max: Duration,
) -> Result<Summary> {
    let started = Instant::now();
    while job.summary().total_rows == 0 && !crate::interrupt::interrupted() {
        if job.status().is_terminated() {
            return Err(Error::Task(format!(
                "the job stopped before any visit arrived: {}",
                job.status()
            )));
        }
        if started.elapsed() >= max {
            return Err(Error::Timeout {
                what: "the first visit".into(),
                after: max,
                hint: "start the generator (notebook 3); the job keeps running".into(),
            });
        }
        job.for_duration(Duration::from_secs(1))?;
    }
    job.until_idle(idle)
}

/// True when the query `name` (in any kernel or process using the same checkpoint folder) is
/// running: it rewrites a heartbeat file every second and removes it when it ends.
pub fn is_running(settings: &Settings, name: &str) -> bool {
    checkpoint::is_alive(
        &checkpoint::dir_for(&settings.checkpoint_dir, name),
        checkpoint::ALIVE_WITHIN,
    )
}

/// Waits until the course job runs (see [`is_running`]), at most `timeout`.
pub fn wait_until_running(settings: &Settings, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    let mut told = false;
    while !is_running(settings, JOB_NAME) {
        if !told {
            println!("waiting for the analytics job (notebook 4) to start…");
            told = true;
        }
        if started.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: "the analytics job of notebook 4".into(),
                after: timeout,
                hint: "start it first (it reads from the latest offsets), or skip this cell to generate anyway".into(),
            });
        }
        if crate::interrupt::sleep(Duration::from_millis(250)) {
            return Err(crate::interrupt::stopped(
                "the wait for the job (it was not running yet)",
            ));
        }
    }
    println!("the analytics job is running");
    Ok(())
}

/// Deletes the country totals (`last-action-stats`) so a demo starts from zero. The course never
/// resets them: totals of earlier runs add up.
pub fn reset_country_totals(settings: &Settings) -> Result<()> {
    let n = crate::io::redis::delete(settings, &[COUNTRY_KEY])?;
    println!("{COUNTRY_KEY} reset ({n} key deleted)");
    Ok(())
}

/// The country totals as they are now (per country, rounded to whole seconds): taken before
/// the job starts, [`check_against_generator`] compares what the run added.
pub fn country_totals(settings: &Settings) -> Result<std::collections::BTreeMap<String, i64>> {
    Ok(crate::io::redis::scores(settings, COUNTRY_KEY)?
        .into_iter()
        .map(|(c, v)| (c, v.round() as i64))
        .collect())
}

/// One line of [`check_against_generator`]: what was generated and what the pipeline holds.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckLine {
    pub what: String,
    pub generated: String,
    pub pipeline: String,
}

impl CheckLine {
    pub fn equal(&self) -> bool {
        self.generated == self.pipeline
    }
}

/// Compares the pipeline's three outputs with the generator's last run (notebook 3's report):
/// every ShoppingCart visit once in the carts topic, what the run added to the Redis totals per
/// country, and MariaDB window sums per action (windows of this run only). Run it after the job
/// stopped with its final flush.
#[derive(Debug, Clone, Default)]
pub struct GeneratorCheck {
    pub lines: Vec<CheckLine>,
}

impl GeneratorCheck {
    pub fn all_equal(&self) -> bool {
        !self.lines.is_empty() && self.lines.iter().all(CheckLine::equal)
    }

    pub fn table(&self) -> crate::show::Table {
        let rows = self
            .lines
            .iter()
            .map(|l| {
                vec![
                    l.what.clone(),
                    l.generated.clone(),
                    l.pipeline.clone(),
                    if l.equal() { "yes".into() } else { "NO".into() },
                ]
            })
            .collect();
        crate::show::Table::from_rows(&["check", "generated", "pipeline", "equal"], rows)
            .title(if self.all_equal() {
                "replay check: all equal"
            } else {
                "replay check: MISMATCH"
            })
            .rows(100)
    }

    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

fn fmt_map<V: std::fmt::Display>(m: &std::collections::BTreeMap<String, V>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// See [`GeneratorCheck`]. `report_file` is notebook 3's saved report
/// ([`LAST_RUN_FILE`](crate::course::visits::LAST_RUN_FILE)); `totals_before` the country totals
/// taken before the job started ([`country_totals`]).
pub fn check_against_generator(
    settings: &Settings,
    report_file: &str,
    totals_before: &std::collections::BTreeMap<String, i64>,
) -> Result<GeneratorCheck> {
    use std::collections::BTreeMap;
    let s = settings;
    let text = std::fs::read_to_string(report_file).map_err(|e| Error::file(report_file, e))?;
    let rep: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::invalid(format!("{report_file} is not a generator report: {e}")))?;
    let first = rep["first_visit"]
        .as_str()
        .ok_or_else(|| Error::invalid("the generator report has no visits"))?
        .to_string();
    let num_map = |v: &serde_json::Value| -> BTreeMap<String, i64> {
        v.as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, x)| (k.clone(), x.as_i64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let gen_country = num_map(&rep["duration_by_country"]);
    let gen_action = num_map(&rep["duration_by_action"]);
    let gen_carts: Vec<String> = rep["carts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let last = rep["last_visit"].as_str().unwrap_or(&first).to_string();

    // Carts: every generated cart line exactly as often in the topic (lines of this run only).
    let topic_lines = crate::io::kafka::read_all(s, CARTS_TOPIC, Duration::from_secs(30))?;
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    for (_, line) in topic_lines {
        let date = line.split(',').nth(2).unwrap_or("");
        if date >= first.as_str() && date <= last.as_str() {
            *seen.entry(line).or_default() += 1;
        }
    }
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for c in &gen_carts {
        *want.entry(c.clone()).or_default() += 1;
    }
    let mut lines = vec![CheckLine {
        what: "ShoppingCart visits in the carts topic".into(),
        generated: format!("{} lines", gen_carts.len()),
        pipeline: format!("{} lines", seen.values().sum::<i64>()),
    }];
    lines.push(CheckLine {
        what: "each cart exactly once".into(),
        generated: "yes".into(),
        pipeline: if seen == want {
            "yes".into()
        } else {
            "no".into()
        },
    });

    // Redis: what this run added to the duration per country.
    let added: BTreeMap<String, i64> = country_totals(s)?
        .into_iter()
        .map(|(c, v)| {
            let before = totals_before.get(&c).copied().unwrap_or(0);
            (c, v - before)
        })
        .filter(|(_, v)| *v != 0)
        .collect();
    lines.push(CheckLine {
        what: "Redis last-action-stats: added by this run (duration per country)".into(),
        generated: fmt_map(&gen_country),
        pipeline: fmt_map(&added),
    });

    // MariaDB: window sums per action, windows from the first visit to shortly after the last
    // (local wall times, as INTERVAL_TIMESTAMP: rows of runs in other zones are hours away).
    let wall = |t: &str, what: &str| {
        chrono::NaiveDateTime::parse_from_str(t, crate::course::visit::VISIT_DATE_FORMAT)
            .map_err(|e| Error::invalid(format!("bad {what} {t}: {e}")))
    };
    let since = wall(&first, "first_visit")? - chrono::Duration::seconds(10);
    let until = wall(&last, "last_visit")? + chrono::Duration::minutes(10);
    let mut c = crate::io::mariadb::conn(s, Some(STATS_DB))?;
    use mysql::prelude::Queryable;
    let rows: Vec<(String, i64)> = c
        .exec_map(
            "SELECT LAST_ACTION, CAST(SUM(DURATION) AS SIGNED) FROM visit_stats WHERE INTERVAL_TIMESTAMP BETWEEN ? AND ? GROUP BY LAST_ACTION",
            (
                since.format("%Y-%m-%d %H:%M:%S").to_string(),
                until.format("%Y-%m-%d %H:%M:%S").to_string(),
            ),
            |(a, v): (Option<String>, Option<i64>)| (a.unwrap_or_default(), v.unwrap_or(0)),
        )
        .map_err(|e| crate::io::mariadb::map_err(&s.mariadb, "sum visit_stats of this run", e))?;
    let db: BTreeMap<String, i64> = rows.into_iter().collect();
    lines.push(CheckLine {
        what: "MariaDB visit_stats window sums per action".into(),
        generated: fmt_map(&gen_action),
        pipeline: fmt_map(&db),
    });
    Ok(GeneratorCheck { lines })
}

/// The MariaDB writer of the course's 5-second summaries, `<db>.visit_stats`:
/// `INTERVAL_TIMESTAMP` = window start, `LAST_ACTION` = key, `DURATION` = the window sum (its
/// delta, so additive merging stays exact), merged additively on (INTERVAL_TIMESTAMP,
/// LAST_ACTION). Notebook 4 spells the same writer out in its cell; tests and the benchmark use this.
pub fn visit_stats_writer(
    db: &str,
) -> crate::stream::sink::MariaDbInsert<crate::stream::WindowRow> {
    use crate::stream::sink::{MariaDbInsert, Merge};
    MariaDbInsert::new(
        db,
        crate::course::names::VISIT_STATS_TABLE,
        &["INTERVAL_TIMESTAMP", "LAST_ACTION", "DURATION"],
        |w: &crate::stream::WindowRow| {
            vec![w.start_text().into(), w.key.clone().into(), w.delta.into()]
        },
    )
    .merge(Merge::Additive {
        key: vec!["INTERVAL_TIMESTAMP".into(), "LAST_ACTION".into()],
        add: vec!["DURATION".into()],
    })
}

/// The course's `visit_stats` table in `db` (SPEC §2.1), created when missing.
pub fn visit_stats_ddl(db: &str) -> Result<String> {
    let create = crate::course::setup::ddl(crate::course::setup::TableKind::VisitStats, db)?;
    Ok(create.replacen("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
}

/// The chapter-4 analytics query as one builder: one read of a visits topic, three sinks
/// (abandoned carts to Kafka as CSV, duration per country to a Redis sorted set, 5-second window
/// sums per action to MariaDB), with every name and knob a field so each run can use its own
/// topics, key and database. The defaults are the course's.
#[derive(Debug, Clone)]
pub struct Analytics {
    pub query: String,
    pub visits_topic: String,
    pub carts_topic: String,
    pub redis_key: String,
    /// Database holding `visit_stats` (created by the course's setup, or by the caller).
    pub db: String,
    pub start: Start,
    pub trigger: Trigger,
    pub max_records: usize,
    /// Windows on `visit_date` instead of processing time (the course uses processing time).
    pub event_time: bool,
    pub window: Duration,
    /// Sliding windows of `window` every `slide` instead of tumbling ones (not the course's).
    pub slide: Option<Duration>,
    /// Drop visits seen before (the same CSV line) within the watermark, before all three
    /// writers (not the course's).
    pub dedup: bool,
    pub watermark: Duration,
    /// Additive upsert on (INTERVAL_TIMESTAMP, LAST_ACTION) (adds a unique key), or plain inserts.
    pub additive: bool,
    /// Carts as Spark writes them (visit_date in microseconds) instead of a readable date.
    pub spark_csv: bool,
}

impl Default for Analytics {
    fn default() -> Self {
        Analytics {
            query: names::ANALYTICS_JOB.into(),
            visits_topic: names::VISITS_TOPIC.into(),
            carts_topic: names::CARTS_TOPIC.into(),
            redis_key: names::COUNTRY_KEY.into(),
            db: names::STATS_DB.into(),
            start: Start::Latest,
            trigger: Trigger::every(Duration::from_secs(1)),
            max_records: 10_000,
            event_time: false,
            window: Duration::from_secs(5),
            slide: None,
            dedup: false,
            watermark: Duration::from_secs(5),
            additive: true,
            spark_csv: false,
        }
    }
}

impl Analytics {
    /// The query (name, trigger and the servers of `settings`), ready to
    /// `.start(self.branches())` (add a checkpoint folder, progress callbacks first).
    pub fn query(&self, settings: &Settings) -> Query {
        Query::new(&self.query)
            .settings(settings.clone())
            .trigger(self.trigger)
    }

    /// The three branches of one read of the visits topic: carts to Kafka, duration per country
    /// to Redis, window sums per action to MariaDB.
    pub fn branches(&self) -> Vec<Branch<Visit>> {
        let read = Stream::<Visit>::read(
            KafkaSource::new(&self.visits_topic)
                .starting(self.start)
                .max_records(self.max_records),
        );
        let timed = |s: &Stream<Visit>| {
            if self.event_time {
                s.with_event_time(Visit::event_ms, self.watermark)
            } else {
                s.with_watermark(self.watermark)
            }
        };
        let visits = if self.dedup {
            timed(&read).drop_duplicates_within_watermark(Visit::csv_line)
        } else {
            read
        };
        // The writers read the visit in place (lines into the sink's one buffer, the member and
        // the window key borrowed): no allocation per row for them.
        let carts = visits
            .filter(|v| v.last_action == names::SHOPPING_CART)
            .write(KafkaSink::writing(
                &self.carts_topic,
                if self.spark_csv {
                    Visit::write_spark_csv_line
                } else {
                    Visit::write_csv_line
                },
            ));
        let countries = visits.write(RedisZIncr::new_str(
            &self.redis_key,
            |v: &Visit| v.country.as_str(),
            |v: &Visit| v.duration as f64,
        ));
        let mut stats = visit_stats_writer(&self.db);
        if !self.additive {
            stats = stats.merge(Merge::Insert);
        }
        let window = match self.slide {
            Some(slide) => Window::sliding(self.window, slide),
            None => Window::tumbling(self.window),
        };
        let summaries = timed(&visits)
            .window_str(window, |v| v.last_action.as_str())
            .agg([sum(|v: &Visit| v.duration)])
            .write(stats);
        vec![carts, countries, summaries]
    }
}
