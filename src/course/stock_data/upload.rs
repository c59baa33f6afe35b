//! Upload: a warehouse's stock for a date range, read from MariaDB in parallel the way Spark's
//! JDBC source does it, written to the Hive-style Parquet store.
//!
//! 1. bounds: `MIN(ID), MAX(ID)` for the warehouse and dates;
//! 2. split: [`jdbc_partitions`]`(min, max + 1, n)` — Spark's stride rule, so the course's
//!    split points (16, 46, 76) and part-file layout come out the same;
//! 3. read: one thread and one connection per partition; each reads its ID range in chunks
//!    (sub-ranges of [`UploadSpec::chunk_ids`] IDs, ordered by ID), so memory stays bounded
//!    however large the table is;
//! 4. write: each chunk goes out as a row group of the task's part file for its partition
//!    (`part-0000<task>-…`), staged under `_temporary/` and swapped in at the end, replacing
//!    the same warehouse's folders for those dates (a rerun does not duplicate).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use mysql::prelude::Queryable;
use mysql::Value;
use polars::prelude::*;

use crate::batch::ranges::{jdbc_partitions, RangePartition};
use crate::batch::{parse_cents, worker_conn, TableRef};
use crate::config::Settings;
use crate::course::stock_data::store::{self, PartKey, Staging};
use crate::error::{Error, Result};
use crate::io::mariadb::map_err;
use crate::show::Table;

