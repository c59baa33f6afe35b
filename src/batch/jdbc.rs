//! Spark's partitioned JDBC read as a builder a notebook cell shows step by step:
//!
//! ```text
//! let stock = JdbcRead::query(&settings, WAREHOUSE_DB, "SELECT … FROM item_stock WHERE … = ?")
//!     .param(warehouse)
//!     .partition_column("ID")
//!     .lower_bound(lo)
//!     .upper_bound(hi + 1)
//!     .num_partitions(2)
//!     .load()?;
//! stock.show(3)
//! ```
//!
//! The query is read as a derived table in `num_partitions` ranges of the partition column
//! (Spark's stride rule, [`jdbc_partitions`]), each range on its own connection and thread, at
//! the same time. The result keeps one DataFrame per range ([`Partitioned`]), so a Parquet write
//! gives each range its own part file as Spark's tasks do.
//!
//! Column types follow Spark's JDBC mapping, strictly ([`crate::batch::convert`], the kit's one
//! MariaDB→Polars converter): INT → Int32, BIGINT → Int64, DECIMAL(p,s) → exact Decimal(p,s),
//! DOUBLE/FLOAT → Float64, text as text (dates as `YYYY-MM-DD HH:MM:SS`); a value that does not
//! fit is an error, never a null.

use mysql::prelude::Queryable;
use mysql::Value;
use polars::prelude::*;

use crate::batch::convert::typed_frame;
pub use crate::batch::ranges::{jdbc_partitions, RangePartition};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::io::mariadb::{self, map_err, short};

/// A partitioned read of a query (see the module docs).
#[derive(Debug, Clone)]
pub struct JdbcRead {
    db: String,
    query: String,
    params: Vec<Value>,
    column: Option<String>,
    lower: Option<i64>,
    upper: Option<i64>,
    partitions: usize,
    settings: Settings,
}

impl JdbcRead {
    /// Reads `sql` (a SELECT, `?` for each [`JdbcRead::param`]) from database `db` of the
    /// MariaDB server of `settings`.
    pub fn query(settings: &Settings, db: &str, sql: &str) -> JdbcRead {
        JdbcRead {
            db: db.into(),
            query: sql.into(),
            params: Vec::new(),
            column: None,
            lower: None,
            upper: None,
            partitions: 1,
            settings: settings.clone(),
        }
    }

    /// The value of the next `?` of the query (bound, never pasted into the SQL text).
    pub fn param(mut self, value: impl Into<Value>) -> JdbcRead {
        self.params.push(value.into());
        self
    }

    /// The integer column the ranges split (Spark's `partitionColumn`).
    pub fn partition_column(mut self, column: &str) -> JdbcRead {
        self.column = Some(column.into());
        self
    }

    /// Spark's `lowerBound` (the first range also takes everything below and NULLs).
    pub fn lower_bound(mut self, v: i64) -> JdbcRead {
        self.lower = Some(v);
        self
    }

    /// Spark's `upperBound`, exclusive (the last range also takes everything above).
    pub fn upper_bound(mut self, v: i64) -> JdbcRead {
        self.upper = Some(v);
        self
    }

    /// Spark's `numPartitions`: parallel reads, one connection each.
    pub fn num_partitions(mut self, n: usize) -> JdbcRead {
        self.partitions = n;
        self
    }

    /// The ranges this read will use.
    pub fn ranges(&self) -> Result<Vec<RangePartition>> {
        match (&self.column, self.lower, self.upper) {
            (None, _, _) => Ok(vec![RangePartition {
                index: 0,
                from: None,
                to: None,
            }]),
            (Some(_), Some(lo), Some(hi)) => jdbc_partitions(lo, hi, self.partitions),
            (Some(c), _, _) => Err(Error::invalid(format!(
                "partition column {c} needs both bounds: add .lower_bound(min).upper_bound(max + 1)"
            ))),
        }
    }

    /// Runs the ranges in parallel and returns their rows, one DataFrame per range.
    pub fn load(self) -> Result<Partitioned> {
        let column = self.column.clone().unwrap_or_default();
        if !column
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(Error::invalid(format!(
                "partition column '{column}' must be a plain column name"
            )));
        }
        let ranges = self.ranges()?;
        let pool = mariadb::pool(&self.settings, Some(&self.db))?;
        let url = self.settings.mariadb.clone();
        let results: Vec<Result<DataFrame>> = std::thread::scope(|scope| {
            let handles: Vec<_> = ranges
                .iter()
                .map(|part| {
                    let sql = if column.is_empty() {
                        self.query.clone()
                    } else {
                        format!(
                            "SELECT * FROM ({}) AS tmp WHERE {}",
                            self.query,
                            part.condition(&column)
                        )
                    };
                    let (params, pool, url) = (self.params.clone(), pool.clone(), url.clone());
                    scope.spawn(move || {
                        let mut c = pool.get_conn().map_err(|e| map_err(&url, "connect", e))?;
                        typed_frame(&url, &mut c, &sql, params, usize::MAX).map(|(df, _)| df)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Task("a partition reader panicked".into())))
                })
                .collect()
        });
        let parts = results.into_iter().collect::<Result<Vec<_>>>()?;
        Ok(Partitioned { parts, ranges })
    }
}

/// `MIN(col), MAX(col)` style bounds: runs `sql` (returning two integers, `?` bound to `params`)
/// on database `db`; `None` when the range is empty (both NULL).
pub fn bounds(
    settings: &Settings,
    db: &str,
    sql: &str,
    params: Vec<Value>,
) -> Result<Option<(i64, i64)>> {
    let mut c = mariadb::conn(settings, Some(db))?;
    let params = if params.is_empty() {
        mysql::Params::Empty
    } else {
        mysql::Params::Positional(params)
    };
    let r: Option<(Option<i64>, Option<i64>)> = c
        .exec_first(sql, params)
        .map_err(|e| map_err(&settings.mariadb, &format!("run `{}`", short(sql)), e))?;
    Ok(match r {
        Some((Some(lo), Some(hi))) => Some((lo, hi)),
        _ => None,
    })
}

/// The rows of a partitioned read: one DataFrame per range, in range order.
#[derive(Debug, Clone)]
pub struct Partitioned {
    /// The rows each range read.
    pub parts: Vec<DataFrame>,
    /// The ranges (range `i` read `parts[i]`).
    pub ranges: Vec<RangePartition>,
}

impl Partitioned {
    /// All rows in one DataFrame (range order).
    pub fn frame(&self) -> Result<DataFrame> {
        let mut out: Option<DataFrame> = None;
        for p in &self.parts {
            out = Some(match out {
                None => p.clone(),
                Some(acc) => acc.vstack(p)?,
            });
        }
        Ok(out.unwrap_or_default())
    }

    /// Rows per range.
    pub fn rows_per_partition(&self) -> Vec<usize> {
        self.parts.iter().map(DataFrame::height).collect()
    }

    /// Rows in all ranges.
    pub fn height(&self) -> usize {
        self.parts.iter().map(DataFrame::height).sum()
    }

    /// The write of these rows as Parquet (one part file per range and folder).
    pub fn write(&self) -> crate::batch::parquet::ParquetWrite<'_> {
        crate::batch::parquet::ParquetWrite::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_required_with_a_partition_column() {
        let r = JdbcRead::query(&Settings::default(), "db", "SELECT 1")
            .partition_column("ID")
            .num_partitions(2);
        assert!(r
            .ranges()
            .expect_err("no bounds")
            .to_string()
            .contains("lower_bound"));
        let r = r.lower_bound(1).upper_bound(31);
        assert_eq!(r.ranges().expect("ranges").len(), 2);
    }
}
