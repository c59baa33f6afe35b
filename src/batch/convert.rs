//! MariaDB rows into a Polars DataFrame: the kit's one type mapping, Spark's JDBC mapping, and
//! strict: a value that does not fit its column's type is an error naming the column and the
//! value, never a silent null.
//!
//! | MariaDB column | Polars |
//! |---|---|
//! | TINYINT, SMALLINT, MEDIUMINT, INT, YEAR | Int32 (INT UNSIGNED: Int64) |
//! | BIGINT | Int64 (BIGINT UNSIGNED: Decimal(20,0), as Spark) |
//! | DECIMAL(p,s) | exact Decimal(p,s) |
//! | FLOAT, DOUBLE | Float64 |
//! | BIT(1) | Boolean; BIT(n) Int64 |
//! | BINARY, VARBINARY, BLOB (binary character set) | Binary |
//! | DATE, DATETIME, TIMESTAMP | text `YYYY-MM-DD HH:MM:SS[.ffffff]` |
//! | everything else (CHAR, TEXT, JSON, TIME, ENUM, …) | text (must be UTF-8) |
//!
//! NULL stays null in every type.

use mysql::consts::{ColumnFlags, ColumnType as T};
use mysql::prelude::Queryable;
use mysql::{Params, Value};
use polars::prelude::*;

use crate::batch::parse_decimal;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::io::mariadb::{self, map_err, short};

/// The character set number MariaDB gives binary strings.
const BINARY_CHARSET: u16 = 63;

/// Runs `sql` (a `?` for each parameter) on database `db` (or none) and converts its rows
/// ([module docs](self)).
pub fn query_frame(
    settings: &Settings,
    db: Option<&str>,
    sql: &str,
    params: impl Into<Params>,
) -> Result<DataFrame> {
    let mut c = mariadb::conn(settings, db)?;
    typed_frame(&settings.mariadb, &mut c, sql, params, usize::MAX).map(|(df, _)| df)
}

/// Runs `sql` on a connection and converts at most `limit` rows; the flag is true when the
/// statement returned more rows than that (the rest are read and dropped).
pub fn typed_frame(
    url: &str,
    c: &mut impl Queryable,
    sql: &str,
    params: impl Into<Params>,
    limit: usize,
) -> Result<(DataFrame, bool)> {
    let result = c
        .exec_iter(sql, params)
        .map_err(|e| map_err(url, &format!("run `{}`", short(sql)), e))?;
    let kinds: Vec<(String, Kind)> = result
        .columns()
        .as_ref()
        .iter()
        .map(|c| (c.name_str().to_string(), Kind::of(c)))
        .collect();
    let mut cells: Vec<Vec<Value>> = vec![Vec::new(); kinds.len()];
    let mut cut = false;
    for row in result {
        let row = row.map_err(|e| map_err(url, "read a row", e))?;
        if cells.first().map_or(0, Vec::len) >= limit {
            cut = true;
            continue;
        }
        for (i, v) in row.unwrap().into_iter().enumerate() {
            if let Some(col) = cells.get_mut(i) {
                col.push(v);
            }
        }
    }
    let columns = kinds
        .iter()
        .zip(cells)
        .map(|((name, kind), vals)| kind.column(name, vals))
        .collect::<Result<Vec<Column>>>()?;
    Ok((DataFrame::new(columns)?, cut))
}

/// The Polars type a column becomes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int32,
    Int64,
    /// Exact decimal with precision and scale.
    Decimal(usize, usize),
    Float64,
    Boolean,
    /// BIT(n), n > 1: big-endian bytes as Int64.
    Bits,
    Binary,
    Text,
}

