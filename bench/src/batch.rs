//! The batch pipeline at a chosen scale, timed: `bde-bench batch --warehouses W --days D --items I`.
//!
//! It creates two `bde_test_bench_*` databases with the course's tables (the course's DDL from
//! [`bde_kit::course::setup::ddl`]: the benchmark is the course's pipeline, only bigger), fills the
//! warehouse table with W × D × I rows over parallel connections (multi-row INSERTs), uploads each
//! warehouse with the partitioned chunked reader into a temporary Parquet store, aggregates it
//! lazily and writes the summary, then drops everything (unless `keep`).
//!
//! One index is added to the source table beyond the course's DDL, `(WAREHOUSE_ID, STOCK_DATE)`,
//! so each warehouse's bounds query does not scan the whole table — the "design sources for
//! parallelism" advice of chapter 5. `index: false` measures without it.

// The kit's re-exports: the same crates, versions and features the kit compiles with.
use bde_kit::{chrono, mysql, polars};

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use mysql::prelude::Queryable;

use bde_kit::batch::{layout, worker_conn, TableRef};
use bde_kit::config::Settings;
use bde_kit::course::setup::{ddl, TableKind};
use bde_kit::course::stock_data::aggregate;
use bde_kit::course::stock_data::generator::{self, Item};
use bde_kit::course::stock_data::upload::{upload, UploadSpec};
use bde_kit::error::{Error, Result};
use bde_kit::io::mariadb::{map_err, quote_ident};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub warehouses: usize,
    pub days: usize,
    pub items: usize,
    /// Parallel reads per warehouse upload (Spark's numPartitions).
    pub partitions: usize,
    /// Parallel connections for the generator.
    pub connections: usize,
    /// IDs per read query.
    pub chunk_ids: i64,
    pub seed: u64,
    /// Add the `(WAREHOUSE_ID, STOCK_DATE)` index to the source table.
    pub index: bool,
    /// Keep the databases and files afterwards.
    pub keep: bool,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            warehouses: 3,
            days: 30,
            items: 10,
            partitions: 2,
            connections: 4,
            chunk_ids: 50_000,
            seed: 42,
            index: true,
            keep: false,
        }
    }
}

/// Timings and sizes of one run.
#[derive(Debug, Clone)]
pub struct BenchResult {
    pub rows: u64,
    pub generate: Duration,
    pub upload: Duration,
    pub aggregate: Duration,
    pub write: Duration,
    pub files: usize,
    pub bytes: u64,
    pub summary_rows: usize,
}

fn rate(rows: u64, d: Duration) -> String {
    let s = d.as_secs_f64().max(1e-9);
    format!("{:>10.0} rows/s", rows as f64 / s)
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "rows       {:>12}", self.rows)?;
        writeln!(
            f,
            "generate   {:>10.2} s  {}",
            self.generate.as_secs_f64(),
            rate(self.rows, self.generate)
        )?;
        writeln!(
            f,
            "upload     {:>10.2} s  {}  ({} files, {:.1} MiB)",
            self.upload.as_secs_f64(),
            rate(self.rows, self.upload),
            self.files,
            self.bytes as f64 / 1048576.0
        )?;
        writeln!(
            f,
            "aggregate  {:>10.2} s  {}  ({} summary rows)",
            self.aggregate.as_secs_f64(),
            rate(self.rows, self.aggregate),
            self.summary_rows
        )?;
        writeln!(f, "write      {:>10.2} s", self.write.as_secs_f64())
    }
}

/// `n` items: the course's ten first, then numbered copies with a cent more per round.
pub fn bench_items(n: usize) -> Vec<Item> {
    let base = bde_kit::course::stock::ITEMS;
    (0..n)
        .map(|i| {
            let (name, cents) = base[i % base.len()];
            let round = (i / base.len()) as i64;
            if round == 0 {
                Item::new(name, cents)
            } else {
                Item::new(format!("{name} #{round}"), cents + round)
            }
        })
        .collect()
}

