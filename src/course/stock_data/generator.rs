//! The stock generator: random daily stock per warehouse, date and item (SPEC §4.1), written
//! to a warehouse table with batched multi-row parameterized INSERTs.
//!
//! Ranges are the course's: opening stock 1..=100, receipts 1..=50, issues
//! 1..=(opening + receipts), so closing stock is never negative. The RNG is a seeded
//! [`StdRng`], so the same seed gives the same rows. Amounts are integer cents end to end.

use chrono::NaiveDate;
use mysql::prelude::Queryable;
use mysql::Value;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::batch::{cents_to_string, worker_conn, TableRef};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::io::mariadb::map_err;

/// One row of `warehouse_stock.item_stock` (without the generated ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockRow {
    pub stock_date: NaiveDate,
    pub warehouse_id: String,
    pub item_name: String,
    pub opening_stock: i32,
    pub receipts: i32,
    pub issues: i32,
    /// UNIT_VALUE in cents (DECIMAL(10,2) in the table).
    pub unit_value_cents: i64,
}

/// An item of the catalogue: name and unit value in cents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub unit_value_cents: i64,
}

impl Item {
    pub fn new(name: impl Into<String>, unit_value_cents: i64) -> Item {
        Item {
            name: name.into(),
            unit_value_cents,
        }
    }
}

/// Rows per INSERT statement (7 parameters each, far below the 65,535 placeholder limit).
pub const INSERT_BATCH: usize = 1000;

/// One random row with the course's ranges.
pub fn random_row(rng: &mut StdRng, date: NaiveDate, warehouse: &str, item: &Item) -> StockRow {
    let opening_stock = rng.random_range(1..=100);
    let receipts = rng.random_range(1..=50);
    let issues = rng.random_range(1..=(opening_stock + receipts));
    StockRow {
        stock_date: date,
        warehouse_id: warehouse.to_string(),
        item_name: item.name.clone(),
        opening_stock,
        receipts,
        issues,
        unit_value_cents: item.unit_value_cents,
    }
}

/// The rows of one warehouse and date, items in catalogue order.
pub fn rows_for_day(
    rng: &mut StdRng,
    date: NaiveDate,
    warehouse: &str,
    items: &[Item],
) -> Vec<StockRow> {
    items
        .iter()
        .map(|it| random_row(rng, date, warehouse, it))
        .collect()
}

/// A seeded RNG (the course used Python's unseeded `random`; a seed makes runs repeatable).
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn insert_sql(table: &TableRef, rows: usize) -> Result<String> {
    let one = "(?, ?, ?, ?, ?, ?, ?)";
    Ok(format!(
        "INSERT INTO {} (STOCK_DATE, WAREHOUSE_ID, ITEM_NAME, OPENING_STOCK, RECEIPTS, ISSUES, UNIT_VALUE) VALUES {}",
        table.sql()?,
        vec![one; rows].join(", ")
    ))
}

fn params(rows: &[StockRow]) -> Vec<Value> {
    let mut p = Vec::with_capacity(rows.len() * 7);
    for r in rows {
        p.push(Value::from(r.stock_date.format("%Y-%m-%d").to_string()));
        p.push(Value::from(r.warehouse_id.as_str()));
        p.push(Value::from(r.item_name.as_str()));
        p.push(Value::from(r.opening_stock));
        p.push(Value::from(r.receipts));
        p.push(Value::from(r.issues));
        p.push(Value::from(cents_to_string(r.unit_value_cents as i128)));
    }
    p
}

/// Inserts rows in order (so IDs follow the order given) with multi-row INSERTs of at most
/// [`INSERT_BATCH`] rows, all in one transaction. Returns the number of rows inserted.
pub fn insert_rows(
    conn: &mut impl Queryable,
    url: &str,
    table: &TableRef,
    rows: &[StockRow],
) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let action = format!("insert stock rows into {table}");
    conn.query_drop("START TRANSACTION")
        .map_err(|e| map_err(url, &action, e))?;
    let mut n = 0u64;
    for chunk in rows.chunks(INSERT_BATCH) {
        let sql = insert_sql(table, chunk.len())?;
        if let Err(e) = conn.exec_drop(sql, params(chunk)) {
            let _ = conn.query_drop("ROLLBACK");
            return Err(map_err(url, &action, e));
        }
        n += chunk.len() as u64;
    }
    conn.query_drop("COMMIT")
        .map_err(|e| map_err(url, &action, e))?;
    Ok(n)
}

