//! The batch benchmark's data and query: a Hive-style stock tree written directly with Polars
//! (the layout and file schema of [`bde_kit::course::stock_data::store`], without MariaDB), and the course's
//! aggregation over it ([`bde_kit::course::stock_data::aggregate::summary_plan`]) with the figures PySpark's
//! result is checked against (the sum of every summary column, CLOSING_VALUE in exact cents).

// The kit's re-exports: the same crates, versions and features the kit compiles with.
use bde_kit::{chrono, polars, rand, serde_json};

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use chrono::NaiveDate;
use polars::prelude::*;
use rand::Rng;
use serde_json::{json, Value};

use crate::batch::bench_items;
use bde_kit::batch::{cents_to_string, layout};
use bde_kit::course::stock_data::{aggregate, generator, store};
use bde_kit::error::{Error, Result};

/// The tree's shape: warehouses × days partition folders (one part file each) × items rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub warehouses: usize,
    pub days: usize,
    pub items: usize,
}

impl Shape {
    /// 10 warehouses × 25 days (250 part files, as many as Spark's JDBC upload of a small
    /// warehouse fleet would leave) and as many items as needed for at least `rows` rows.
    pub fn for_rows(rows: u64) -> Shape {
        let (warehouses, days) = (10usize, 25usize);
        let cells = (warehouses * days) as u64;
        Shape {
            warehouses,
            days,
            items: rows.div_ceil(cells).max(1) as usize,
        }
    }

    pub fn rows(&self) -> u64 {
        (self.warehouses * self.days * self.items) as u64
    }
}

/// The last STOCK_DATE of the tree (the course's example tree ends on 2025-12-31).
fn last_date() -> Result<NaiveDate> {
    NaiveDate::from_ymd_opt(2025, 12, 31).ok_or_else(|| Error::invalid("date"))
}

/// Writes the tree under `dir` (emptied first): `STOCK_DATE=…/WAREHOUSE_ID=WH00…/part-00000-<job>.c000.snappy.parquet`,
/// the course's ranges (opening 1..=100, receipts 1..=50, issues 1..=opening+receipts), seeded.
pub fn generate(dir: &Path, shape: &Shape, seed: u64) -> Result<Value> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    }
    let t0 = Instant::now();
    let end = last_date()?;
    let start = end - chrono::Duration::days(shape.days as i64 - 1);
    let items = bench_items(shape.items);
    let job = layout::new_job_id();
    let schema = store::stock_file_schema();
    let mut rng = generator::rng(seed);
    let mut id: i32 = 0;
    let (mut files, mut bytes) = (0usize, 0u64);
    for date in start.iter_days().take(shape.days) {
        for w in 0..shape.warehouses {
            let n = items.len();
            let (mut ids, mut names, mut opening, mut receipts, mut issues, mut unit) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for it in &items {
                id = id
                    .checked_add(1)
                    .ok_or_else(|| Error::invalid("more rows than a 32-bit ID holds"))?;
                let o: i32 = rng.random_range(1..=100);
                let r: i32 = rng.random_range(1..=50);
                ids.push(id);
                names.push(it.name.as_str());
                opening.push(o);
                receipts.push(r);
                issues.push(rng.random_range(1..=(o + r)));
                unit.push(it.unit_value_cents as i128);
            }
            let unit = Int128Chunked::from_vec("UNIT_VALUE".into(), unit)
                .into_decimal(Some(10), 2)?
                .into_series();
            let mut df = DataFrame::new(vec![
                Series::new("ID".into(), ids).into(),
                Series::new("ITEM_NAME".into(), names).into(),
                Series::new("OPENING_STOCK".into(), opening).into(),
                Series::new("RECEIPTS".into(), receipts).into(),
                Series::new("ISSUES".into(), issues).into(),
                unit.into(),
            ])?;
            if df.schema().as_ref() != &schema {
                return Err(Error::Task(format!(
                    "generated schema {:?} is not the store's",
                    df.schema()
                )));
            }
            let key = (date.format("%Y-%m-%d").to_string(), format!("WH{w:04}"));
            let folder = dir.join(store::partition_rel(&key));
            std::fs::create_dir_all(&folder).map_err(|e| Error::file(&folder, e))?;
            let path = folder.join(layout::part_file_name(0, &job, 0));
            let file = File::create(&path).map_err(|e| Error::file(&path, e))?;
            ParquetWriter::new(file)
                .with_compression(ParquetCompression::Snappy)
                .finish(&mut df)?;
            bytes += std::fs::metadata(&path)
                .map_err(|e| Error::file(&path, e))?
                .len();
            files += 1;
        }
    }
    Ok(json!({
        "rows": shape.rows(), "warehouses": shape.warehouses, "days": shape.days, "items": shape.items,
        "files": files, "bytes": bytes, "seconds": t0.elapsed().as_secs_f64(),
    }))
}