/// What to upload and how.
#[derive(Debug, Clone)]
pub struct UploadSpec {
    /// The warehouse table, e.g. `warehouse_stock.item_stock`.
    pub table: TableRef,
    pub warehouse: String,
    /// First and last STOCK_DATE, both included.
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Parallel reads (Spark's numPartitions; the course uses 2).
    pub partitions: usize,
    /// IDs per read query within a partition (one row group each).
    pub chunk_ids: i64,
    /// Rows kept for the preview (`show(n)`).
    pub preview_rows: usize,
}

impl UploadSpec {
    /// The course's settings: 2 partitions, chunks of 50,000 IDs, 20 preview rows.
    pub fn new(
        table: TableRef,
        warehouse: impl Into<String>,
        start: NaiveDate,
        end: NaiveDate,
    ) -> UploadSpec {
        UploadSpec {
            table,
            warehouse: warehouse.into(),
            start,
            end,
            partitions: 2,
            chunk_ids: 50_000,
            preview_rows: 20,
        }
    }
}

/// What an upload did.
#[derive(Debug, Clone)]
pub struct Upload {
    pub warehouse: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// `MIN(ID), MAX(ID)`; `None` when there was nothing to upload.
    pub bounds: Option<(i64, i64)>,
    /// The ID ranges read in parallel.
    pub ranges: Vec<RangePartition>,
    /// Rows read by each range.
    pub rows_per_partition: Vec<u64>,
    pub rows: u64,
    /// The committed part files, relative to the data folder.
    pub files: Vec<String>,
    /// The first rows (partition order), with the partition columns.
    pub preview: DataFrame,
    pub elapsed: Duration,
}

impl Upload {
    /// The first `n` rows as Spark's `show(n)` would print them.
    pub fn show(&self, n: usize) -> Table {
        Table::new(&self.preview).rows(n)
    }
}

fn date_filter(start: NaiveDate, end: NaiveDate) -> Result<(String, String)> {
    if end < start {
        return Err(Error::invalid(format!(
            "end date {end} is before start date {start}"
        )));
    }
    let after = end
        .succ_opt()
        .ok_or_else(|| Error::invalid(format!("no day after {end}")))?;
    Ok((
        start.format("%Y-%m-%d").to_string(),
        after.format("%Y-%m-%d").to_string(),
    ))
}

/// `MIN(ID), MAX(ID)` of the warehouse's rows between `start` and `end` (both included).
pub fn bounds(
    settings: &Settings,
    table: &TableRef,
    warehouse: &str,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Option<(i64, i64)>> {
    let (from, to) = date_filter(start, end)?;
    let sql = format!(
        "SELECT MIN(ID), MAX(ID) FROM {} WHERE STOCK_DATE >= ? AND STOCK_DATE < ? AND WAREHOUSE_ID = ?",
        table.sql()?
    );
    let mut c = worker_conn(&settings.mariadb)?;
    let r: Option<(Option<i64>, Option<i64>)> = c
        .exec_first(sql, (from, to, warehouse))
        .map_err(|e| map_err(&settings.mariadb, &format!("read ID bounds of {table}"), e))?;
    Ok(match r {
        Some((Some(lo), Some(hi))) => Some((lo, hi)),
        _ => None,
    })
}

/// A read query's ID condition: `(lo, hi)`, `None` meaning open (the first range also takes NULLs).
fn chunk_condition(lo: Option<i64>, hi: Option<i64>, first: bool) -> (String, Vec<Value>) {
    match (lo, hi) {
        (None, None) => ("1=1".into(), vec![]),
        (None, Some(h)) if first => ("(ID < ? OR ID IS NULL)".into(), vec![h.into()]),
        (None, Some(h)) => ("ID < ?".into(), vec![h.into()]),
        (Some(l), None) => ("ID >= ?".into(), vec![l.into()]),
        (Some(l), Some(h)) => ("ID >= ? AND ID < ?".into(), vec![l.into(), h.into()]),
    }
}

/// The chunks of one partition: `(lo, hi)` ID ranges, open ends kept open.
pub fn chunks(
    part: &RangePartition,
    lower: i64,
    upper: i64,
    chunk_ids: i64,
) -> Vec<(Option<i64>, Option<i64>)> {
    let lo_data = part.from.unwrap_or(lower);
    let hi_data = part.to.unwrap_or(upper);
    let step = chunk_ids.max(1);
    let mut out = Vec::new();
    let mut a = lo_data;
    loop {
        let b = a.saturating_add(step).min(hi_data);
        out.push((Some(a), Some(b)));
        if b >= hi_data {
            break;
        }
        a = b;
    }
    if let Some(first) = out.first_mut() {
        first.0 = part.from;
    }
    if let Some(last) = out.last_mut() {
        last.1 = part.to;
    }
    out
}

#[derive(Default)]
struct Cols {
    id: Vec<i32>,
    item: Vec<String>,
    opening: Vec<i32>,
    receipts: Vec<i32>,
    issues: Vec<i32>,
    unit: Vec<i128>,
}

impl Cols {
    fn frame(self) -> Result<DataFrame> {
        let unit = Int128Chunked::from_vec("UNIT_VALUE".into(), self.unit)
            .into_decimal(Some(10), 2)?
            .into_series();
        Ok(DataFrame::new(vec![
            Series::new("ID".into(), self.id).into(),
            Series::new("ITEM_NAME".into(), self.item).into(),
            Series::new("OPENING_STOCK".into(), self.opening).into(),
            Series::new("RECEIPTS".into(), self.receipts).into(),
            Series::new("ISSUES".into(), self.issues).into(),
            unit.into(),
        ])?)
    }
}

type RawRow = (i64, String, String, String, i32, i32, i32, String);

struct TaskOut {
    rows: u64,
    preview: Vec<RawRow>,
    keys: Vec<PartKey>,
}

#[allow(clippy::too_many_arguments)]
fn read_partition(
    url: &str,
    spec: &UploadSpec,
    part: &RangePartition,
    lower: i64,
    upper: i64,
    staging: &Staging,
) -> Result<TaskOut> {
    let (from, to) = date_filter(spec.start, spec.end)?;
    let mut conn = worker_conn(url)?;
    let mut writer = staging.part_writer(part.index, store::stock_file_schema());
    let mut out = TaskOut {
        rows: 0,
        preview: Vec::new(),
        keys: Vec::new(),
    };
    let action = format!("read {} rows of {}", spec.warehouse, spec.table);
    let base = format!(
        "SELECT ID, DATE_FORMAT(STOCK_DATE, '%Y-%m-%d'), WAREHOUSE_ID, ITEM_NAME, OPENING_STOCK, RECEIPTS, ISSUES, \
         CAST(UNIT_VALUE AS CHAR) FROM {} WHERE STOCK_DATE >= ? AND STOCK_DATE < ? AND WAREHOUSE_ID = ? AND ",
        spec.table.sql()?
    );
    for (i, (lo, hi)) in chunks(part, lower, upper, spec.chunk_ids)
        .into_iter()
        .enumerate()
    {
        let (cond, ids) = chunk_condition(lo, hi, i == 0 && part.index == 0);
        let sql = format!("{base}{cond} ORDER BY ID");
        let mut params: Vec<Value> = vec![
            from.clone().into(),
            to.clone().into(),
            spec.warehouse.clone().into(),
        ];
        params.extend(ids);
        let mut groups: HashMap<PartKey, Cols> = HashMap::new();
        let mut order: Vec<PartKey> = Vec::new();
        let result = conn
            .exec_iter(sql, params)
            .map_err(|e| map_err(url, &action, e))?;
        for row in result {
            let row = row.map_err(|e| map_err(url, &action, e))?;
            let r: RawRow = mysql::from_row_opt(row)
                .map_err(|e| Error::invalid(format!("unexpected row in {}: {e}", spec.table)))?;
            let id = i32::try_from(r.0)
                .map_err(|_| Error::invalid(format!("ID {} does not fit INT", r.0)))?;
            let cents = parse_cents(&r.7)?;
            let key = (r.1.clone(), r.2.clone());
            let cols = groups.entry(key.clone()).or_insert_with(|| {
                order.push(key.clone());
                Cols::default()
            });
            cols.id.push(id);
            cols.item.push(r.3.clone());
            cols.opening.push(r.4);
            cols.receipts.push(r.5);
            cols.issues.push(r.6);
            cols.unit.push(cents);
            out.rows += 1;
            if out.preview.len() < spec.preview_rows {
                out.preview.push(r);
            }
        }
        for key in order {
            if let Some(cols) = groups.remove(&key) {
                writer.write(&key, &cols.frame()?)?;
                out.keys.push(key);
            }
        }
    }
    writer.finish()?;
    Ok(out)
}

fn preview_frame(rows: &[RawRow]) -> Result<DataFrame> {
    let cents: Result<Vec<i128>> = rows.iter().map(|r| parse_cents(&r.7)).collect();
    let unit = Int128Chunked::from_vec("UNIT_VALUE".into(), cents?)
        .into_decimal(Some(10), 2)?
        .into_series();
    Ok(DataFrame::new(vec![
        Series::new(
            "ID".into(),
            rows.iter().map(|r| r.0 as i32).collect::<Vec<_>>(),
        )
        .into(),
        Series::new(
            "STOCK_DATE".into(),
            rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        )
        .into(),
        Series::new(
            "WAREHOUSE_ID".into(),
            rows.iter().map(|r| r.2.as_str()).collect::<Vec<_>>(),
        )
        .into(),
        Series::new(
            "ITEM_NAME".into(),
            rows.iter().map(|r| r.3.as_str()).collect::<Vec<_>>(),
        )
        .into(),
        Series::new(
            "OPENING_STOCK".into(),
            rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        )
        .into(),
        Series::new(
            "RECEIPTS".into(),
            rows.iter().map(|r| r.5).collect::<Vec<_>>(),
        )
        .into(),
        Series::new(
            "ISSUES".into(),
            rows.iter().map(|r| r.6).collect::<Vec<_>>(),
        )
        .into(),
        unit.into(),
    ])?)
}

/// Uploads one warehouse's stock for `spec.start..=spec.end` to the store under `data_dir`,
/// replacing what an earlier upload of the same warehouse and dates left there.
pub fn upload(settings: &Settings, data_dir: &Path, spec: &UploadSpec) -> Result<Upload> {
    let t0 = Instant::now();
    if spec.partitions == 0 {
        return Err(Error::invalid("numPartitions must be at least 1"));
    }
    if spec.warehouse.is_empty() {
        return Err(Error::invalid("the warehouse id is empty"));
    }
    let b = bounds(settings, &spec.table, &spec.warehouse, spec.start, spec.end)?;
    let (ranges, tasks) = match b {
        Some((lo, hi)) => {
            let ranges = jdbc_partitions(lo, hi + 1, spec.partitions)?;
            let staging = Staging::new(data_dir)?;
            let results: Vec<Result<TaskOut>> = std::thread::scope(|scope| {
                let handles: Vec<_> = ranges
                    .iter()
                    .map(|part| {
                        let staging = &staging;
                        let url = settings.mariadb.as_str();
                        scope.spawn(move || read_partition(url, spec, part, lo, hi + 1, staging))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(Error::Task("a read task panicked".into())))
                    })
                    .collect()
            });
            let mut outs = Vec::new();
            for r in results {
                match r {
                    Ok(o) => outs.push(o),
                    Err(e) => {
                        staging.abort();
                        return Err(e);
                    }
                }
            }
            (ranges, Some((staging, outs)))
        }
        None => (Vec::new(), None),
    };
    // Every date of the range is replaced for this warehouse, including dates that have no
    // rows any more (their old folders go away).
    let mut replace: BTreeSet<PartKey> = BTreeSet::new();
    let mut d = spec.start;
    while d <= spec.end {
        replace.insert((d.format("%Y-%m-%d").to_string(), spec.warehouse.clone()));
        d = d
            .succ_opt()
            .ok_or_else(|| Error::invalid("date overflow"))?;
    }
    let (files, rows_per_partition, preview_rows) = match tasks {
        Some((staging, outs)) => {
            for o in &outs {
                replace.extend(o.keys.iter().cloned());
            }
            let files = staging.commit(&replace)?;
            let per: Vec<u64> = outs.iter().map(|o| o.rows).collect();
            let preview: Vec<RawRow> = outs
                .into_iter()
                .flat_map(|o| o.preview)
                .take(spec.preview_rows)
                .collect();
            (files, per, preview)
        }
        None => {
            // Nothing in the source: remove stale folders of this warehouse and dates.
            let staging = Staging::new(data_dir)?;
            staging.commit(&replace)?;
            (Vec::new(), Vec::new(), Vec::new())
        }
    };
    Ok(Upload {
        warehouse: spec.warehouse.clone(),
        start: spec.start,
        end: spec.end,
        bounds: b,
        ranges,
        rows: rows_per_partition.iter().sum(),
        rows_per_partition,
        files: files
            .iter()
            .map(|p| {
                p.components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect(),
        preview: preview_frame(&preview_rows)?,
        elapsed: t0.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_partition_and_keep_open_ends() {
        let parts = jdbc_partitions(1, 31, 2).expect("parts");
        assert_eq!(chunks(&parts[0], 1, 31, 100), vec![(None, Some(16))]);
        assert_eq!(chunks(&parts[1], 1, 31, 100), vec![(Some(16), None)]);
        assert_eq!(
            chunks(&parts[0], 1, 31, 6),
            vec![(None, Some(7)), (Some(7), Some(13)), (Some(13), Some(16))]
        );
        assert_eq!(
            chunks(&parts[1], 1, 31, 6),
            vec![(Some(16), Some(22)), (Some(22), Some(28)), (Some(28), None)]
        );
    }

    #[test]
    fn conditions_are_parameterized() {
        assert_eq!(
            chunk_condition(None, Some(16), true).0,
            "(ID < ? OR ID IS NULL)"
        );
        assert_eq!(chunk_condition(Some(16), None, false).0, "ID >= ?");
        assert_eq!(chunk_condition(Some(1), Some(7), false).1.len(), 2);
    }
}
