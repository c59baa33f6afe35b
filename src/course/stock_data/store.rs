//! The course's stock tree: the Parquet store under the data folder (the course's `raw_data/`, standing in for HDFS/S3),
//! in Spark's Hive-style layout:
//!
//! ```text
//! raw_data/STOCK_DATE=2025-04-01/WAREHOUSE_ID=NewYork/part-00000-<job id>.c000.snappy.parquet
//! ```
//!
//! Partition values live in the folder names, not in the files. A job writes its parts into
//! `raw_data/_temporary/<job id>/…` first (names starting with `_` are skipped by Spark, and the
//! kit's readers use an explicit `STOCK_DATE=*/WAREHOUSE_ID=*/*.parquet` pattern), then
//! [`Staging::commit`] swaps each written partition folder into place, replacing the folder a
//! previous run left there: a rerun replaces data instead of appending a second copy.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::batch::layout::{escape_value, new_job_id, part_file_name, TEMPORARY};
use crate::error::{Error, Result};

/// The partition columns, outermost first.
pub const PARTITION_COLUMNS: [&str; 2] = ["STOCK_DATE", "WAREHOUSE_ID"];

/// A partition: (STOCK_DATE as `YYYY-MM-DD`, WAREHOUSE_ID).
pub type PartKey = (String, String);

/// `STOCK_DATE=<date>/WAREHOUSE_ID=<warehouse>` relative to the data folder.
pub fn partition_rel(key: &PartKey) -> PathBuf {
    PathBuf::from(format!("{}={}", PARTITION_COLUMNS[0], escape_value(&key.0))).join(format!(
        "{}={}",
        PARTITION_COLUMNS[1],
        escape_value(&key.1)
    ))
}

/// The schema of the stock part files (partition columns are in the folder names).
pub fn stock_file_schema() -> Schema {
    Schema::from_iter([
        Field::new("ID".into(), DataType::Int32),
        Field::new("ITEM_NAME".into(), DataType::String),
        Field::new("OPENING_STOCK".into(), DataType::Int32),
        Field::new("RECEIPTS".into(), DataType::Int32),
        Field::new("ISSUES".into(), DataType::Int32),
        Field::new("UNIT_VALUE".into(), DataType::Decimal(Some(10), Some(2))),
    ])
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::file(path, e)
}

/// A job's staging folder: parts are written here and swapped into the data folder at commit.
#[derive(Debug)]
pub struct Staging {
    data_dir: PathBuf,
    job_id: String,
    dir: PathBuf,
}

impl Staging {
    /// Creates `data_dir/_temporary/<new job id>/`.
    pub fn new(data_dir: &Path) -> Result<Staging> {
        let job_id = new_job_id();
        let dir = data_dir.join(TEMPORARY).join(&job_id);
        std::fs::create_dir_all(&dir).map_err(file_err(&dir))?;
        Ok(Staging {
            data_dir: data_dir.to_path_buf(),
            job_id,
            dir,
        })
    }

    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// The staging folder of this job.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A part writer for read task `task` (its number goes into the file names).
    pub fn part_writer(&self, task: usize, schema: Schema) -> PartWriter {
        PartWriter {
            root: self.dir.clone(),
            job_id: self.job_id.clone(),
            task,
            schema,
            open: HashMap::new(),
            file_counts: HashMap::new(),
            tick: 0,
            max_open: MAX_OPEN_FILES,
            written: Vec::new(),
        }
    }

    /// Swaps the partitions in `replace` into the data folder: each target folder is replaced by
    /// the staged one, or removed when this job wrote nothing for it (the source no longer has
    /// rows there). Other partitions are left alone. Returns the committed files, relative to
    /// the data folder.
    pub fn commit(self, replace: &BTreeSet<PartKey>) -> Result<Vec<PathBuf>> {
        let old = self.dir.join("_replaced");
        let mut files = Vec::new();
        for key in replace {
            let rel = partition_rel(key);
            let staged = self.dir.join(&rel);
            let target = self.data_dir.join(&rel);
            if target.exists() {
                let aside = old.join(&rel);
                if let Some(p) = aside.parent() {
                    std::fs::create_dir_all(p).map_err(file_err(p))?;
                }
                std::fs::rename(&target, &aside).map_err(file_err(&target))?;
            }
            if staged.exists() {
                if let Some(p) = target.parent() {
                    std::fs::create_dir_all(p).map_err(file_err(p))?;
                }
                std::fs::rename(&staged, &target).map_err(file_err(&staged))?;
                let mut names: Vec<PathBuf> = std::fs::read_dir(&target)
                    .map_err(file_err(&target))?
                    .filter_map(|e| e.ok().map(|e| rel.join(e.file_name())))
                    .collect();
                names.sort();
                files.extend(names);
            } else if let Some(date_dir) = target.parent() {
                // Nothing left for this partition: drop an emptied date folder too.
                let _ = std::fs::remove_dir(date_dir);
            }
        }
        std::fs::remove_dir_all(&self.dir).map_err(file_err(&self.dir))?;
        let tmp = self.data_dir.join(TEMPORARY);
        let _ = std::fs::remove_dir(&tmp); // only when no other job is staging
        files.sort();
        Ok(files)
    }

