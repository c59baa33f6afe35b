//! Exploring the state by hand: one-line views of what Kafka, Redis and MariaDB hold, for a
//! cell after a job ran, while it runs, or when a total looks wrong.
//!
//! ```text
//! let ex = Explorer::new(&settings);
//! ex.tables()?                                   // schema, table, engine, rows, size
//! ex.describe("website_stats.visit_stats")?      // columns, types, keys; indexes
//! ex.sql(STATS_DB, "SELECT * FROM visit_stats WHERE LAST_ACTION = ?", ("Catalog",))?
//! ex.redis_keys("*")?                            // SCAN: type, TTL, memory, length, by namespace
//! ex.redis_show(COUNTRY_KEY)?                    // by type: a sorted set highest score first
//! ex.topics()?                                   // partitions, offsets, records, `.dlq` beside
//! ex.peek(VISITS_TOPIC, 5)?                      // newest records with headers
//! ex.lag()?                                      // every query checkpoint behind its topic
//! ex.groups()?                                   // consumer groups and their committed offsets
//! ```
//!
//! Every call returns an [`Explored`]: one or more DataFrames with a title and notes (what was
//! cut, by which limit), rendered as HTML tables in a notebook (by [`crate::show`]) and
//! available as frames ([`Explored::frame`]). Reads are bounded: at most [`Explorer::limit`]
//! rows, keys, items or records (default [`DEFAULT_LIMIT`]), and the output says when a limit
//! cut something. SQL is read-only unless a cell calls [`Explorer::sql_write`].
//!
//! - [`mariadb`]: `sql`, `sql_write`, `tables`, `tables_in`, `describe`;
//! - [`redis`]: `redis_keys`, `redis_show`;
//! - [`kafka`]: `topics`, `peek`, `peek_from_beginning`, `lag`, `groups`.

pub mod kafka;
pub mod mariadb;
pub mod redis;

use polars::prelude::DataFrame;

use crate::config::Settings;

/// Rows, keys, items or records a call reads at most, unless [`Explorer::limit`] says otherwise.
pub const DEFAULT_LIMIT: usize = 1000;

/// The exploring calls, for the servers of one [`Settings`] value.
#[derive(Debug, Clone)]
pub struct Explorer {
    settings: Settings,
    limit: usize,
}

impl Explorer {
    /// Explores the servers `settings` names.
    pub fn new(settings: &Settings) -> Explorer {
        Explorer {
            settings: settings.clone(),
            limit: DEFAULT_LIMIT,
        }
    }

    /// Another limit of rows, keys, items or records per call (at least 1).
    pub fn limit(mut self, n: usize) -> Explorer {
        self.limit = n.max(1);
        self
    }

    /// The servers explored.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// What one exploring call found: titled tables and notes.
#[derive(Debug, Clone, PartialEq)]
pub struct Explored {
    /// What was looked at (`MariaDB 127.0.0.1:3306: tables`).
    pub title: String,
    /// The tables, each with a caption; the first is the main one.
    pub tables: Vec<(String, DataFrame)>,
    /// What the reader should know: limits that cut, estimates, what is missing.
    pub notes: Vec<String>,
}

impl Explored {
    fn new(title: impl Into<String>, caption: impl Into<String>, frame: DataFrame) -> Explored {
        Explored {
            title: title.into(),
            tables: vec![(caption.into(), frame)],
            notes: Vec::new(),
        }
    }

    fn note(mut self, note: impl Into<String>) -> Explored {
        self.notes.push(note.into());
        self
    }

    fn and_table(mut self, caption: impl Into<String>, frame: DataFrame) -> Explored {
        self.tables.push((caption.into(), frame));
        self
    }

    /// The main table as a DataFrame (its columns are shared, not copied).
    pub fn frame(&self) -> DataFrame {
        self.tables
            .first()
            .map(|(_, df)| df.clone())
            .unwrap_or_default()
    }

    /// The table with this caption, if there is one.
    pub fn table(&self, caption: &str) -> Option<&DataFrame> {
        self.tables
            .iter()
            .find(|(c, _)| c == caption)
            .map(|(_, df)| df)
    }

    /// Rows of the main table.
    pub fn height(&self) -> usize {
        self.tables.first().map_or(0, |(_, df)| df.height())
    }
}

/// Bytes from outside as text: UTF-8 as it is, anything else with its odd bytes as `\xNN`
/// escapes, so no byte is lost or replaced silently.
pub fn bytes_text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.escape_ascii().to_string(),
    }
}

/// A size in bytes for people: `512 B`, `1.5 KiB`, `20.0 MiB`.
pub fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `n` items and the total, said when a limit cut: `showing 100 of 2500 members (limit 100:
/// Explorer::limit(n) shows more)`.
fn cut_note(shown: usize, total: impl std::fmt::Display, what: &str, limit: usize) -> String {
    format!(
        "showing {shown} of {total} {what} (limit {limit}: `Explorer::new(&settings).limit(n)` reads more)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_bytes_are_escaped_not_replaced() {
        assert_eq!(bytes_text(b"caf\xc3\xa9"), "café");
        assert_eq!(bytes_text(b"a\xffb"), "a\\xffb");
        assert_eq!(bytes_text(b""), "");
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(20 * 1024 * 1024), "20.0 MiB");
    }
}
