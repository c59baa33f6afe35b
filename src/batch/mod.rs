//! Batch data engineering with Polars: partitioned parallel reads from MariaDB, Hive-style
//! Parquet, lazy queries over it and writes back (chapter 3 of the course, without its names).
//!
//! - [`convert`]: MariaDB rows into Polars, the kit's one strict type mapping (Spark's JDBC mapping);
//! - [`ranges`]: Spark's JDBC column partitioning (the stride rule);
//! - [`jdbc`]: Spark's partitioned JDBC read as a builder ([`jdbc::JdbcRead`]), one DataFrame per range;
//! - [`jdbc_write`]: a DataFrame into a MariaDB table, replacing matching rows in one transaction;
//! - [`parquet`]: Hive-partitioned Parquet writes (mode, partition columns) and lazy scans;
//! - [`partitionwise`]: a query run one outermost partition at a time (bounded memory);
//! - [`layout`]: Spark's folder and part-file names;
//! - [`publish`]: rows to Kafka, each ID once (a ledger that reserves before sending).
//!
//! Every function takes its database/table names, dates and folders as parameters, so tests
//! and benchmarks run against their own databases; the course's names and data live in
//! [`crate::course`].

pub mod convert;
pub mod jdbc;
pub mod jdbc_write;
pub mod layout;
pub mod parquet;
pub mod partitionwise;
pub mod publish;
pub mod ranges;

use std::fmt;

use crate::error::{Error, Result};
use crate::io::mariadb::quote_ident;

/// A table in a database, `db.table`. Names are checked (letters, digits, `_`, `$`), because
/// identifiers cannot be bound as SQL parameters; values always are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableRef {
    pub db: String,
    pub table: String,
}

impl TableRef {
    /// `db.table`, both names checked.
    pub fn new(db: impl Into<String>, table: impl Into<String>) -> Result<TableRef> {
        let t = TableRef {
            db: db.into(),
            table: table.into(),
        };
        quote_ident(&t.db)?;
        quote_ident(&t.table)?;
        Ok(t)
    }

    /// The back-quoted name for SQL text: `` `db`.`table` ``.
    pub fn sql(&self) -> Result<String> {
        Ok(format!(
            "{}.{}",
            quote_ident(&self.db)?,
            quote_ident(&self.table)?
        ))
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.db, self.table)
    }
}

/// Money as integer cents → `"1234.56"` (exact; what a DECIMAL(…,2) parameter receives).
pub fn cents_to_string(cents: i128) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let a = cents.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// `"5.99"`, `"5.9"`, `"5"`, `"-0.50"` → cents. More than two decimals is an error (no rounding).
pub fn parse_cents(text: &str) -> Result<i128> {
    parse_decimal(text, 2)
}

/// Parses `"12.5"` as a decimal with `scale` digits after the point, as an integer of
/// 10^-scale units (exact: more digits is an error, never a rounding). The kit's one decimal
/// parser (amounts in cents, DECIMAL columns read from MariaDB).
pub fn parse_decimal(text: &str, scale: usize) -> Result<i128> {
    let t = text.trim();
    let bad = || {
        Error::invalid(format!(
            "'{text}' is not a decimal with at most {scale} decimals"
        ))
    };
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let frac = frac.trim_end_matches('0');
    if (int.is_empty() && frac.is_empty())
        || frac.len() > scale
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let f: i128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<scale$}").parse().map_err(|_| bad())?
    };
    let v = u32::try_from(scale)
        .ok()
        .and_then(|s| 10i128.checked_pow(s))
        .and_then(|unit| whole.checked_mul(unit))
        .and_then(|w| w.checked_add(f))
        .ok_or_else(bad)?;
    Ok(if neg { -v } else { v })
}

/// A connection of its own (outside the kit's pools) for a parallel worker: a partitioned read
/// or a generator thread opens one each, so `n` workers really use `n` connections.
pub fn worker_conn(url: &str) -> Result<mysql::Conn> {
    use crate::io::mariadb::map_err;
    let opts = mysql::Opts::from_url(url).map_err(|e| {
        Error::invalid(format!(
            "'{}' is not a MariaDB URL ({e}); use mysql://user:password@host:port",
            crate::config::Settings::address_of(url)
        ))
    })?;
    let builder = mysql::OptsBuilder::from_opts(opts)
        .tcp_connect_timeout(Some(crate::io::CONNECT_TIMEOUT))
        .read_timeout(Some(std::time::Duration::from_secs(600)))
        .write_timeout(Some(std::time::Duration::from_secs(600)));
    mysql::Conn::new(builder).map_err(|e| map_err(url, "connect", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_and_quoted() {
        assert!(TableRef::new("a`; DROP", "t").is_err());
        assert_eq!(
            TableRef::new("global_stock", "item_stock")
                .expect("ok")
                .sql()
                .expect("sql"),
            "`global_stock`.`item_stock`"
        );
    }

    #[test]
    fn cents_round_trip() {
        for (s, c) in [
            ("5.99", 599),
            ("10.00", 1000),
            ("2.5", 250),
            ("7", 700),
            ("-0.50", -50),
            ("1022.72", 102272),
        ] {
            assert_eq!(parse_cents(s).expect(s), c);
        }
        assert_eq!(cents_to_string(102272), "1022.72");
        assert_eq!(cents_to_string(-5), "-0.05");
        assert!(parse_cents("1.234").is_err());
        assert!(parse_cents("abc").is_err());
    }

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_decimal("5.99", 2).expect("ok"), 599);
        assert_eq!(parse_decimal("-0.5", 2).expect("ok"), -50);
        assert_eq!(parse_decimal("7", 3).expect("ok"), 7000);
        assert_eq!(parse_decimal("12.3400", 2).expect("ok"), 1234);
        assert!(parse_decimal("1.234", 2).is_err());
        assert!(parse_decimal("x", 2).is_err());
        assert!(parse_decimal("-", 2).is_err());
    }
}
