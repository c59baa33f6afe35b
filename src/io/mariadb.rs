//! MariaDB through the `mysql` crate: pools, queries into Polars, Spark's JDBC partitioned read.
//!
//! Pools are cached per (URL, database) and open connections lazily, so a cell that only needs
//! one connection opens one. All SQL that carries values is parameterized.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, PooledConn};

use crate::config::Settings;
use crate::error::{Error, Result, Service};
use crate::io::CONNECT_TIMEOUT;

/// Maps a driver error, telling "down" from "refused the request".
pub fn map_err(url: &str, action: &str, e: mysql::Error) -> Error {
    let address = Settings::address_of(url);
    match e {
        mysql::Error::IoError(_) | mysql::Error::DriverError(mysql::DriverError::CouldNotConnect(_)) => {
            Error::down(Service::MariaDb, address, format!("{action}: {e}"))
        }
        mysql::Error::MySqlError(ref m) if m.code == 1045 => Error::service(
            Service::MariaDb,
            address,
            action,
            format!("{e}. The course user is spark/spark: run `kernel/setup.sh` (it creates the user) or set BDE_MARIADB"),
        ),
        other => Error::service(Service::MariaDb, address, action, other),
    }
}

static POOLS: OnceLock<Mutex<HashMap<(String, Option<String>), Pool>>> = OnceLock::new();

/// A pool for `url` (optionally bound to database `db`), at most 8 connections, opened lazily.
pub fn pool_for(url: &str, db: Option<&str>) -> Result<Pool> {
    let key = (url.to_string(), db.map(str::to_string));
    let pools = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(p) = pools
        .lock()
        .map_err(|_| Error::Task("pool cache poisoned".into()))?
        .get(&key)
    {
        return Ok(p.clone());
    }
    let opts = Opts::from_url(url).map_err(|e| {
        Error::invalid(format!(
            "'{}' is not a MariaDB URL ({e}); use mysql://user:password@host:port",
            Settings::address_of(url)
        ))
    })?;
    let constraints =
        PoolConstraints::new(0, 8).ok_or_else(|| Error::invalid("pool constraints"))?;
    let builder = OptsBuilder::from_opts(opts)
        .db_name(db)
        .tcp_connect_timeout(Some(CONNECT_TIMEOUT))
        .read_timeout(Some(Duration::from_secs(300)))
        .pool_opts(PoolOpts::default().with_constraints(constraints));
    let pool = Pool::new(builder).map_err(|e| map_err(url, "open a pool", e))?;
    pools
        .lock()
        .map_err(|_| Error::Task("pool cache poisoned".into()))?
        .insert(key, pool.clone());
    Ok(pool)
}

/// The course user's pool (`spark`), optionally bound to a database.
pub fn pool(settings: &Settings, db: Option<&str>) -> Result<Pool> {
    pool_for(&settings.mariadb, db)
}

/// A connection of the course user.
pub fn conn(settings: &Settings, db: Option<&str>) -> Result<PooledConn> {
    let p = pool(settings, db)?;
    p.try_get_conn(CONNECT_TIMEOUT * 3)
        .map_err(|e| map_err(&settings.mariadb, "connect", e))
}

/// A connection of the administrator (setup only).
pub fn admin_conn(settings: &Settings) -> Result<PooledConn> {
    let p = pool_for(&settings.mariadb_root, None)?;
    p.try_get_conn(CONNECT_TIMEOUT * 3)
        .map_err(|e| map_err(&settings.mariadb_root, "connect as administrator", e))
}

/// Runs statements without results.
pub fn execute(settings: &Settings, db: Option<&str>, sql: &str) -> Result<()> {
    let mut c = conn(settings, db)?;
    c.query_drop(sql)
        .map_err(|e| map_err(&settings.mariadb, &format!("run `{}`", short(sql)), e))
}

/// The first 60 characters of a statement, for error messages.
pub fn short(sql: &str) -> String {
    let one_line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 60 {
        format!("{}…", one_line.chars().take(60).collect::<String>())
    } else {
        one_line
    }
}

/// Runs a query and returns its rows as a DataFrame, for exploring tables by hand
/// (`Table::new(&query_frame(&s, Some("website_stats"), "SELECT * FROM visit_stats")?)`).
/// Integer columns become Int64, floating columns Float64, everything else text
/// (DECIMAL keeps its exact digits, dates read `YYYY-MM-DD HH:MM:SS`); NULL stays null.
pub fn query_frame(
    settings: &Settings,
    db: Option<&str>,
    sql: &str,
) -> Result<polars::prelude::DataFrame> {
    let mut c = conn(settings, db)?;
    frame_of(&settings.mariadb, &mut c, sql, Vec::new())
}

