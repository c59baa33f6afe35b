//! Aggregation across warehouses (SPEC §4.4): a lazy Polars scan of the Hive-style store,
//! grouped by STOCK_DATE and ITEM_NAME, and the write of the summary to the global table.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use polars::prelude::*;

use mysql::prelude::Queryable;
use mysql::Value;

use crate::batch::{cents_to_string, store, worker_conn, TableRef};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::io::mariadb::map_err;

/// A lazy scan of every part file under `data_dir`, with the partition columns STOCK_DATE
/// (Date) and WAREHOUSE_ID (String) taken from the folder names.
pub fn scan_store(data_dir: &Path) -> Result<LazyFrame> {
    if store::list_files(data_dir)?.is_empty() {
        return Err(Error::invalid(format!(
            "no Parquet files under {}: upload the stock first (section 03.04)",
            data_dir.display()
        )));
    }
    let hive_schema = Schema::from_iter([
        Field::new("STOCK_DATE".into(), DataType::Date),
        Field::new("WAREHOUSE_ID".into(), DataType::String),
    ]);
    let args = ScanArgsParquet {
        hive_options: polars::io::HiveOptions { enabled: Some(true), hive_start_idx: 0, schema: Some(Arc::new(hive_schema)), try_parse_dates: true },
        glob: true,
        ..Default::default()
    };
    let pattern = store::stock_glob(data_dir);
    let path = pattern.to_str().ok_or_else(|| Error::invalid(format!("{} is not a UTF-8 path", data_dir.display())))?;
    Ok(LazyFrame::scan_parquet(path, args)?)
}

/// The summary's columns, in the course's order.
pub const SUMMARY_COLUMNS: [&str; 8] =
    ["STOCK_DATE", "ITEM_NAME", "TOTAL_REC", "OPENING_STOCK", "RECEIPTS", "ISSUES", "CLOSING_STOCK", "CLOSING_VALUE"];

/// The course's Spark SQL as a lazy plan, restricted to `start..=end`:
///
/// ```sql
/// SELECT STOCK_DATE, ITEM_NAME, COUNT(*) AS TOTAL_REC, SUM(OPENING_STOCK) AS OPENING_STOCK,
///        SUM(RECEIPTS) AS RECEIPTS, SUM(ISSUES) AS ISSUES,
///        SUM(OPENING_STOCK + RECEIPTS - ISSUES) AS CLOSING_STOCK,
///        SUM((OPENING_STOCK + RECEIPTS - ISSUES) * UNIT_VALUE) AS CLOSING_VALUE
/// FROM GLOBAL_STOCK GROUP BY STOCK_DATE, ITEM_NAME
/// ```
///
/// Quantities are summed as Int64; CLOSING_VALUE stays Decimal (scale 2), never a float.
/// The date filter is on a partition column, so Polars skips other dates' folders.
pub fn summary_plan(store: LazyFrame, start: NaiveDate, end: NaiveDate) -> LazyFrame {
    let closing = (col("OPENING_STOCK").cast(DataType::Int64) + col("RECEIPTS").cast(DataType::Int64)
        - col("ISSUES").cast(DataType::Int64))
    .alias("CLOSING");
    store
        .filter(col("STOCK_DATE").gt_eq(lit(start)).and(col("STOCK_DATE").lt_eq(lit(end))))
        .with_column(closing)
        .group_by([col("STOCK_DATE"), col("ITEM_NAME")])
        .agg([
            len().cast(DataType::Int64).alias("TOTAL_REC"),
            col("OPENING_STOCK").cast(DataType::Int64).sum().alias("OPENING_STOCK"),
            col("RECEIPTS").cast(DataType::Int64).sum().alias("RECEIPTS"),
            col("ISSUES").cast(DataType::Int64).sum().alias("ISSUES"),
            col("CLOSING").sum().alias("CLOSING_STOCK"),
            (col("CLOSING") * col("UNIT_VALUE"))
                .sum()
                .cast(DataType::Decimal(Some(18), Some(2)))
                .alias("CLOSING_VALUE"),
        ])
        .sort(["STOCK_DATE", "ITEM_NAME"], SortMultipleOptions::default())
}

/// Runs [`summary_plan`] over the store under `data_dir`.
pub fn summarize(data_dir: &Path, start: NaiveDate, end: NaiveDate) -> Result<DataFrame> {
    Ok(summary_plan(scan_store(data_dir)?, start, end).collect()?)
}

