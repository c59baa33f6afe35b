//! Notebook 2, `code_03_XX_Spark_BDE_Batch_Data_Engg`: the stock aggregation use case with the
//! course's names, defaults and printed output.
//!
//! - 03.03 [`reset_local_stock`], [`generate_stock`]: 90 rows in `warehouse_stock.item_stock`;
//! - 03.04 the upload (bounds, partitioned read, Parquet write) is written in the notebook's cell;
//! - 03.05 the scan and aggregation are written in the cell; [`check_total_rec`] and
//!   [`compare_local_and_global`] are the course's checks.
//!
//! Functions with a `_with` twin take a [`StockJob`] (databases, folder, warehouses, items,
//! partitions), which the tests and the benchmark use with their own databases.

use std::fmt;
use std::path::PathBuf;

use chrono::{Local, NaiveDate};
use mysql::prelude::Queryable;
use polars::prelude::*;

use crate::batch::{worker_conn, TableRef};
use crate::config::Settings;
use crate::course::names::{GLOBAL_DB, STOCK_TABLE, WAREHOUSE_DB};
use crate::course::stock_data::generator::{self, Item};
use crate::error::{Error, Result};
use crate::io::mariadb::map_err;
use crate::show::Table;

/// The course's warehouses, in the generator's order.
pub const WAREHOUSES: [&str; 3] = ["NewYork", "LosAngeles", "London"];

/// The course's item catalogue: name and unit value in cents, in the generator's order.
pub const ITEMS: [(&str, i64); 10] = [
    ("Tape Dispenser", 599),
    ("Pencil Sharpener", 1000),
    ("Labeling Machine", 2500),
    ("Calculator", 1499),
    ("Scissors", 799),
    ("Sticky Notes", 200),
    ("Notebook", 250),
    ("Clipboard", 1200),
    ("Folder", 100),
    ("Pencil Box", 299),
];

/// The item the course's verification cell looks at.
pub const CHECK_ITEM: &str = "Pencil Box";

/// The course's catalogue as [`Item`]s.
pub fn items() -> Vec<Item> {
    ITEMS.iter().map(|(n, c)| Item::new(*n, *c)).collect()
}

/// The three calendar days ending today (local time): `(today − 2, today)`.
pub fn course_dates() -> (NaiveDate, NaiveDate) {
    let today = Local::now().date_naive();
    (today - chrono::Duration::days(2), today)
}

/// Every date from `start` to `end`, both included.
fn dates_between(start: NaiveDate, end: NaiveDate) -> Vec<NaiveDate> {
    start.iter_days().take_while(|d| *d <= end).collect()
}

/// Where the batch job reads and writes, and with what.
#[derive(Debug, Clone)]
pub struct StockJob {
    /// The warehouses' local table (`warehouse_stock.item_stock`).
    pub local: TableRef,
    /// The central table (`global_stock.item_stock`).
    pub global: TableRef,
    /// The Parquet store (`raw_data/`).
    pub data_dir: PathBuf,
    pub warehouses: Vec<String>,
    pub items: Vec<Item>,
    /// Parallel reads per upload (the course: 2).
    pub partitions: usize,
}

impl StockJob {
    /// The course's databases, the settings' data folder, 3 warehouses, 10 items, 2 partitions.
    pub fn course(settings: &Settings) -> StockJob {
        StockJob {
            local: TableRef {
                db: WAREHOUSE_DB.into(),
                table: STOCK_TABLE.into(),
            },
            global: TableRef {
                db: GLOBAL_DB.into(),
                table: STOCK_TABLE.into(),
            },
            data_dir: settings.data_dir.clone(),
            warehouses: WAREHOUSES.iter().map(|w| w.to_string()).collect(),
            items: items(),
            partitions: 2,
        }
    }

    /// The course's job against other databases and another folder (tests, benchmarks).
    pub fn in_databases(
        warehouse_db: &str,
        global_db: &str,
        data_dir: impl Into<PathBuf>,
    ) -> Result<StockJob> {
        Ok(StockJob {
            local: TableRef::new(warehouse_db, STOCK_TABLE)?,
            global: TableRef::new(global_db, STOCK_TABLE)?,
            data_dir: data_dir.into(),
            warehouses: WAREHOUSES.iter().map(|w| w.to_string()).collect(),
            items: items(),
            partitions: 2,
        })
    }
}

// ---------------------------------------------------------------- 03.03 local database

/// Empties the local table and restarts IDs at 1 (the course's "delete all rows" cell; TRUNCATE
/// also resets AUTO_INCREMENT, so the course's ID ranges 1–30, 31–60, 61–90 come back).
pub fn reset_local_stock(settings: &Settings) -> Result<i64> {
    let job = StockJob::course(settings);
    let n = generator::reset_table(settings, &job.local)?;
    println!("Deleted {n} rows from {} (IDs restart at 1)", job.local);
    Ok(n)
}

/// Rows per warehouse, as a table.
#[derive(Debug, Clone)]
pub struct StockCounts {
    pub counts: Vec<(String, i64)>,
    pub inserted: u64,
}

