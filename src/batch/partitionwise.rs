//! Partition-wise execution of a query over a Hive tree: the query runs once per folder of the
//! outermost partition column and the results are stacked in folder order.
//!
//! ```text
//! let summary = PartitionWise::new(&settings.data_dir, &["STOCK_DATE", "WAREHOUSE_ID"])
//!     .collect(|day| day.group_by([col("STOCK_DATE"), col("ITEM_NAME")]).agg([len()]))?;
//! ```
//!
//! This equals running the query over the whole tree whenever every output row depends only on
//! rows of one partition: a filter, a projection, or a group-by whose keys include the outermost
//! partition column (its groups never span two folders). Then only one partition's rows are in
//! memory at a time, and each group-by sees a fraction of the groups: Spark's storage-partitioned
//! aggregation. A query whose groups span partitions (a total over all dates) must not use it.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;

use crate::batch::parquet::scan_hive;
use crate::error::{Error, Result};

/// A Hive tree to run a query over one outermost partition at a time.
#[derive(Debug, Clone)]
pub struct PartitionWise {
    dir: PathBuf,
    columns: Vec<String>,
    keep: Option<(String, String)>,
}

impl PartitionWise {
    /// The tree under `dir`, laid out by `partition_columns` (outermost first).
    pub fn new(dir: impl AsRef<Path>, partition_columns: &[&str]) -> PartitionWise {
        PartitionWise {
            dir: dir.as_ref().to_path_buf(),
            columns: partition_columns.iter().map(|c| c.to_string()).collect(),
            keep: None,
        }
    }

    /// Only the outermost partitions whose value lies in `from..=to` (compared as text, which
    /// orders ISO dates and zero-padded numbers correctly): the other folders are never opened.
    pub fn between(mut self, from: impl ToString, to: impl ToString) -> PartitionWise {
        self.keep = Some((from.to_string(), to.to_string()));
        self
    }

    /// The outermost partition values present (folder names `<column>=<value>`), sorted.
    pub fn values(&self) -> Result<Vec<String>> {
        let first = self.columns.first().ok_or_else(|| {
            Error::invalid("partition-wise execution needs at least one partition column")
        })?;
        let prefix = format!("{first}=");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).map_err(|e| Error::file(&self.dir, e))? {
            let e = e.map_err(|e| Error::file(&self.dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(v) = name.strip_prefix(&prefix) {
                if e.path().is_dir()
                    && self
                        .keep
                        .as_ref()
                        .is_none_or(|(lo, hi)| lo.as_str() <= v && v <= hi.as_str())
                {
                    out.push(v.to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Runs `query` over each outermost partition (as a lazy scan that has every column a
    /// whole-tree [`scan_hive`] has, the partition column as a constant) and stacks the results,
    /// in folder order.
    ///
    /// As many partitions run at once as the machine has cores (Polars' `collect_all`): one
    /// small partition leaves most cores idle (a day of the 1 M-row benchmark is 40,000 rows in
    /// 10 files: 0.105 s for the 25 days one at a time, 0.052 s two at a time on 2 cores; 20 M
    /// rows: 1.23-1.36 s → 1.05-1.06 s), and memory holds only that many partitions' rows.
    pub fn collect(&self, query: impl Fn(LazyFrame) -> LazyFrame) -> Result<DataFrame> {
        let values = self.values()?;
        if values.is_empty() {
            return Err(Error::invalid(format!(
                "no {}=… folders under {}: write some first",
                self.columns[0],
                self.dir.display()
            )));
        }
        let at_once = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut parts: Vec<DataFrame> = Vec::with_capacity(values.len());
        for group in values.chunks(at_once) {
            let plans = group
                .iter()
                .map(|v| Ok(query(self.scan(v)?)))
                .collect::<Result<Vec<LazyFrame>>>()?;
            for df in collect_all(plans)? {
                parts.push(compact_strings(df)?);
            }
        }
        // Stacked as chunks, one per partition: no copy of the results.
        let mut out = parts.remove(0);
        for p in &parts {
            out.vstack_mut(p)?;
        }
        Ok(out)
    }

    /// A lazy scan of the partition folder `<first column>=<value>`, with the partition column
    /// as a constant.
    fn scan(&self, value: &str) -> Result<LazyFrame> {
        let folder = self.dir.join(format!("{}={value}", self.columns[0]));
        let inner: Vec<&str> = self.columns[1..].iter().map(String::as_str).collect();
        Ok(scan_hive(&folder, &inner)?
            .with_column(partition_literal(value).alias(self.columns[0].as_str())))
    }
}

/// Copies each text column into buffers of its own. Polars keeps long strings as views into the
/// buffers they were read into, so a group-by's 80 000 names would otherwise keep the partition's
/// whole column of 800 000 names alive, and the stacked result every partition's.
fn compact_strings(df: DataFrame) -> Result<DataFrame> {
    let columns = df
        .get_columns()
        .iter()
        .map(|c| match c.dtype() {
            DataType::String => {
                let ca = c.as_materialized_series().str()?;
                Ok(StringChunked::from_chunk_iter(
                    ca.name().clone(),
                    ca.downcast_iter().map(|a| a.clone().gc()),
                )
                .into_column())
            }
            _ => Ok(c.clone()),
        })
        .collect::<Result<Vec<Column>>>()?;
    Ok(DataFrame::new(columns)?)
}

/// A folder's partition value as Polars' Hive reader types it: a date, an integer, or text.
fn partition_literal(v: &str) -> Expr {
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        lit(d)
    } else if let Ok(i) = v.parse::<i64>() {
        lit(i)
    } else {
        lit(unescape(v))
    }
}

/// Reverses Hive's `%XX` escaping of a folder name.
fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && v.is_char_boundary(i + 3) {
            if let Ok(x) = u8::from_str_radix(&v[i + 1..i + 3], 16) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::layout::escape_value;

    #[test]
    fn unescape_reverses_hive_escaping() {
        for v in ["New York", "a/b=c%d", "50%", "x:y"] {
            assert_eq!(unescape(&escape_value(v)), v);
        }
    }
}
