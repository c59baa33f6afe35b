//! The chapter-4 analytics query for the benchmarks, the end-to-end test and the crash-test
//! worker: one read of a visits topic, three sinks (abandoned carts to Kafka as CSV, duration per
//! country to a Redis sorted set, 5-second window sums per action to MariaDB), with every name
//! and knob a field so each run uses its own topics, key and database.
//!
//! Notebook 4 does not use this: its cells write the same query out step by step.

use std::time::Duration;

use bde_kit::course::names;
use bde_kit::stream::query::Query;
use bde_kit::stream::sink::{KafkaSink, Merge, RedisZIncr, Windowed};
use bde_kit::stream::source::{KafkaSource, Start};
use bde_kit::stream::trigger::Trigger;
use bde_kit::course::visit::Visit;

/// Names and knobs of the analytics query; the defaults are the course's.
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
            watermark: Duration::from_secs(5),
            additive: true,
            spark_csv: false,
        }
    }
}

impl Analytics {
    /// The query, ready to `.start()`.
    pub fn query(&self) -> Query<Visit> {
        let carts = KafkaSink::new(&self.carts_topic, if self.spark_csv { Visit::spark_csv_line } else { Visit::csv_line })
            .filter(|v: &Visit| v.last_action == names::SHOPPING_CART);
        let countries = RedisZIncr::new(&self.redis_key, |v: &Visit| v.country.clone(), |v: &Visit| v.duration as f64);
        let mut stats = bde_kit::course::analytics::visit_stats_writer(&self.db);
        if !self.additive {
            stats = stats.merge(Merge::Insert);
        }
        let mut window = Windowed::tumbling(self.window)
            .watermark(self.watermark)
            .key(|v: &Visit| v.last_action.clone())
            .sum(|v: &Visit| v.duration);
        if self.event_time {
            window = window.event_time(Visit::event_ms);
        }
        Query::new(&self.query)
            .source(KafkaSource::new(&self.visits_topic).starting(self.start).max_records(self.max_records))
            .trigger(self.trigger)
            .sink(carts)
            .sink(countries)
            .sink(window.to(stats))
    }
}