impl StockCounts {
    pub fn total(&self) -> i64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }

    pub fn table(&self) -> Table {
        Table::from_rows(
            &["WAREHOUSE_ID", "count"],
            self.counts
                .iter()
                .map(|(w, n)| vec![w.clone(), n.to_string()])
                .collect(),
        )
    }

    pub fn evcxr_display(&self) {
        self.table().evcxr_display()
    }
}

impl fmt::Display for StockCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.table())
    }
}

/// The course's data generator: for each warehouse, each of the three days ending today and each
/// item, random stock (SPEC §4.1), inserted in that order (90 rows). Prints the course's lines
/// and `Records created:` with the count per warehouse, then `<n> rows in <table>`.
pub fn generate_stock(settings: &Settings, seed: u64) -> Result<StockCounts> {
    let (start, end) = course_dates();
    generate_stock_with(settings, &StockJob::course(settings), start, end, seed)
}

/// [`generate_stock`] for a given job and dates.
pub fn generate_stock_with(
    settings: &Settings,
    job: &StockJob,
    start: NaiveDate,
    end: NaiveDate,
    seed: u64,
) -> Result<StockCounts> {
    let dates = dates_between(start, end);
    if dates.is_empty() {
        return Err(Error::invalid(format!("no dates from {start} to {end}")));
    }
    let mut rng = generator::rng(seed);
    let mut rows = Vec::new();
    for w in &job.warehouses {
        println!("Generating sample data for warehouse :  {w}");
        for d in &dates {
            println!("Generating data for date :  {}", d.format("%Y-%m-%d"));
            rows.extend(generator::rows_for_day(&mut rng, *d, w, &job.items));
        }
    }
    let mut conn = worker_conn(&settings.mariadb)?;
    let inserted = generator::insert_rows(&mut conn, &settings.mariadb, &job.local, &rows)?;
    let counts = generator::counts_by_warehouse(settings, &job.local)?;
    println!("\nRecords created:\n-----------------------------------");
    for (w, n) in &counts {
        println!("{w} {n}");
    }
    let c = StockCounts { counts, inserted };
    println!(
        "{inserted} rows inserted; {} now holds {} rows",
        job.local,
        c.total()
    );
    Ok(c)
}

// ---------------------------------------------------------------- 03.05 checks

/// Prints the TOTAL_REC check of a summary (`TOTAL_REC = 3 for all 30 rows` when every
/// warehouse has every item on every date).
pub fn check_total_rec(summary: &DataFrame) -> Result<(i64, i64)> {
    let recs: Vec<i64> = summary
        .column("TOTAL_REC")?
        .cast(&DataType::Int64)?
        .i64()?
        .into_iter()
        .flatten()
        .collect();
    let (lo, hi) = (
        recs.iter().min().copied().unwrap_or(0),
        recs.iter().max().copied().unwrap_or(0),
    );
    if lo == hi {
        println!("TOTAL_REC = {lo} for all {} rows", summary.height());
    } else {
        println!("TOTAL_REC from {lo} to {hi} (a warehouse is missing for some dates or items)");
    }
    Ok((lo, hi))
}

/// Local figures of one item and date per warehouse, against the global row.
#[derive(Debug, Clone)]
pub struct Verification {
    pub item: String,
    pub date: NaiveDate,
    /// (warehouse, opening, receipts, issues)
    pub local: Vec<(String, i64, i64, i64)>,
    /// (opening, receipts, issues) of the global row.
    pub global: (i64, i64, i64),
}

impl Verification {
    /// Column sums of the local rows.
    pub fn local_sums(&self) -> (i64, i64, i64) {
        self.local
            .iter()
            .fold((0, 0, 0), |a, r| (a.0 + r.1, a.1 + r.2, a.2 + r.3))
    }

    pub fn equal(&self) -> bool {
        self.local_sums() == self.global
    }

    pub fn table(&self) -> Table {
        let mut rows: Vec<Vec<String>> = self
            .local
            .iter()
            .map(|(w, o, r, i)| {
                vec![
                    format!("local {w}"),
                    o.to_string(),
                    r.to_string(),
                    i.to_string(),
                ]
            })
            .collect();
        let s = self.local_sums();
        rows.push(vec![
            "local sum".into(),
            s.0.to_string(),
            s.1.to_string(),
            s.2.to_string(),
        ]);
        rows.push(vec![
            "global".into(),
            self.global.0.to_string(),
            self.global.1.to_string(),
            self.global.2.to_string(),
        ]);
        Table::from_rows(&["source", "OPENING_STOCK", "RECEIPTS", "ISSUES"], rows)
            .title(format!("{} on {}", self.item, self.date))
    }

    pub fn evcxr_display(&self) {
        self.table().evcxr_display()
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.table())
    }
}

