//! Helpers shared by the stream integration tests: unique names, visit producers, clean-up.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use bde_kit::course::visit::random_visit;
use bde_kit::course::visit::Visit;
use bde_kit::io::{kafka, mariadb, redis};
use bde_kit::Settings;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this process and call: `<prefix>_<pid>_<n>`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Test objects of one test, removed on drop.
pub struct Fixture {
    pub settings: Settings,
    pub tag: String,
    pub topics: Vec<String>,
    pub keys: Vec<String>,
    pub db: Option<String>,
    pub cp_root: std::path::PathBuf,
}

impl Fixture {
    pub fn new(prefix: &str) -> Fixture {
        let tag = unique(prefix);
        let mut settings = Settings::from_env();
        let cp_root = std::env::temp_dir().join(format!("bde_stream_cp_{tag}"));
        settings.checkpoint_dir = cp_root.clone();
        Fixture {
            settings,
            tag,
            topics: vec![],
            keys: vec![],
            db: None,
            cp_root,
        }
    }
    pub fn topic(&mut self, name: &str) -> String {
        self.topic_with_partitions(name, 1)
    }
    /// A fresh topic with `partitions` partitions (and its dead-letter topic), removed on drop.
    pub fn topic_with_partitions(&mut self, name: &str, partitions: i32) -> String {
        let t = format!("bde_test.{name}.{}", self.tag);
        kafka::create_topics(&self.settings, &[&t], partitions).expect("create topic");
        self.topics.push(t.clone());
        self.topics.push(format!("{t}.dlq"));
        t
    }
    /// A topic name that is not created (a sink creates it), cleaned up at the end.
    pub fn topic_name(&mut self, name: &str) -> String {
        let t = format!("bde_test.{name}.{}", self.tag);
        self.topics.push(t.clone());
        t
    }
    pub fn key(&mut self, name: &str) -> String {
        let k = format!("bde_test:{name}:{}", self.tag);
        self.keys.push(k.clone());
        k
    }
    /// A fresh `bde_test_…` database with the course's visit_stats table.
    pub fn database(&mut self) -> String {
        let db = format!("bde_test_stream_{}", self.tag.replace(['-', '.'], "_"));
        mariadb::execute(
            &self.settings,
            None,
            &format!("CREATE DATABASE IF NOT EXISTS `{db}`"),
        )
        .expect("create db");
        mariadb::execute(
            &self.settings,
            None,
            &bde_kit::course::analytics::visit_stats_ddl(&db).expect("ddl"),
        )
        .expect("create table");
        self.db = Some(db.clone());
        db
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let refs: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        let _ = kafka::delete_topics(&self.settings, &refs);
        if !self.keys.is_empty() {
            let mut all = self.keys.clone();
            for k in &self.keys {
                all.extend(
                    redis::keys(&self.settings, &format!("{k}:applied:*")).unwrap_or_default(),
                );
            }
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            let _ = redis::delete(&self.settings, &refs);
        }
        if let Some(db) = &self.db {
            let _ = mariadb::execute(
                &self.settings,
                None,
                &format!("DROP DATABASE IF EXISTS `{db}`"),
            );
        }
        let _ = std::fs::remove_dir_all(&self.cp_root);
    }
}

/// `n` random visits 300 ms apart from 2024-08-12 13:00:00 (whole seconds).
pub fn visits(n: usize) -> Vec<Visit> {
    visits_seeded(n, rand::random())
}

/// [`visits`] from a seeded generator: the same seed gives the same visits.
pub fn visits_seeded(n: usize, seed: u64) -> Vec<Visit> {
    use rand::SeedableRng;
    let base = chrono::NaiveDate::from_ymd_opt(2024, 8, 12)
        .and_then(|d| d.and_hms_opt(13, 0, 0))
        .expect("date");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            random_visit(
                &mut rng,
                base + chrono::Duration::milliseconds(i as i64 * 300),
            )
        })
        .map(|mut v| {
            use chrono::Timelike;
            v.visit_date = v.visit_date.with_nanosecond(0).expect("secs");
            v
        })
        .collect()
}

/// Produces visits as the course's generator does (key = country).
pub fn produce(settings: &Settings, topic: &str, visits: &[Visit]) {
    let recs = visits
        .iter()
        .map(|v| (Some(v.country.clone()), v.to_json()))
        .collect();
    kafka::produce_all(settings, topic, recs).expect("produce");
}

pub fn sum_by<K: Ord>(visits: &[Visit], key: impl Fn(&Visit) -> K) -> BTreeMap<K, i64> {
    let mut m = BTreeMap::new();
    for v in visits {
        *m.entry(key(v)).or_insert(0) += v.duration;
    }
    m
}

/// Redis sorted set as integer scores.
pub fn redis_scores(settings: &Settings, key: &str) -> BTreeMap<String, i64> {
    redis::scores(settings, key)
        .expect("scores")
        .into_iter()
        .map(|(m, s)| (m, s as i64))
        .collect()
}

/// SUM(DURATION) per LAST_ACTION of visit_stats.
pub fn db_sums_by_action(settings: &Settings, db: &str) -> BTreeMap<String, i64> {
    use bde_kit::mysql::prelude::Queryable;
    let mut c = mariadb::conn(settings, None).expect("conn");
    let rows: Vec<(String, i64)> = c
        .query(format!("SELECT LAST_ACTION, CAST(SUM(DURATION) AS SIGNED) FROM `{db}`.visit_stats GROUP BY LAST_ACTION"))
        .expect("sums");
    rows.into_iter().collect()
}

/// SUM(DURATION) per (INTERVAL_TIMESTAMP, LAST_ACTION), and the number of rows.
pub fn db_window_sums(settings: &Settings, db: &str) -> (BTreeMap<(String, String), i64>, usize) {
    use bde_kit::mysql::prelude::Queryable;
    let mut c = mariadb::conn(settings, None).expect("conn");
    let rows: Vec<(String, String, i64)> = c
        .query(format!(
            "SELECT DATE_FORMAT(INTERVAL_TIMESTAMP, '%Y-%m-%d %H:%i:%s'), LAST_ACTION, DURATION FROM `{db}`.visit_stats"
        ))
        .expect("rows");
    let n = rows.len();
    let mut m = BTreeMap::new();
    for (t, a, d) in rows {
        *m.entry((t, a)).or_insert(0) += d;
    }
    (m, n)
}

/// Exact sums per (5 s window start on visit_date, action).
pub fn expected_window_sums(visits: &[Visit]) -> BTreeMap<(String, String), i64> {
    let mut m = BTreeMap::new();
    for v in visits {
        let ms = v.event_ms().div_euclid(5000) * 5000;
        let start = bde_kit::stream::clock::fmt_ms(ms);
        *m.entry((start, v.last_action.clone())).or_insert(0) += v.duration;
    }
    m
}
