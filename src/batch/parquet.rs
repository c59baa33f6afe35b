//! Hive-partitioned Parquet, as a notebook cell writes and reads it:
//!
//! ```text
//! stock.write().mode(SaveMode::Append).partition_by(&["STOCK_DATE", "WAREHOUSE_ID"]).parquet(&settings.data_dir)?;
//! let all = scan_hive(&settings.data_dir, &["STOCK_DATE", "WAREHOUSE_ID"])?;   // a LazyFrame
//! ```
//!
//! The layout is Spark's: `<dir>/STOCK_DATE=2025-04-01/WAREHOUSE_ID=NewYork/part-00000-<job>.c000.snappy.parquet`.
//! Partition values live in the folder names, not in the files. Each range of a partitioned read
//! writes its own part file per folder (`part-0000<range>`), as Spark's tasks do. A write goes to
//! `<dir>/_temporary/<job>/` first and moves into place at the end, so a failed write leaves the
//! store as it was (folders starting with `_` are never read).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::batch::jdbc::Partitioned;
use crate::batch::layout::{escape_value, new_job_id, part_file_name, TEMPORARY};
use crate::error::{Error, Result};

/// What a write does with folders that already hold data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    /// Spark's `append`: new part files beside the old ones (a rerun duplicates the data).
    Append,
    /// Spark's dynamic partition overwrite: every folder this write has rows for is replaced;
    /// other folders stay (a rerun replaces instead of duplicating).
    OverwritePartitions,
}

/// A pending write of a partitioned read's rows (see the module docs).
#[derive(Debug, Clone)]
pub struct ParquetWrite<'a> {
    data: &'a Partitioned,
    mode: SaveMode,
    partition_by: Vec<String>,
}

/// What a write did.
#[derive(Debug, Clone)]
pub struct Written {
    pub dir: PathBuf,
    pub mode: SaveMode,
    pub rows: usize,
    /// Part files written, relative to the folder (`/`-separated).
    pub files: Vec<String>,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {} rows in {} part files under {} (mode {:?})",
            self.rows,
            self.files.len(),
            self.dir.display(),
            self.mode
        )
    }
}

impl<'a> ParquetWrite<'a> {
    /// A write of `data` (use [`Partitioned::write`]); mode append, no partition columns.
    pub fn new(data: &'a Partitioned) -> ParquetWrite<'a> {
        ParquetWrite {
            data,
            mode: SaveMode::Append,
            partition_by: Vec::new(),
        }
    }

    /// What happens to folders that already hold data.
    pub fn mode(mut self, mode: SaveMode) -> ParquetWrite<'a> {
        self.mode = mode;
        self
    }

    /// The partition columns, outermost folder first; they go into the folder names and leave
    /// the files.
    pub fn partition_by(mut self, columns: &[&str]) -> ParquetWrite<'a> {
        self.partition_by = columns.iter().map(|c| c.to_string()).collect();
        self
    }

    /// Writes under `dir` (created if missing).
    pub fn parquet(self, dir: impl AsRef<Path>) -> Result<Written> {
        let dir = dir.as_ref();
        let job = new_job_id();
        let staging = dir.join(TEMPORARY).join(&job);
        let result = self.stage(&staging, &job);
        let staged = match result {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        let mut files = Vec::new();
        for (rel, names) in &staged {
            let target = dir.join(rel);
            if self.mode == SaveMode::OverwritePartitions && target.exists() {
                std::fs::remove_dir_all(&target).map_err(|e| Error::file(&target, e))?;
            }
            std::fs::create_dir_all(&target).map_err(|e| Error::file(&target, e))?;
            for name in names {
                let from = staging.join(rel).join(name);
                let to = target.join(name);
                std::fs::rename(&from, &to).map_err(|e| Error::file(&from, e))?;
                files.push(format!("{}/{name}", rel.to_string_lossy()));
            }
        }
        let _ = std::fs::remove_dir_all(&staging);
        let _ = std::fs::remove_dir(dir.join(TEMPORARY)); // only when no other job is staging
        files.sort();
        Ok(Written {
            dir: dir.to_path_buf(),
            mode: self.mode,
            rows: self.data.height(),
            files,
        })
    }

    /// Writes every range's rows into part files under `staging`; returns folder → file names.
    fn stage(&self, staging: &Path, job: &str) -> Result<BTreeMap<PathBuf, Vec<String>>> {
        let mut out: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
        for (task, part) in self.data.parts.iter().enumerate() {
            if part.height() == 0 {
                continue;
            }
            for (rel, rows) in split_by_folder(part, &self.partition_by)? {
                let folder = staging.join(&rel);
                std::fs::create_dir_all(&folder).map_err(|e| Error::file(&folder, e))?;
                let name = part_file_name(task, job, 0);
                let path = folder.join(&name);
                let file = File::create(&path).map_err(|e| Error::file(&path, e))?;
                let mut rows = rows;
                ParquetWriter::new(file)
                    .with_compression(ParquetCompression::Snappy)
                    .finish(&mut rows)?;
                out.entry(rel).or_default().push(name);
            }
        }
        Ok(out)
    }
}