/// The course's verification from the two queries' rows: `local` with WAREHOUSE_ID,
/// OPENING_STOCK, RECEIPTS, ISSUES per warehouse, `global` with the one global row's
/// OPENING_STOCK, RECEIPTS, ISSUES. Prints the course's lines and
/// `Local sums <o> <r> <i> = global <o> <r> <i>: equal`; an error when they differ.
pub fn compare_local_and_global(
    item: &str,
    date: NaiveDate,
    local: &DataFrame,
    global: &DataFrame,
) -> Result<Verification> {
    let ints = |df: &DataFrame, c: &str| -> Result<Vec<i64>> {
        Ok(df
            .column(c)?
            .cast(&DataType::Int64)?
            .i64()?
            .into_iter()
            .map(|v| v.unwrap_or(0))
            .collect())
    };
    let warehouses: Vec<String> = local
        .column("WAREHOUSE_ID")?
        .str()?
        .into_iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect();
    let (o, r, i) = (
        ints(local, "OPENING_STOCK")?,
        ints(local, "RECEIPTS")?,
        ints(local, "ISSUES")?,
    );
    let local_rows: Vec<(String, i64, i64, i64)> = (0..warehouses.len())
        .map(|k| (warehouses[k].clone(), o[k], r[k], i[k]))
        .collect();
    let (go, gr, gi) = (
        ints(global, "OPENING_STOCK")?,
        ints(global, "RECEIPTS")?,
        ints(global, "ISSUES")?,
    );
    println!("Data in local databases :\n-----------------------------------");
    for (w, o, r, i) in &local_rows {
        println!("{w} {o} {r} {i}");
    }
    println!("\nData in global database :\n-----------------------------------");
    for k in 0..go.len() {
        println!("{} {} {}", go[k], gr[k], gi[k]);
    }
    let g = match go.len() {
        1 => (go[0], gr[0], gi[0]),
        0 => {
            return Err(Error::invalid(format!(
                "no global row for {item} on {date}: run the aggregation first"
            )))
        }
        n => {
            return Err(Error::invalid(format!(
                "{n} global rows for {item} on {date}: expected one"
            )))
        }
    };
    let v = Verification {
        item: item.into(),
        date,
        local: local_rows,
        global: g,
    };
    let s = v.local_sums();
    if v.equal() {
        println!(
            "\nLocal sums {} {} {} = global {} {} {}: equal",
            s.0, s.1, s.2, g.0, g.1, g.2
        );
        Ok(v)
    } else {
        Err(Error::invalid(format!(
            "local sums {s:?} differ from the global row {g:?} for {item} on {date}"
        )))
    }
}

/// The course's verification cell for a given job: prints `Data in local databases :` with
/// `<W> <opening> <receipts> <issues>` per warehouse, `Data in global database :` with the
/// global row, then `Local sums <o> <r> <i> = global <o> <r> <i>: equal`. An error when they differ.
pub fn verify_global_with(
    settings: &Settings,
    job: &StockJob,
    item: &str,
    date: NaiveDate,
) -> Result<Verification> {
    let d = date.format("%Y-%m-%d").to_string();
    let url = &settings.mariadb;
    let mut c = worker_conn(url)?;
    let local: Vec<(String, i64, i64, i64)> = c
        .exec(
            format!(
                "SELECT WAREHOUSE_ID, OPENING_STOCK, RECEIPTS, ISSUES FROM {} \
                 WHERE ITEM_NAME = ? AND STOCK_DATE >= ? AND STOCK_DATE < ? + INTERVAL 1 DAY ORDER BY ID",
                job.local.sql()?
            ),
            (item, d.as_str(), d.as_str()),
        )
        .map_err(|e| map_err(url, &format!("read {item} from {}", job.local), e))?;
    let global: Vec<(i64, i64, i64)> = c
        .exec(
            format!(
                "SELECT OPENING_STOCK, RECEIPTS, ISSUES FROM {} WHERE ITEM_NAME = ? AND STOCK_DATE >= ? AND STOCK_DATE < ? + INTERVAL 1 DAY",
                job.global.sql()?
            ),
            (item, d.as_str(), d.as_str()),
        )
        .map_err(|e| map_err(url, &format!("read {item} from {}", job.global), e))?;
    println!("Data in local databases :\n-----------------------------------");
    for (w, o, r, i) in &local {
        println!("{w} {o} {r} {i}");
    }
    println!("\nData in global database :\n-----------------------------------");
    for (o, r, i) in &global {
        println!("{o} {r} {i}");
    }
    let g = match global.as_slice() {
        [one] => *one,
        [] => {
            return Err(Error::invalid(format!(
                "no global row for {item} on {d} in {}: run the aggregation first",
                job.global
            )))
        }
        more => {
            return Err(Error::invalid(format!(
                "{} global rows for {item} on {d} in {}: expected one",
                more.len(),
                job.global
            )))
        }
    };
    let v = Verification {
        item: item.into(),
        date,
        local,
        global: g,
    };
    let s = v.local_sums();
    if v.equal() {
        println!(
            "\nLocal sums {} {} {} = global {} {} {}: equal",
            s.0, s.1, s.2, g.0, g.1, g.2
        );
        Ok(v)
    } else {
        Err(Error::invalid(format!(
            "local sums {s:?} differ from the global row {g:?} for {item} on {d}"
        )))
    }
}
