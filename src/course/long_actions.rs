//! Notebook 6 (`code_06_03_Spark_BDE_Extracting_long_last_actions`): the daily batch that
//! publishes "long" last actions — `website_stats.visit_stats` rows whose 5-second total
//! DURATION is above 15 — to `spark.exercise.lastaction.long` (key = value = LAST_ACTION).
//!
//! As in the course: the date range is today..tomorrow (a parameter here), MIN/MAX(ID) bounds,
//! then a partitioned parallel read (column ID, lower = min, upper = max + 1, 2 partitions) with
//! the threshold pushed into the SQL, and `show(10)`.
//!
//! Better than the course:
//! - no rows in the range gives a clear message, not a crash on a null bound;
//! - a ledger table `website_stats.long_action_ledger` records each published visit_stats ID
//!   (written after the broker acknowledged the records), so re-running the extraction for the
//!   same range publishes only rows not published before and the scorecard never counts a row
//!   twice. A crash between the acknowledgement and the ledger write can republish that one
//!   run's rows (at-least-once for that window); the ledger shows what was published.

use chrono::{Local, NaiveDate};
use mysql::prelude::Queryable;
use polars::prelude::DataFrame;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::io::{kafka, mariadb};
use crate::show::Table;

/// The course's topic of long last actions.
pub const LONG_TOPIC: &str = "spark.exercise.lastaction.long";
/// The database of the 5-second summaries.
pub const STATS_DB: &str = "website_stats";
/// The ledger of published visit_stats IDs (in [`STATS_DB`]).
pub const LEDGER_TABLE: &str = "long_action_ledger";
/// "Long" means a 5-second total duration strictly above this.
pub const THRESHOLD: i64 = 15;

/// The course's range: today and tomorrow (midnight to next midnight, both included).
pub fn course_range() -> (NaiveDate, NaiveDate) {
    let today = Local::now().date_naive();
    (today, today.succ_opt().unwrap_or(today))
}

/// The rows selected for a date range, ready to publish.
#[derive(Debug, Clone)]
pub struct LongActions {
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// `MIN(ID), MAX(ID)` of the range (threshold not applied); `None` when the range is empty.
    pub bounds: Option<(i64, i64)>,
    /// ID, LAST_ACTION, DURATION of the rows with DURATION > 15.
    pub rows: DataFrame,
    pub rows_per_partition: Vec<usize>,
    db: String,
    topic: String,
    settings: Settings,
}

/// What [`LongActions::publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub selected: usize,
    pub published: usize,
    pub published_before: usize,
}