impl Kind {
    fn of(c: &mysql::Column) -> Kind {
        let unsigned = c.flags().contains(ColumnFlags::UNSIGNED_FLAG);
        match c.column_type() {
            T::MYSQL_TYPE_LONG if unsigned => Kind::Int64,
            T::MYSQL_TYPE_TINY
            | T::MYSQL_TYPE_SHORT
            | T::MYSQL_TYPE_LONG
            | T::MYSQL_TYPE_INT24
            | T::MYSQL_TYPE_YEAR => Kind::Int32,
            T::MYSQL_TYPE_LONGLONG if unsigned => Kind::Decimal(20, 0),
            T::MYSQL_TYPE_LONGLONG => Kind::Int64,
            T::MYSQL_TYPE_FLOAT | T::MYSQL_TYPE_DOUBLE => Kind::Float64,
            T::MYSQL_TYPE_NEWDECIMAL | T::MYSQL_TYPE_DECIMAL => {
                let scale = c.decimals() as usize;
                let sign_and_point = u32::from(!unsigned) + u32::from(scale > 0);
                let precision = (c.column_length().saturating_sub(sign_and_point) as usize)
                    .clamp(scale.max(1), 38);
                Kind::Decimal(precision, scale)
            }
            T::MYSQL_TYPE_BIT if c.column_length() == 1 => Kind::Boolean,
            T::MYSQL_TYPE_BIT => Kind::Bits,
            T::MYSQL_TYPE_TINY_BLOB
            | T::MYSQL_TYPE_MEDIUM_BLOB
            | T::MYSQL_TYPE_LONG_BLOB
            | T::MYSQL_TYPE_BLOB
            | T::MYSQL_TYPE_VAR_STRING
            | T::MYSQL_TYPE_STRING
            | T::MYSQL_TYPE_VARCHAR
            | T::MYSQL_TYPE_GEOMETRY
                if c.character_set() == BINARY_CHARSET =>
            {
                Kind::Binary
            }
            _ => Kind::Text,
        }
    }

    /// The column of `vals`, or an error naming the first value that does not fit.
    fn column(self, name: &str, vals: Vec<Value>) -> Result<Column> {
        let bad = |v: &Value, why: &str| {
            Error::invalid(format!(
                "MariaDB column {name}: {} {why}",
                shown(v).unwrap_or_else(|| "NULL".into())
            ))
        };
        let name: PlSmallStr = name.into();
        let series = match self {
            Kind::Int32 => Series::new(
                name,
                each(&vals, |v| {
                    integer(v)
                        .and_then(|i| i32::try_from(i).ok())
                        .ok_or_else(|| bad(v, "is not a 32-bit integer"))
                })?,
            ),
            Kind::Int64 => Series::new(
                name,
                each(&vals, |v| {
                    integer(v)
                        .and_then(|i| i64::try_from(i).ok())
                        .ok_or_else(|| bad(v, "is not a 64-bit integer"))
                })?,
            ),
            Kind::Float64 => Series::new(
                name,
                each(&vals, |v| match v {
                    Value::Float(f) => Ok(f64::from(*f)),
                    Value::Double(f) => Ok(*f),
                    Value::Int(i) => Ok(*i as f64),
                    Value::UInt(u) => Ok(*u as f64),
                    Value::Bytes(b) => std::str::from_utf8(b)
                        .ok()
                        .and_then(|t| t.trim().parse::<f64>().ok())
                        .ok_or_else(|| bad(v, "is not a number")),
                    _ => Err(bad(v, "is not a number")),
                })?,
            ),
            Kind::Decimal(precision, scale) => {
                let v = each(&vals, |v| match v {
                    Value::Int(i) => Ok(i128::from(*i) * 10i128.pow(scale as u32)),
                    Value::UInt(u) => Ok(i128::from(*u) * 10i128.pow(scale as u32)),
                    Value::Bytes(b) => std::str::from_utf8(b)
                        .map_err(|_| bad(v, "is not text"))
                        .and_then(|t| parse_decimal(t, scale))
                        .map_err(|e| bad(v, &format!("does not fit DECIMAL(…,{scale}): {e}"))),
                    _ => Err(bad(v, "is not a decimal")),
                })?;
                Int128Chunked::new(name, v)
                    .into_decimal(Some(precision), scale)?
                    .into_series()
            }
            Kind::Bits => Series::new(
                name,
                each(&vals, |v| {
                    bits(v)
                        .and_then(|i| i64::try_from(i).ok())
                        .ok_or_else(|| bad(v, "is not a 64-bit integer"))
                })?,
            ),
            Kind::Boolean => Series::new(
                name,
                each(&vals, |v| {
                    bits(v)
                        .filter(|i| *i == 0 || *i == 1)
                        .map(|i| i == 1)
                        .ok_or_else(|| bad(v, "is not a bit"))
                })?,
            ),
            Kind::Binary => Series::new(
                name,
                each(&vals, |v| match v {
                    Value::Bytes(b) => Ok(b.clone()),
                    _ => Err(bad(v, "is not a byte string")),
                })?,
            ),
            Kind::Text => Series::new(
                name,
                each(&vals, |v| {
                    shown(v).ok_or_else(|| bad(v, "is not UTF-8 text"))
                })?,
            ),
        };
        Ok(series.into())
    }
}