/// The rows of `df` per partition folder (`C1=v1/C2=v2`), in order of first appearance, without
/// the partition columns.
fn split_by_folder(df: &DataFrame, columns: &[String]) -> Result<Vec<(PathBuf, DataFrame)>> {
    if columns.is_empty() {
        return Ok(vec![(PathBuf::new(), df.clone())]);
    }
    let mut texts: Vec<Vec<String>> = Vec::with_capacity(columns.len());
    for c in columns {
        let s = df.column(c).map_err(|_| {
            Error::invalid(format!(
                "partition column {c} is not among the columns {:?}",
                df.get_column_names()
            ))
        })?;
        let s = s.cast(&DataType::String)?;
        let v: Vec<String> = s
            .str()?
            .into_iter()
            .map(|o| {
                o.map(escape_value)
                    .unwrap_or_else(|| "__HIVE_DEFAULT_PARTITION__".into())
            })
            .collect();
        texts.push(v);
    }
    let mut order: Vec<PathBuf> = Vec::new();
    let mut rows: BTreeMap<PathBuf, Vec<bool>> = BTreeMap::new();
    for i in 0..df.height() {
        let rel: PathBuf = columns
            .iter()
            .zip(&texts)
            .map(|(c, v)| format!("{c}={}", v[i]))
            .collect();
        let mask = rows.entry(rel.clone()).or_insert_with(|| {
            order.push(rel.clone());
            vec![false; df.height()]
        });
        mask[i] = true;
    }
    let data = df.drop_many(columns.iter().map(|c| c.as_str()));
    order
        .into_iter()
        .map(|rel| {
            let mask = BooleanChunked::from_slice("mask".into(), &rows[&rel]);
            Ok((rel, data.filter(&mask)?))
        })
        .collect()
}

/// A lazy scan of every part file under `dir` laid out by `partition_columns` (outermost
/// first): the partition columns come back from the folder names (dates as Date).
pub fn scan_hive(dir: impl AsRef<Path>, partition_columns: &[&str]) -> Result<LazyFrame> {
    let dir = dir.as_ref();
    let mut pattern = dir.to_path_buf();
    for c in partition_columns {
        pattern.push(format!("{c}=*"));
    }
    pattern.push("*.parquet");
    if list_files(dir)?.is_empty() {
        return Err(Error::invalid(format!(
            "no Parquet files under {}: write some first",
            dir.display()
        )));
    }
    let path = pattern
        .to_str()
        .ok_or_else(|| Error::invalid(format!("{} is not a UTF-8 path", dir.display())))?;
    let args = ScanArgsParquet {
        hive_options: polars::io::HiveOptions {
            enabled: Some(true),
            hive_start_idx: 0,
            schema: None,
            try_parse_dates: true,
        },
        glob: true,
        ..Default::default()
    };
    Ok(LazyFrame::scan_parquet(path, args)?)
}

/// Every Parquet file under `dir` (jobs in progress left out), sorted, relative, `/`-separated.
pub fn list_files(dir: &Path) -> Result<Vec<String>> {
    crate::batch::layout::list_files(dir)
}

/// [`list_files`] with each file's size in bytes (0 when it vanished meanwhile).
pub fn files_with_sizes(dir: &Path) -> Result<Vec<(String, u64)>> {
    Ok(list_files(dir)?
        .into_iter()
        .map(|f| {
            let size = std::fs::metadata(dir.join(&f))
                .map(|m| m.len())
                .unwrap_or(0);
            (f, size)
        })
        .collect())
}