fn ensure_ledger(settings: &Settings, db: &str) -> Result<()> {
    mariadb::execute(
        settings,
        Some(db),
        &format!(
            "CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} (VISIT_STATS_ID INT NOT NULL PRIMARY KEY, \
             LAST_ACTION VARCHAR(45), PUBLISHED_AT DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        ),
    )
}

/// Reads the long last actions of `start..=end` (the course prints the range and the bounds).
pub fn read_long_actions(start: NaiveDate, end: NaiveDate) -> Result<LongActions> {
    read_long_actions_from(&Settings::from_env(), STATS_DB, LONG_TOPIC, start, end)
}

/// [`read_long_actions`] on another database and topic (tests).
pub fn read_long_actions_from(settings: &Settings, db: &str, topic: &str, start: NaiveDate, end: NaiveDate) -> Result<LongActions> {
    if end < start {
        return Err(Error::invalid(format!("the range ends ({end}) before it starts ({start})")));
    }
    let (from, to) = (start.format("%Y-%m-%d").to_string(), end.format("%Y-%m-%d").to_string());
    println!("Querying bounds for date ranges : {from} {to}");
    let mut c = mariadb::conn(settings, Some(db))?;
    let bounds: Option<(Option<i64>, Option<i64>)> = c
        .exec_first("SELECT MIN(ID), MAX(ID) FROM visit_stats WHERE INTERVAL_TIMESTAMP BETWEEN ? AND ?", (&from, &to))
        .map_err(|e| mariadb::map_err(&settings.mariadb, "read the ID bounds of visit_stats", e))?;
    drop(c);
    let bounds = match bounds {
        Some((Some(lo), Some(hi))) => (lo, hi),
        _ => {
            println!(
                "No visit_stats rows between {from} and {to}: run the chapter-4 pipeline (notebooks 3 to 5) first, \
                 or pass the dates of an earlier run."
            );
            return Ok(LongActions { start, end, bounds: None, rows: DataFrame::default(), rows_per_partition: vec![], db: db.into(), topic: topic.into(), settings: settings.clone() });
        }
    };
    println!("Query bounds are :  {} {}", bounds.0, bounds.1);
    let read = mariadb::partitioned_read(
        settings,
        Some(db),
        "SELECT ID, LAST_ACTION, DURATION FROM visit_stats WHERE INTERVAL_TIMESTAMP BETWEEN ? AND ? AND DURATION > ?",
        vec![from.clone().into(), to.clone().into(), THRESHOLD.into()],
        "ID",
        bounds.0,
        bounds.1 + 1,
        2,
    )?;
    Ok(LongActions { start, end, bounds: Some(bounds), rows: read.frame, rows_per_partition: read.rows_per_partition, db: db.into(), topic: topic.into(), settings: settings.clone() })
}

impl LongActions {
    /// Spark's `show(n)`.
    pub fn show(&self, n: usize) -> Table {
        Table::new(&self.rows).rows(n)
    }

    fn ids_and_actions(&self) -> Result<Vec<(i64, String)>> {
        if self.rows.height() == 0 {
            return Ok(Vec::new());
        }
        let ids = self.rows.column("ID")?.i64()?.clone();
        let actions = self.rows.column("LAST_ACTION")?.str()?.clone();
        let mut out: Vec<(i64, String)> =
            ids.into_iter().zip(actions.into_iter()).filter_map(|(i, a)| Some((i?, a.unwrap_or("").to_string()))).collect();
        out.sort();
        Ok(out)
    }

    /// Publishes each selected row not published before (key = value = LAST_ACTION), then
    /// records them in the ledger; prints how many.
    pub fn publish(&self) -> Result<Published> {
        let rows = self.ids_and_actions()?;
        let selected = rows.len();
        if selected == 0 {
            println!("Nothing to publish: no visit_stats rows with DURATION > {THRESHOLD} in the range.");
            return Ok(Published { selected: 0, published: 0, published_before: 0 });
        }
        ensure_ledger(&self.settings, &self.db)?;
        let mut c = mariadb::conn(&self.settings, Some(&self.db))?;
        let (lo, hi) = (rows[0].0, rows[rows.len() - 1].0);
        let done: std::collections::BTreeSet<i64> = c
            .exec_map(format!("SELECT VISIT_STATS_ID FROM {LEDGER_TABLE} WHERE VISIT_STATS_ID BETWEEN ? AND ?"), (lo, hi), |id: i64| id)
            .map_err(|e| mariadb::map_err(&self.settings.mariadb, "read the ledger", e))?
            .into_iter()
            .collect();
        let new: Vec<(i64, String)> = rows.into_iter().filter(|(id, _)| !done.contains(id)).collect();
        let records = new.iter().map(|(_, a)| (Some(a.clone()), a.clone())).collect();
        let published = kafka::produce_all(&self.settings, &self.topic, records)?;
        if !new.is_empty() {
            let mut tx = c.start_transaction(mysql::TxOpts::default()).map_err(|e| mariadb::map_err(&self.settings.mariadb, "start a transaction", e))?;
            tx.exec_batch(format!("INSERT INTO {LEDGER_TABLE} (VISIT_STATS_ID, LAST_ACTION) VALUES (?, ?)"), new.iter().map(|(id, a)| (id, a)))
                .map_err(|e| mariadb::map_err(&self.settings.mariadb, "record published IDs", e))?;
            tx.commit().map_err(|e| mariadb::map_err(&self.settings.mariadb, "commit the ledger", e))?;
        }
        let before = selected - new.len();
        println!(
            "Published {published} rows to {} ({selected} rows with DURATION > {THRESHOLD} in the range; {before} published before)",
            self.topic
        );
        Ok(Published { selected, published, published_before: before })
    }
}

/// Published rows per action according to the ledger (what the scorecard must count).
pub fn ledger_counts(settings: &Settings, db: &str) -> Result<Vec<(String, i64)>> {
    ensure_ledger(settings, db)?;
    let mut c = mariadb::conn(settings, Some(db))?;
    c.query_map(format!("SELECT LAST_ACTION, COUNT(*) FROM {LEDGER_TABLE} GROUP BY LAST_ACTION ORDER BY LAST_ACTION"), |(a, n): (Option<String>, i64)| {
        (a.unwrap_or_default(), n)
    })
    .map_err(|e| mariadb::map_err(&settings.mariadb, "count the ledger", e))
}
