//! Spark's `df.write.jdbc(...)` as a builder a notebook cell shows: which table, which mode, and
//! for a rerun-safe write which column's values the new rows replace.
//!
//! ```text
//! let written = JdbcWrite::to(&settings, TableRef::new(GLOBAL_DB, STOCK_TABLE)?)
//!     .replace_matching("STOCK_DATE")   // rows of the same dates go first: a rerun replaces
//!     .save(&summary)?;
//! ```
//!
//! One transaction: the deletes (with [`JdbcWrite::replace_matching`]) and batched,
//! parameterized INSERTs of every column of the frame, by name. Values keep their type: integers
//! as integers, dates as `YYYY-MM-DD`, exact decimals as their decimal text (never through a
//! float), text as text; a null lands as NULL.

use mysql::prelude::Queryable;
use mysql::Value;
use polars::prelude::*;

use crate::batch::{worker_conn, TableRef};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::io::mariadb::{map_err, quote_ident};

/// Rows per INSERT statement.
const ROWS_PER_INSERT: usize = 1000;

/// A write of a DataFrame into a MariaDB table (see the module docs).
#[derive(Debug, Clone)]
pub struct JdbcWrite {
    table: TableRef,
    replace_column: Option<String>,
    settings: Settings,
}

impl JdbcWrite {
    /// Appends to `table` on the MariaDB server of `settings` (Spark's `mode("append")`); the
    /// columns are the frame's, by name.
    pub fn to(settings: &Settings, table: TableRef) -> JdbcWrite {
        JdbcWrite {
            table,
            replace_column: None,
            settings: settings.clone(),
        }
    }

    /// Before inserting, deletes the table's rows whose `column` holds one of the frame's values
    /// of that column, in the same transaction: writing the same result again replaces it
    /// instead of adding a second copy. A `Date` value matches its whole day (the table's column
    /// may be a DATETIME), any other value matches exactly (a `Datetime` its instant, not its
    /// day), and a null matches the rows where the column is NULL.
    pub fn replace_matching(mut self, column: &str) -> JdbcWrite {
        self.replace_column = Some(column.into());
        self
    }

    /// Writes the frame; returns the number of rows inserted.
    pub fn save(&self, df: &DataFrame) -> Result<u64> {
        let url = &self.settings.mariadb;
        let action = format!("write {} rows to {}", df.height(), self.table);
        let t = self.table.sql()?;
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        let cols = names
            .iter()
            .map(|n| quote_ident(n))
            .collect::<Result<Vec<_>>>()?
            .join(", ");
        let mut conn = worker_conn(url)?;
        let mut tx = conn
            .start_transaction(mysql::TxOpts::default())
            .map_err(|e| map_err(url, &action, e))?;
        if let Some(c) = &self.replace_column {
            let column = df.column(c)?;
            let whole_day = matches!(column.dtype(), DataType::Date);
            let mut keys: Vec<Value> = (0..df.height())
                .map(|i| value_of(column.get(i)?, c, i))
                .collect::<Result<_>>()?;
            keys.sort_by_key(|v| format!("{v:?}"));
            keys.dedup();
            let qc = quote_ident(c)?;
            // `= NULL` matches nothing: a null key deletes the NULL rows, once.
            if keys.contains(&Value::NULL) {
                keys.retain(|k| *k != Value::NULL);
                tx.exec_drop(format!("DELETE FROM {t} WHERE {qc} IS NULL"), ())
                    .map_err(|e| map_err(url, &action, e))?;
            }
            let sql = if whole_day {
                format!("DELETE FROM {t} WHERE {qc} >= ? AND {qc} < ? + INTERVAL 1 DAY")
            } else {
                format!("DELETE FROM {t} WHERE {qc} = ?")
            };
            for k in keys {
                let params = if whole_day {
                    vec![k.clone(), k]
                } else {
                    vec![k]
                };
                tx.exec_drop(&sql, params)
                    .map_err(|e| map_err(url, &action, e))?;
            }
        }
        let columns = df.get_columns();
        let one = format!("({})", vec!["?"; names.len()].join(", "));
        let mut written = 0u64;
        for start in (0..df.height()).step_by(ROWS_PER_INSERT) {
            let end = (start + ROWS_PER_INSERT).min(df.height());
            let mut params: Vec<Value> = Vec::with_capacity((end - start) * names.len());
            for i in start..end {
                for (c, name) in columns.iter().zip(&names) {
                    params.push(value_of(c.get(i)?, name, i)?);
                }
            }
            let sql = format!(
                "INSERT INTO {t} ({cols}) VALUES {}",
                vec![one.as_str(); end - start].join(", ")
            );
            tx.exec_drop(sql, params)
                .map_err(|e| map_err(url, &action, e))?;
            written += (end - start) as u64;
        }
        tx.commit().map_err(|e| map_err(url, &action, e))?;
        Ok(written)
    }
}

/// One cell as a MariaDB parameter, keeping its type (decimals as exact text).
fn value_of(v: AnyValue<'_>, column: &str, row: usize) -> Result<Value> {
    Ok(match v {
        AnyValue::Null => Value::NULL,
        AnyValue::Boolean(b) => Value::from(b),
        AnyValue::Int8(x) => Value::from(x),
        AnyValue::Int16(x) => Value::from(x),
        AnyValue::Int32(x) => Value::from(x),
        AnyValue::Int64(x) => Value::from(x),
        AnyValue::UInt8(x) => Value::from(x),
        AnyValue::UInt16(x) => Value::from(x),
        AnyValue::UInt32(x) => Value::from(x),
        AnyValue::UInt64(x) => Value::from(x),
        AnyValue::Float32(x) => Value::from(x),
        AnyValue::Float64(x) => Value::from(x),
        AnyValue::String(s) => Value::from(s),
        AnyValue::StringOwned(s) => Value::from(s.as_str()),
        AnyValue::Decimal(units, scale) => Value::from(decimal_text(units, scale)),
        d @ (AnyValue::Date(_) | AnyValue::Datetime(..)) => {
            Value::from(d.to_string().trim_matches('"').to_string())
        }
        other => {
            return Err(Error::invalid(format!(
                "column {column}, row {row}: a {} value cannot be written to MariaDB",
                other.dtype()
            )))
        }
    })
}

/// An exact decimal's text: `units` × 10^-`scale` (`12345, 2` → `123.45`).
fn decimal_text(units: i128, scale: usize) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let a = units.unsigned_abs();
    if scale == 0 {
        return format!("{sign}{a}");
    }
    let p = 10u128.pow(scale as u32);
    format!("{sign}{}.{:0width$}", a / p, a % p, width = scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_every_digit() {
        assert_eq!(decimal_text(12345, 2), "123.45");
        assert_eq!(decimal_text(-5, 2), "-0.05");
        assert_eq!(decimal_text(7, 0), "7");
        assert_eq!(decimal_text(1, 3), "0.001");
    }
}