fn sum_i64(df: &DataFrame, name: &str) -> Result<i128> {
    Ok(df
        .column(name)?
        .cast(&DataType::Int64)?
        .i64()?
        .into_iter()
        .flatten()
        .map(i128::from)
        .sum())
}

/// How the aggregation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// One lazy plan over the whole tree (as notebook 2's cell writes it).
    Whole,
    /// The kit's `summarize`: the same plan one STOCK_DATE folder at a time.
    PartitionWise,
}

impl Plan {
    pub fn parse(s: &str) -> Result<Plan> {
        match s {
            "whole" => Ok(Plan::Whole),
            "partitionwise" => Ok(Plan::PartitionWise),
            other => Err(Error::invalid(format!(
                "--plan {other}: use whole or partitionwise"
            ))),
        }
    }
}

/// Runs the course's aggregation over the tree `repeat` times (each a fresh lazy scan and a
/// full `collect`), and returns the timings and the sums of the last result.
pub fn aggregate(dir: &Path, repeat: usize, plan: Plan) -> Result<Value> {
    let from = NaiveDate::from_ymd_opt(1970, 1, 1).ok_or_else(|| Error::invalid("date"))?;
    let to = NaiveDate::from_ymd_opt(2999, 12, 31).ok_or_else(|| Error::invalid("date"))?;
    let mut times = Vec::with_capacity(repeat);
    let mut last = None;
    for _ in 0..repeat {
        // Each run starts with no earlier result alive (every engine's script does the same), so
        // the peak is one run's, not one run's plus the previous result.
        drop(last.take());
        let t = Instant::now();
        let df = match plan {
            Plan::Whole => {
                aggregate::summary_plan(aggregate::scan_store(dir)?, from, to).collect()?
            }
            Plan::PartitionWise => aggregate::summarize(dir, from, to)?,
        };
        times.push(t.elapsed().as_secs_f64());
        last = Some(df);
    }
    let df = last.ok_or_else(|| Error::invalid("repeat must be at least 1"))?;
    let peak_after_query = self_peak_rss(); // before the checksums below add their own buffers
    let cents: i128 = aggregate::decimal_cents(&df, "CLOSING_VALUE")?
        .into_iter()
        .flatten()
        .sum();
    let mut sums = serde_json::Map::new();
    for c in [
        "TOTAL_REC",
        "OPENING_STOCK",
        "RECEIPTS",
        "ISSUES",
        "CLOSING_STOCK",
    ] {
        sums.insert(c.into(), json!(sum_i64(&df, c)?.to_string()));
    }
    sums.insert("CLOSING_VALUE".into(), json!(cents_to_string(cents)));
    Ok(json!({
        "engine": match plan { Plan::Whole => "bde_kit (one lazy plan)", Plan::PartitionWise => "bde_kit (partition-wise)" }, "rows": sum_i64(&df, "TOTAL_REC")?.to_string(), "groups": df.height(),
        "seconds": times, "sums": sums, "peak_rss_self": self_peak_rss(), "peak_rss_after_query": peak_after_query, "result_bytes": df.estimated_size(),
    }))
}

/// This process's peak resident memory in bytes (`VmHWM`), 0 where /proc is missing.
pub fn self_peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_covers_the_rows() {
        assert_eq!(Shape::for_rows(1_000_000).rows(), 1_000_000);
        assert_eq!(Shape::for_rows(2_000).rows(), 2_000);
        assert!(Shape::for_rows(1).rows() >= 1);
    }
}
