//! Aggregation across warehouses (SPEC §4.4): a lazy Polars scan of the Hive-style store,
//! grouped by STOCK_DATE and ITEM_NAME, and the write of the summary to the global table.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use polars::prelude::*;


use crate::batch::partitionwise::PartitionWise;
use crate::batch::{layout, TableRef};
use crate::course::stock_data::store;
use crate::config::Settings;
use crate::error::{Error, Result};

/// A lazy scan of every part file under `data_dir`, with the partition columns STOCK_DATE
/// (Date) and WAREHOUSE_ID (String) taken from the folder names.
pub fn scan_store(data_dir: &Path) -> Result<LazyFrame> {
    if layout::list_files(data_dir)?.is_empty() {
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
    store
        .filter(col("STOCK_DATE").gt_eq(lit(start)).and(col("STOCK_DATE").lt_eq(lit(end))))
        .with_column(closing())
        .group_by([col("STOCK_DATE"), col("ITEM_NAME")])
        .agg(summary_aggs())
        .sort(["STOCK_DATE", "ITEM_NAME"], SortMultipleOptions::default())
}

/// [`summary_plan`] for the rows of one STOCK_DATE: the date is the same on every row, so the
/// group key is ITEM_NAME alone (a one-column key hashes the names directly instead of encoding
/// (date, name) rows) and the date is carried as the group's first value.
pub fn day_summary_plan(day: LazyFrame) -> LazyFrame {
    let mut aggs = vec![col("STOCK_DATE").first()];
    aggs.extend(summary_aggs());
    day.with_column(closing())
        .group_by([col("ITEM_NAME")])
        .agg(aggs)
        .select(SUMMARY_COLUMNS.iter().map(|c| col(*c)).collect::<Vec<_>>())
        .sort(["ITEM_NAME"], SortMultipleOptions::default())
}

/// OPENING_STOCK + RECEIPTS - ISSUES as Int64, named CLOSING.
fn closing() -> Expr {
    (col("OPENING_STOCK").cast(DataType::Int64) + col("RECEIPTS").cast(DataType::Int64) - col("ISSUES").cast(DataType::Int64)).alias("CLOSING")
}

/// The summary's aggregations (every column after the two keys), over rows with CLOSING.
fn summary_aggs() -> Vec<Expr> {
    vec![
        len().cast(DataType::Int64).alias("TOTAL_REC"),
        col("OPENING_STOCK").cast(DataType::Int64).sum().alias("OPENING_STOCK"),
        col("RECEIPTS").cast(DataType::Int64).sum().alias("RECEIPTS"),
        col("ISSUES").cast(DataType::Int64).sum().alias("ISSUES"),
        col("CLOSING").sum().alias("CLOSING_STOCK"),
        (col("CLOSING") * col("UNIT_VALUE")).sum().cast(DataType::Decimal(Some(18), Some(2))).alias("CLOSING_VALUE"),
    ]
}

/// The course's summary of the store under `data_dir` for `start..=end`: [`summary_plan`]'s
/// result, computed one STOCK_DATE folder at a time ([`PartitionWise`] with [`day_summary_plan`]:
/// the groups never span two dates, so only one day's rows are in memory, the days come out in
/// order, and folders outside the dates are never opened).
pub fn summarize(data_dir: &Path, start: NaiveDate, end: NaiveDate) -> Result<DataFrame> {
    if layout::list_files(data_dir)?.is_empty() {
        return Err(Error::invalid(format!(
            "no Parquet files under {}: upload the stock first (section 03.04)",
            data_dir.display()
        )));
    }
    PartitionWise::new(data_dir, &store::PARTITION_COLUMNS).between(start, end).collect(day_summary_plan)
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

/// The distinct STOCK_DATEs of a summary (`YYYY-MM-DD`), sorted.
pub fn summary_dates(df: &DataFrame) -> Result<Vec<String>> {
    let s = df.column("STOCK_DATE")?.cast(&DataType::String)?;
    let mut v: Vec<String> = s.str()?.into_iter().flatten().map(str::to_string).collect();
    v.sort();
    v.dedup();
    Ok(v)
}

/// Writes a summary to the global table ([`crate::batch::jdbc_write::JdbcWrite`]): rows of the
/// same dates are replaced in the same transaction, so a rerun replaces instead of adding.
/// Returns the number of rows inserted.
pub fn write_global(settings: &Settings, table: &TableRef, summary: &DataFrame) -> Result<u64> {
    crate::batch::jdbc_write::JdbcWrite::to(table.clone()).replace_matching("STOCK_DATE").settings(settings.clone()).save(summary)
}