/// Converts every non-NULL value with `f`; NULL stays `None`.
fn each<X>(vals: &[Value], f: impl Fn(&Value) -> Result<X>) -> Result<Vec<Option<X>>> {
    vals.iter()
        .map(|v| match v {
            Value::NULL => Ok(None),
            v => f(v).map(Some),
        })
        .collect()
}

/// An integer value (binary protocol) or an integer's text (text protocol).
fn integer(v: &Value) -> Option<i128> {
    match v {
        Value::Int(i) => Some(i128::from(*i)),
        Value::UInt(u) => Some(i128::from(*u)),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// A BIT column's value: big-endian bytes (at most 8).
fn bits(v: &Value) -> Option<i128> {
    match v {
        Value::Bytes(b) if b.len() <= 8 => {
            Some(b.iter().fold(0i128, |n, x| (n << 8) | i128::from(*x)))
        }
        other => integer(other),
    }
}

/// A value as text: dates as `YYYY-MM-DD HH:MM:SS` (microseconds when there are any), text as
/// it is (`None` when it is not UTF-8 or NULL).
fn shown(v: &Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => String::from_utf8(b.clone()).ok(),
        Value::Date(y, mo, d, h, mi, s, us) if *us > 0 => Some(format!(
            "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}"
        )),
        Value::Date(y, mo, d, h, mi, s, _) => {
            Some(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"))
        }
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_do_not_fit_are_errors_naming_the_column() {
        let e = Kind::Int32
            .column(
                "QTY",
                vec![Value::Int(1), Value::Int(i64::from(i32::MAX) + 1)],
            )
            .expect_err("too big for Int32");
        assert!(e.to_string().contains("column QTY"), "{e}");
        let e = Kind::Text
            .column("NAME", vec![Value::Bytes(vec![0xff, 0xfe])])
            .expect_err("not UTF-8");
        assert!(e.to_string().contains("not UTF-8"), "{e}");
        let e = Kind::Decimal(10, 2)
            .column("PRICE", vec![Value::Bytes(b"1.234".to_vec())])
            .expect_err("three decimals in DECIMAL(10,2)");
        assert!(e.to_string().contains("column PRICE"), "{e}");
    }

    #[test]
    fn nulls_stay_null_and_values_keep_their_digits() {
        let c = Kind::Decimal(20, 0)
            .column("BIG", vec![Value::UInt(u64::MAX), Value::NULL])
            .expect("BIGINT UNSIGNED fits Decimal(20,0)");
        assert_eq!(c.null_count(), 1);
        assert_eq!(c.get(0).expect("row 0").to_string(), "18446744073709551615");
        let c = Kind::Text
            .column("AT", vec![Value::Date(2026, 12, 4, 9, 5, 1, 250)])
            .expect("a date");
        assert_eq!(
            c.get(0).expect("row 0").get_str(),
            Some("2026-12-04 09:05:01.000250")
        );
    }
}