/// Runs the benchmark; prints a line per phase while it runs.
pub fn run(settings: &Settings, cfg: &BenchConfig) -> Result<BenchResult> {
    if cfg.warehouses == 0 || cfg.days == 0 || cfg.items == 0 {
        return Err(Error::invalid(
            "warehouses, days and items must be at least 1",
        ));
    }
    let tag = format!("bde_test_bench_{}", std::process::id());
    let wdb = format!("{tag}_w");
    let gdb = format!("{tag}_g");
    let local = TableRef::new(&wdb, "item_stock")?;
    let global = TableRef::new(&gdb, "item_stock")?;
    let data_dir = std::env::temp_dir().join(&tag).join("raw_data");
    let url = &settings.mariadb;
    {
        let mut c = worker_conn(url)?;
        for (db, kind) in [
            (&wdb, TableKind::WarehouseStock),
            (&gdb, TableKind::GlobalStock),
        ] {
            let q = quote_ident(db)?;
            c.query_drop(format!("DROP DATABASE IF EXISTS {q}"))
                .map_err(|e| map_err(url, "drop database", e))?;
            c.query_drop(format!("CREATE DATABASE {q}")).map_err(|e| {
                map_err(
                    url,
                    &format!(
                        "create database {db} (the course user may create bde_test% databases)"
                    ),
                    e,
                )
            })?;
            c.query_drop(ddl(kind, db)?)
                .map_err(|e| map_err(url, "create table", e))?;
        }
        if cfg.index {
            c.query_drop(format!(
                "CREATE INDEX WAREHOUSE_DATE ON {} (WAREHOUSE_ID, STOCK_DATE)",
                local.sql()?
            ))
            .map_err(|e| map_err(url, "create index", e))?;
        }
    }
    let result = run_in(settings, cfg, &local, &global, &data_dir);
    if !cfg.keep {
        if let Ok(mut c) = worker_conn(url) {
            for db in [&wdb, &gdb] {
                let _ = c.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"));
            }
        }
        if let Some(p) = data_dir.parent() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
    result
}

fn run_in(
    settings: &Settings,
    cfg: &BenchConfig,
    local: &TableRef,
    global: &TableRef,
    data_dir: &std::path::Path,
) -> Result<BenchResult> {
    let end = NaiveDate::from_ymd_opt(2025, 12, 31).ok_or_else(|| Error::invalid("date"))?;
    let start = end - chrono::Duration::days(cfg.days as i64 - 1);
    let dates: Vec<NaiveDate> = start.iter_days().take(cfg.days).collect();
    let warehouses: Vec<String> = (0..cfg.warehouses).map(|i| format!("WH{i:04}")).collect();
    let items = bench_items(cfg.items);
    let total = (cfg.warehouses * cfg.days * cfg.items) as u64;
    println!(
        "bde-bench batch: {} warehouses × {} days × {} items = {total} rows; {} generator connections, {} read partitions, chunks of {} IDs",
        cfg.warehouses, cfg.days, cfg.items, cfg.connections, cfg.partitions, cfg.chunk_ids
    );

    let t = Instant::now();
    let rows = generator::generate_parallel(
        settings,
        local,
        &warehouses,
        &dates,
        &items,
        cfg.seed,
        cfg.connections,
    )?;
    let generate = t.elapsed();
    println!(
        "generated  {rows} rows in {:.2} s ({})",
        generate.as_secs_f64(),
        rate(rows, generate).trim()
    );

    let t = Instant::now();
    let mut uploaded = 0u64;
    for w in &warehouses {
        let mut spec = UploadSpec::new(local.clone(), w, start, end);
        spec.partitions = cfg.partitions;
        spec.chunk_ids = cfg.chunk_ids;
        spec.preview_rows = 0;
        uploaded += upload(settings, data_dir, &spec)?.rows;
    }
    let upload_time = t.elapsed();
    if uploaded != rows {
        return Err(Error::Task(format!("uploaded {uploaded} rows of {rows}")));
    }
    let files = layout::list_files(data_dir)?;
    let bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(data_dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "uploaded   {uploaded} rows in {:.2} s ({}), {} files",
        upload_time.as_secs_f64(),
        rate(uploaded, upload_time).trim(),
        files.len()
    );

    let t = Instant::now();
    let summary = aggregate::summarize(data_dir, start, end)?;
    let agg = t.elapsed();
    let recs: i64 = summary
        .column("TOTAL_REC")?
        .cast(&polars::prelude::DataType::Int64)?
        .i64()?
        .into_iter()
        .flatten()
        .sum();
    if recs as u64 != rows {
        return Err(Error::Task(format!(
            "the summary counts {recs} rows of {rows}"
        )));
    }
    println!(
        "aggregated {rows} rows into {} in {:.2} s ({})",
        summary.height(),
        agg.as_secs_f64(),
        rate(rows, agg).trim()
    );
    let t = Instant::now();
    aggregate::write_global(settings, global, &summary)?;
    let write = t.elapsed();
    println!(
        "wrote      {} summary rows in {:.2} s",
        summary.height(),
        write.as_secs_f64()
    );
    Ok(BenchResult {
        rows,
        generate,
        upload: upload_time,
        aggregate: agg,
        write,
        files: files.len(),
        bytes,
        summary_rows: summary.height(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_items_repeat_the_course_items() {
        let it = bench_items(12);
        assert_eq!(it[10].name, "Tape Dispenser #1");
        assert_eq!(it[10].unit_value_cents, 600);
    }
}