/// Rows per warehouse, `(WAREHOUSE_ID, count)` sorted by warehouse (the course's GROUP BY).
pub fn counts_by_warehouse(settings: &Settings, table: &TableRef) -> Result<Vec<(String, i64)>> {
    let mut c = worker_conn(&settings.mariadb)?;
    let sql = format!(
        "SELECT WAREHOUSE_ID, COUNT(*) FROM {} GROUP BY WAREHOUSE_ID ORDER BY WAREHOUSE_ID",
        table.sql()?
    );
    c.query(sql)
        .map_err(|e| map_err(&settings.mariadb, &format!("count rows of {table}"), e))
}

/// Deletes every row and restarts IDs at 1 (`TRUNCATE`), so the course's ID ranges and
/// part-file layout appear again. Returns the number of rows there were.
pub fn reset_table(settings: &Settings, table: &TableRef) -> Result<i64> {
    let mut c = worker_conn(&settings.mariadb)?;
    let count: Option<i64> = c
        .query_first(format!("SELECT COUNT(*) FROM {}", table.sql()?))
        .map_err(|e| map_err(&settings.mariadb, &format!("count rows of {table}"), e))?;
    c.query_drop(format!("TRUNCATE TABLE {}", table.sql()?))
        .map_err(|e| map_err(&settings.mariadb, &format!("truncate {table}"), e))?;
    Ok(count.unwrap_or(0))
}

/// Generates `warehouses × dates × items` rows with `connections` parallel connections and
/// multi-row INSERTs (for large tables). Warehouses are dealt out to the workers; warehouse
/// number `i` uses the RNG seeded with `seed + i`, so the data does not depend on the number of
/// workers (only the ID order does). Returns the number of rows inserted.
pub fn generate_parallel(
    settings: &Settings,
    table: &TableRef,
    warehouses: &[String],
    dates: &[NaiveDate],
    items: &[Item],
    seed: u64,
    connections: usize,
) -> Result<u64> {
    if connections == 0 {
        return Err(Error::invalid("at least one connection is needed"));
    }
    table.sql()?;
    let workers = connections.min(warehouses.len().max(1));
    let results: Vec<Result<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let url = settings.mariadb.clone();
                scope.spawn(move || -> Result<u64> {
                    let mut conn = worker_conn(&url)?;
                    let mut n = 0u64;
                    let mut buf: Vec<StockRow> = Vec::with_capacity(INSERT_BATCH * 2);
                    for (i, wh) in warehouses
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % workers == w)
                    {
                        let mut r = rng(seed.wrapping_add(i as u64));
                        for d in dates {
                            for it in items {
                                buf.push(random_row(&mut r, *d, wh, it));
                                if buf.len() >= INSERT_BATCH * 5 {
                                    n += insert_rows(&mut conn, &url, table, &buf)?;
                                    buf.clear();
                                }
                            }
                        }
                    }
                    n += insert_rows(&mut conn, &url, table, &buf)?;
                    Ok(n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Task("a generator thread panicked".into())))
            })
            .collect()
    });
    let mut total = 0;
    for r in results {
        total += r?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_hold_and_seed_repeats() {
        let items = vec![Item::new("Folder", 100), Item::new("Pencil Box", 299)];
        let d = NaiveDate::from_ymd_opt(2025, 4, 1).expect("date");
        let mut a = rng(7);
        let mut b = rng(7);
        for _ in 0..500 {
            let x = rows_for_day(&mut a, d, "London", &items);
            assert_eq!(x, rows_for_day(&mut b, d, "London", &items));
            for r in &x {
                assert!((1..=100).contains(&r.opening_stock));
                assert!((1..=50).contains(&r.receipts));
                assert!(r.issues >= 1 && r.issues <= r.opening_stock + r.receipts);
            }
        }
    }

    #[test]
    fn insert_statement_has_one_group_per_row() {
        let t = TableRef::new("db", "t").expect("t");
        let s = insert_sql(&t, 3).expect("sql");
        assert_eq!(s.matches("(?, ?, ?, ?, ?, ?, ?)").count(), 3);
        assert!(s.starts_with("INSERT INTO `db`.`t` (STOCK_DATE"));
    }
}
