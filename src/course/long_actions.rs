//! Notebook 6 (`code_06_03_Spark_BDE_Extracting_long_last_actions`): the daily batch that
//! publishes "long" last actions — `website_stats.visit_stats` rows whose 5-second total
//! DURATION is above 15 — to `spark.exercise.lastaction.long` (key = value = LAST_ACTION).
//!
//! The notebook's cells write the steps out (bounds, [`JdbcRead`], [`KafkaPublish`]); this module
//! has the course's date range and threshold, and the same steps as one function for the tests
//! ([`read_long_actions_from`], [`LongActions::publish`]).
//!
//! Better than the course: no rows in the range gives a clear message, not a crash on a null
//! bound; and each visit_stats row is published once, however often the extraction runs and from
//! however many kernels (the ledger [`LEDGER_TABLE`] reserves the IDs before sending, each record
//! carries its ID in a header, see [`crate::batch::publish`]).

use chrono::{Local, NaiveDate};
use polars::prelude::DataFrame;

use crate::batch::jdbc::{bounds, JdbcRead};
use crate::batch::publish::{self, KafkaPublish};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::show::Table;

pub use crate::batch::publish::Published;
pub use crate::course::names::{LEDGER_TABLE, LONG_TOPIC, STATS_DB};

/// "Long" means a 5-second total duration strictly above this.
pub const THRESHOLD: i64 = 15;

/// The course's bounds query (the threshold is not applied here).
pub const BOUNDS_SQL: &str =
    "SELECT MIN(ID), MAX(ID) FROM visit_stats WHERE INTERVAL_TIMESTAMP BETWEEN ? AND ?";
/// The course's extraction query (read as a derived table, split on ID).
pub const LONG_ACTIONS_SQL: &str = "SELECT ID, LAST_ACTION, DURATION FROM visit_stats WHERE INTERVAL_TIMESTAMP BETWEEN ? AND ? AND DURATION > 15";

/// The course's range: today and tomorrow (midnight to next midnight, both included), in the
/// machine's wall time, as `INTERVAL_TIMESTAMP` is written (README, "Time zones").
pub fn course_range() -> (NaiveDate, NaiveDate) {
    let today = Local::now().date_naive();
    (today, today.succ_opt().unwrap_or(today))
}

/// The course's message when the range has no rows (the course crashed on a null bound).
pub fn empty_range_message(start: NaiveDate, end: NaiveDate) -> String {
    format!(
        "No visit_stats rows between {start} and {end}: run the chapter-4 pipeline (notebooks 3 to 5) first, \
         or pass the dates of an earlier run."
    )
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

/// The course's steps on another database and topic (tests): bounds, then the partitioned read
/// (column ID, lower = min, upper = max + 1, 2 partitions) with the threshold in the SQL.
pub fn read_long_actions_from(
    settings: &Settings,
    db: &str,
    topic: &str,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<LongActions> {
    if end < start {
        return Err(Error::invalid(format!(
            "the range ends ({end}) before it starts ({start})"
        )));
    }
    let (from, to) = (
        start.format("%Y-%m-%d").to_string(),
        end.format("%Y-%m-%d").to_string(),
    );
    println!("Querying bounds for date ranges : {from} {to}");
    let empty = |b| LongActions {
        start,
        end,
        bounds: b,
        rows: DataFrame::default(),
        rows_per_partition: vec![],
        db: db.into(),
        topic: topic.into(),
        settings: settings.clone(),
    };
    let Some((lo, hi)) = bounds(
        settings,
        db,
        BOUNDS_SQL,
        vec![from.as_str().into(), to.as_str().into()],
    )?
    else {
        println!("{}", empty_range_message(start, end));
        return Ok(empty(None));
    };
    println!("Query bounds are :  {lo} {hi}");
    let read = JdbcRead::query(settings, db, LONG_ACTIONS_SQL)
        .param(from.as_str())
        .param(to.as_str())
        .partition_column("ID")
        .lower_bound(lo)
        .upper_bound(hi + 1)
        .num_partitions(2)
        .load()?;
    Ok(LongActions {
        rows: read.frame()?,
        rows_per_partition: read.rows_per_partition(),
        ..empty(Some((lo, hi)))
    })
}

impl LongActions {
    /// Spark's `show(n)`.
    pub fn show(&self, n: usize) -> Table {
        Table::new(&self.rows).rows(n)
    }

    /// Publishes each selected row once (key = value = LAST_ACTION) and prints the course's
    /// summary line.
    pub fn publish(&self) -> Result<Published> {
        if self.rows.height() == 0 {
            println!(
                "Nothing to publish: no visit_stats rows with DURATION > {THRESHOLD} in the range."
            );
            return Ok(Published::default());
        }
        let p = KafkaPublish::to(&self.settings, &self.topic)
            .key("LAST_ACTION")
            .value("LAST_ACTION")
            .once_per("ID", &self.db, LEDGER_TABLE)
            .source_table(&self.db, crate::course::names::VISIT_STATS_TABLE)
            .publish(&self.rows)?;
        print_published(&p, &self.topic);
        Ok(p)
    }
}

/// The line the chapter-6 notebook prints after publishing.
pub fn print_published(p: &Published, topic: &str) {
    println!(
        "Published {} rows to {topic} ({} rows with DURATION > {THRESHOLD} in the range; {} published before)",
        p.published, p.selected, p.published_before
    );
    if p.recovered > 0 || p.in_progress_elsewhere > 0 {
        println!(
            "{} rows of an interrupted earlier run were found in the topic and not sent again; {} rows are being published by another run right now",
            p.recovered, p.in_progress_elsewhere
        );
    }
}

/// Published rows per action according to the ledger (what the scorecard must count).
pub fn ledger_counts(settings: &Settings, db: &str) -> Result<Vec<(String, i64)>> {
    publish::ledger_counts(settings, db, LEDGER_TABLE)
}