/// A Decimal column as integer cents (scale 2), exactly: an error if a value has more decimals.
pub fn decimal_cents(df: &DataFrame, name: &str) -> Result<Vec<Option<i128>>> {
    let c = df.column(name)?;
    let scale = match c.dtype() {
        DataType::Decimal(_, Some(s)) => *s,
        other => return Err(Error::invalid(format!("column {name} is {other}, not a Decimal"))),
    };
    let phys = c.as_materialized_series().decimal()?.physical().clone();
    phys.into_iter()
        .map(|v| {
            v.map(|x| {
                if scale >= 2 {
                    let f = 10i128.pow((scale - 2) as u32);
                    if x % f != 0 {
                        return Err(Error::invalid(format!("{name} has a value with more than two decimals")));
                    }
                    Ok(x / f)
                } else {
                    Ok(x * 10i128.pow((2 - scale) as u32))
                }
            })
            .transpose()
        })
        .collect()
}

fn i64_col(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>> {
    Ok(df.column(name)?.cast(&DataType::Int64)?.i64()?.into_iter().collect())
}

/// The distinct STOCK_DATEs of a summary (`YYYY-MM-DD`), sorted.
pub fn summary_dates(df: &DataFrame) -> Result<Vec<String>> {
    let s = df.column("STOCK_DATE")?.cast(&DataType::String)?;
    let mut v: Vec<String> = s.str()?.into_iter().flatten().map(str::to_string).collect();
    v.sort();
    v.dedup();
    Ok(v)
}

/// Writes a summary to the global table in one transaction: rows of the same dates are
/// deleted first, so a rerun replaces instead of adding. STOCK_DATE lands as midnight DATETIME,
/// CLOSING_VALUE as DECIMAL from exact cents. Returns the number of rows inserted.
pub fn write_global(settings: &Settings, table: &TableRef, summary: &DataFrame) -> Result<u64> {
    let dates: Vec<Option<String>> =
        summary.column("STOCK_DATE")?.cast(&DataType::String)?.str()?.into_iter().map(|o| o.map(str::to_string)).collect();
    let items: Vec<Option<String>> = summary.column("ITEM_NAME")?.str()?.into_iter().map(|o| o.map(str::to_string)).collect();
    let total = i64_col(summary, "TOTAL_REC")?;
    let opening = i64_col(summary, "OPENING_STOCK")?;
    let receipts = i64_col(summary, "RECEIPTS")?;
    let issues = i64_col(summary, "ISSUES")?;
    let closing = i64_col(summary, "CLOSING_STOCK")?;
    let value = decimal_cents(summary, "CLOSING_VALUE")?;
    let url = &settings.mariadb;
    let action = format!("write the summary to {table}");
    let t = table.sql()?;
    let mut conn = worker_conn(url)?;
    let mut tx = conn.start_transaction(mysql::TxOpts::default()).map_err(|e| map_err(url, &action, e))?;
    for d in summary_dates(summary)? {
        tx.exec_drop(format!("DELETE FROM {t} WHERE STOCK_DATE >= ? AND STOCK_DATE < ? + INTERVAL 1 DAY"), (d.clone(), d))
            .map_err(|e| map_err(url, &action, e))?;
    }
    let n = summary.height();
    let one = "(?, ?, ?, ?, ?, ?, ?, ?)";
    let mut written = 0u64;
    let mut i = 0;
    while i < n {
        let j = (i + 1000).min(n);
        let mut params: Vec<Value> = Vec::with_capacity((j - i) * 8);
        for k in i..j {
            let missing = || Error::invalid(format!("summary row {k} has an empty value"));
            params.push(dates[k].clone().ok_or_else(missing)?.into());
            params.push(items[k].clone().ok_or_else(missing)?.into());
            params.push(total[k].ok_or_else(missing)?.into());
            params.push(opening[k].ok_or_else(missing)?.into());
            params.push(receipts[k].ok_or_else(missing)?.into());
            params.push(issues[k].ok_or_else(missing)?.into());
            params.push(closing[k].ok_or_else(missing)?.into());
            params.push(cents_to_string(value[k].ok_or_else(missing)?).into());
        }
        let sql = format!(
            "INSERT INTO {t} (STOCK_DATE, ITEM_NAME, TOTAL_REC, OPENING_STOCK, RECEIPTS, ISSUES, CLOSING_STOCK, CLOSING_VALUE) VALUES {}",
            vec![one; j - i].join(", ")
        );
        tx.exec_drop(sql, params).map_err(|e| map_err(url, &action, e))?;
        written += (j - i) as u64;
        i = j;
    }
    tx.commit().map_err(|e| map_err(url, &action, e))?;
    Ok(written)
}