    /// Drops everything staged (after a failed read).
    pub fn abort(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir(self.data_dir.join(TEMPORARY));
    }
}

/// Open part files per read task at most; an older one is finished when more are needed, and a
/// later row for its partition starts the next file (`c001`, …), as Spark does.
pub const MAX_OPEN_FILES: usize = 64;

struct OpenPart {
    writer: polars::io::parquet::write::BatchedWriter<File>,
    last_used: u64,
}

/// Writes the rows of one read task into one part file per partition, a row group per chunk.
pub struct PartWriter {
    root: PathBuf,
    job_id: String,
    task: usize,
    schema: Schema,
    open: HashMap<PartKey, OpenPart>,
    file_counts: HashMap<PartKey, usize>,
    tick: u64,
    max_open: usize,
    written: Vec<(PartKey, PathBuf)>,
}

impl PartWriter {
    /// Appends `df` (columns of the file schema, in order) to the partition's part file.
    pub fn write(&mut self, key: &PartKey, df: &DataFrame) -> Result<()> {
        if df.height() == 0 {
            return Ok(());
        }
        self.tick += 1;
        if !self.open.contains_key(key) {
            if self.open.len() >= self.max_open {
                self.close_oldest()?;
            }
            let n = self.file_counts.entry(key.clone()).or_insert(0);
            let dir = self.root.join(partition_rel(key));
            std::fs::create_dir_all(&dir).map_err(file_err(&dir))?;
            let path = dir.join(part_file_name(self.task, &self.job_id, *n));
            *n += 1;
            let file = File::create(&path).map_err(file_err(&path))?;
            let writer = ParquetWriter::new(file)
                .with_compression(ParquetCompression::Snappy)
                .set_parallel(false)
                .batched(&self.schema)?;
            self.written.push((key.clone(), path));
            self.open.insert(
                key.clone(),
                OpenPart {
                    writer,
                    last_used: 0,
                },
            );
        }
        let tick = self.tick;
        let part = self
            .open
            .get_mut(key)
            .ok_or_else(|| Error::Task("part file vanished".into()))?;
        part.last_used = tick;
        let mut df = df.clone();
        df.as_single_chunk_par();
        part.writer.write_batch(&df)?;
        Ok(())
    }

    fn close_oldest(&mut self) -> Result<()> {
        if let Some(k) = self
            .open
            .iter()
            .min_by_key(|(_, p)| p.last_used)
            .map(|(k, _)| k.clone())
        {
            if let Some(p) = self.open.remove(&k) {
                p.writer.finish()?;
            }
        }
        Ok(())
    }

    /// Finishes every open file; returns (partition, staged file) for each file written.
    pub fn finish(mut self) -> Result<Vec<(PartKey, PathBuf)>> {
        for (_, p) in self.open.drain() {
            p.writer.finish()?;
        }
        Ok(self.written)
    }
}

/// The glob the readers use: `<data_dir>/STOCK_DATE=*/WAREHOUSE_ID=*/*.parquet`.
pub fn stock_glob(data_dir: &Path) -> PathBuf {
    data_dir
        .join(format!("{}=*", PARTITION_COLUMNS[0]))
        .join(format!("{}=*", PARTITION_COLUMNS[1]))
        .join("*.parquet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_spark() {
        let j = new_job_id();
        assert_eq!(j.len(), 36, "{j}");
        assert_eq!(
            part_file_name(1, "abc", 0),
            "part-00001-abc.c000.snappy.parquet"
        );
        assert_eq!(
            partition_rel(&("2025-04-01".into(), "New/York".into())),
            PathBuf::from("STOCK_DATE=2025-04-01/WAREHOUSE_ID=New%2FYork")
        );
    }
}