/// Runs a query returning (text, integer) rows, e.g. `SELECT LAST_ACTION, SUM(DURATION) … GROUP BY
/// LAST_ACTION`; NULL text becomes empty, a NULL number 0.
pub fn pairs(settings: &Settings, db: &str, sql: &str) -> Result<Vec<(String, i64)>> {
    let mut c = conn(settings, Some(db))?;
    let rows: Vec<(Option<String>, Option<String>)> = c
        .query(sql)
        .map_err(|e| map_err(&settings.mariadb, &format!("run `{}`", short(sql)), e))?;
    rows.into_iter()
        .map(|(a, n)| {
            let n = n.unwrap_or_default();
            let v = if n.is_empty() {
                0
            } else {
                n.trim_end_matches(".0").parse::<i64>().map_err(|_| {
                    Error::invalid(format!("`{}` gave '{n}', not an integer", short(sql)))
                })?
            };
            Ok((a.unwrap_or_default(), v))
        })
        .collect()
}

/// Runs a parameterized query on a connection and converts the rows as [`query_frame`] does.
pub fn frame_of(
    url: &str,
    c: &mut impl Queryable,
    sql: &str,
    params: Vec<mysql::Value>,
) -> Result<polars::prelude::DataFrame> {
    use mysql::consts::ColumnType as T;
    use polars::prelude::{Column, DataFrame, NamedFrom, Series};
    let params = if params.is_empty() {
        mysql::Params::Empty
    } else {
        mysql::Params::Positional(params)
    };
    let result = c
        .exec_iter(sql, params)
        .map_err(|e| map_err(url, &format!("run `{}`", short(sql)), e))?;
    let cols: Vec<(String, T)> = result
        .columns()
        .as_ref()
        .iter()
        .map(|c| (c.name_str().to_string(), c.column_type()))
        .collect();
    let mut cells: Vec<Vec<mysql::Value>> = vec![Vec::new(); cols.len()];
    for row in result {
        let row = row.map_err(|e| map_err(url, "read a row", e))?;
        for (i, v) in row.unwrap().into_iter().enumerate() {
            if let Some(col) = cells.get_mut(i) {
                col.push(v);
            }
        }
    }
    let text = |v: &mysql::Value| -> Option<String> {
        match v {
            mysql::Value::NULL => None,
            mysql::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            mysql::Value::Date(y, mo, d, h, mi, s, _) => {
                Some(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"))
            }
            other => Some(other.as_sql(true).trim_matches('\'').to_string()),
        }
    };
    let columns: Vec<Column> = cols
        .iter()
        .zip(cells.iter())
        .map(|((name, ty), vals)| {
            let s = match ty {
                T::MYSQL_TYPE_TINY
                | T::MYSQL_TYPE_SHORT
                | T::MYSQL_TYPE_LONG
                | T::MYSQL_TYPE_LONGLONG
                | T::MYSQL_TYPE_INT24
                | T::MYSQL_TYPE_YEAR => Series::new(
                    name.as_str().into(),
                    vals.iter()
                        .map(|v| text(v).and_then(|t| t.parse::<i64>().ok()))
                        .collect::<Vec<_>>(),
                ),
                T::MYSQL_TYPE_FLOAT | T::MYSQL_TYPE_DOUBLE => Series::new(
                    name.as_str().into(),
                    vals.iter()
                        .map(|v| text(v).and_then(|t| t.parse::<f64>().ok()))
                        .collect::<Vec<_>>(),
                ),
                _ => Series::new(
                    name.as_str().into(),
                    vals.iter().map(text).collect::<Vec<_>>(),
                ),
            };
            s.into()
        })
        .collect();
    Ok(DataFrame::new(columns)?)
}

/// The rows of a partitioned read, and how many each partition read.
#[derive(Debug, Clone)]
pub struct PartitionedRead {
    pub frame: polars::prelude::DataFrame,
    pub rows_per_partition: Vec<usize>,
}

/// Spark's JDBC partitioned read: `query` (a SELECT with `?` placeholders for `params`) is read
/// as a derived table in `n` ranges of `column` between `lower` and `upper` (Spark's stride rule,
/// [`jdbc_partitions`]), each on its own connection and thread, at the same time. The rows come
/// back in partition order.
#[allow(clippy::too_many_arguments)]
pub fn partitioned_read(
    settings: &Settings,
    db: Option<&str>,
    query: &str,
    params: Vec<mysql::Value>,
    column: &str,
    lower: i64,
    upper: i64,
    n: usize,
) -> Result<PartitionedRead> {
    if !column
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        || column.is_empty()
    {
        return Err(Error::invalid(format!(
            "partition column '{column}' must be a plain column name"
        )));
    }
    let parts = jdbc_partitions(lower, upper, n)?;
    let p = pool(settings, db)?;
    let url = settings.mariadb.clone();
    let frames: Vec<Result<polars::prelude::DataFrame>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .iter()
            .map(|part| {
                let sql = format!(
                    "SELECT * FROM ({query}) AS tmp WHERE {}",
                    part.condition(column)
                );
                let params = params.clone();
                let p = p.clone();
                let url = url.clone();
                scope.spawn(move || {
                    let mut c = p
                        .try_get_conn(CONNECT_TIMEOUT * 3)
                        .map_err(|e| map_err(&url, "connect", e))?;
                    frame_of(&url, &mut c, &sql, params)
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
    let mut out: Option<polars::prelude::DataFrame> = None;
    let mut rows_per_partition = Vec::new();
    for f in frames {
        let f = f?;
        rows_per_partition.push(f.height());
        out = Some(match out {
            None => f,
            Some(acc) => acc.vstack(&f)?,
        });
    }
    Ok(PartitionedRead {
        frame: out.unwrap_or_default(),
        rows_per_partition,
    })
}

/// One range of a partitioned read: a condition on the partition column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePartition {
    /// Partition number (0-based): also the part-file number a writer uses.
    pub index: usize,
    /// Inclusive lower bound, `None` for the first partition (which also takes NULLs).
    pub from: Option<i64>,
    /// Exclusive upper bound, `None` for the last partition.
    pub to: Option<i64>,
}

impl RangePartition {
    /// The WHERE condition for column `column`, as Spark writes it.
    pub fn condition(&self, column: &str) -> String {
        match (self.from, self.to) {
            (None, None) => "1=1".to_string(),
            (None, Some(t)) => format!("{column} < {t} OR {column} IS NULL"),
            (Some(f), None) => format!("{column} >= {f}"),
            (Some(f), Some(t)) => format!("{column} >= {f} AND {column} < {t}"),
        }
    }
}

/// Spark's JDBC column-partitioning rule (`JDBCRelation.columnPartition`).
///
/// stride = ⌊upper/n⌋ − ⌊lower/n⌋; partition 0 gets `col < lower+stride OR col IS NULL`, the
/// last gets `col >= lower+(n−1)·stride`, the middle ones half-open ranges. When the range is
/// smaller than `n`, Spark lowers `n` to `upper − lower`. With (1, 31, 2) the split is at 16.
pub fn jdbc_partitions(lower: i64, upper: i64, n: usize) -> Result<Vec<RangePartition>> {
    if n == 0 {
        return Err(Error::invalid("numPartitions must be at least 1"));
    }
    if lower > upper {
        return Err(Error::invalid(format!(
            "lower bound {lower} is above upper bound {upper}"
        )));
    }
    let n = if n <= 1 || upper == lower {
        1
    } else if ((upper - lower) as u128) < n as u128 {
        (upper - lower) as usize
    } else {
        n
    };
    if n == 1 {
        return Ok(vec![RangePartition {
            index: 0,
            from: None,
            to: None,
        }]);
    }
    let ni = n as i64;
    let stride = upper / ni - lower / ni;
    let mut parts = Vec::with_capacity(n);
    let mut current = lower;
    for i in 0..n {
        let from = if i == 0 { None } else { Some(current) };
        current += stride;
        let to = if i == n - 1 { None } else { Some(current) };
        parts.push(RangePartition { index: i, from, to });
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stride_rule_matches_the_course_splits() {
        for (lo, hi, split) in [(1, 31, 16), (31, 61, 46), (61, 91, 76)] {
            let p = jdbc_partitions(lo, hi, 2).expect("parts");
            assert_eq!(p.len(), 2);
            assert_eq!(p[0].to, Some(split));
            assert_eq!(p[1].from, Some(split));
            assert_eq!(p[0].condition("ID"), format!("ID < {split} OR ID IS NULL"));
            assert_eq!(p[1].condition("ID"), format!("ID >= {split}"));
        }
    }

    #[test]
    fn stride_rule_handles_small_and_single_ranges() {
        assert_eq!(jdbc_partitions(5, 5, 2).expect("one").len(), 1);
        assert_eq!(jdbc_partitions(5, 6, 4).expect("one").len(), 1);
        let p = jdbc_partitions(0, 100, 4).expect("four");
        assert_eq!(
            p.iter().map(|r| (r.from, r.to)).collect::<Vec<_>>(),
            vec![
                (None, Some(25)),
                (Some(25), Some(50)),
                (Some(50), Some(75)),
                (Some(75), None)
            ]
        );
        assert!(jdbc_partitions(1, 0, 2).is_err());
        assert!(jdbc_partitions(1, 5, 0).is_err());
    }
}
