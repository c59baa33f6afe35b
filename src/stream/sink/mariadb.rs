//! MariaDB sink: batched, parameterized inserts, exactly once per batch.
//!
//! Each batch is one transaction: lock this sink's row in `<db>.bde_sink_progress(query_name,
//! sink_name, batch_id)`, skip if its `batch_id` ≥ the batch, else insert the rows (multi-row
//! `INSERT … VALUES (?,…),(?,…)` in chunks) and record the batch id, then commit.
//!
//! [`Merge::Additive`] turns the insert into `INSERT … ON DUPLICATE KEY UPDATE c = c +
//! VALUES(c)` on a unique key, so per-window rows written by several consumers (scale-out) or by
//! a window emitted again after a flush add up. The course's `website_stats.visit_stats` has no
//! unique key: with `Merge::Additive` the sink adds `UNIQUE KEY bde_window_key(<key columns>)`
//! when it is missing (this fails if duplicate rows exist already: clear them, or use
//! [`Merge::Insert`], which keeps the course's plain inserts; exactly-once still holds through
//! the progress row and `SUM(DURATION) … GROUP BY` readers see the same totals).
//!
//! Poison rows: when it opens, the sink reads its columns' limits from
//! `information_schema.COLUMNS` (type range, length, character set, NOT NULL; see [`columns`]),
//! and [`Sink::check`] names every row with a value the table would always refuse (a `DURATION`
//! past `INT(10)`'s signed range, a 46-character `LAST_ACTION` for `VARCHAR(45)`…), so the engine
//! dead-letters it instead of failing the batch on every retry. Reading the limits from the
//! server (instead of declaring them beside the DDL) keeps them right for tables the course or a
//! user created or altered. The table must exist when the query starts.
//!
//! Rows no limit models (a CHECK constraint, a TIMESTAMP past 2038, an invalid date, an ENUM
//! value, a duplicate key under [`Merge::Insert`]) fail the batch's transaction. For those the
//! sink offers [`Sink::probe`]: it inserts rows in a transaction it always rolls back, and says
//! whether the server refused their data (SQLSTATE class 22, data exception, or 23, integrity
//! constraint, and MariaDB's data-truncated and wrong-value errors) or failed otherwise (down,
//! missing table: no row to blame). The engine bisects a refused batch with it. Only an InnoDB
//! table can be probed (a rollback must undo the inserts); another engine's batch cannot be
//! bisected.

use mysql::prelude::Queryable;
use mysql::{PooledConn, TxOpts, Value};

pub mod columns;

use columns::{ColumnLimit, ColumnRow, COLUMNS_SQL};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::io::mariadb as mio;
use crate::stream::sink::{BatchInfo, Probe, Sink};

/// How rows meet existing rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// Plain INSERT.
    Insert,
    /// Upsert on a unique key of `key` columns, adding `add` columns.
    Additive { key: Vec<String>, add: Vec<String> },
}

type ValuesFn<T> = Box<dyn Fn(&T) -> Vec<Value> + Send + Sync>;

/// Inserts rows into `db.table`.
pub struct MariaDbInsert<T> {
    db: String,
    table: String,
    columns: Vec<String>,
    values: ValuesFn<T>,
    merge: Merge,
    name: String,
    query: String,
    chunk: usize,
    /// Limits of `columns`, in their order (read by `open`).
    limits: Vec<ColumnLimit>,
    /// The table rolls inserts back (InnoDB), so [`Sink::probe`] may try rows (read by `open`).
    transactional: bool,
}

/// True when the server refuses the data of a row (not the statement, the table or the link):
/// SQLSTATE class 22 (data exception: out of range, too long, invalid date) or 23 (integrity:
/// duplicate key, CHECK, NOT NULL, foreign key), or MariaDB's data truncated (1265, an ENUM/SET
/// value), incorrect value (1366, 1367) and incorrect datetime (1292) errors.
pub fn refuses_data(e: &mysql::Error) -> bool {
    match e {
        mysql::Error::MySqlError(m) => {
            m.state.starts_with("22")
                || m.state.starts_with("23")
                || [1265, 1292, 1366, 1367].contains(&m.code)
        }
        _ => false,
    }
}

/// Rows per INSERT statement.
const CHUNK: usize = 500;

impl<T> MariaDbInsert<T> {
    /// Inserts `values(row)` into `columns` of `db.table`.
    pub fn new(
        db: &str,
        table: &str,
        columns: &[&str],
        values: impl Fn(&T) -> Vec<Value> + Send + Sync + 'static,
    ) -> MariaDbInsert<T> {
        MariaDbInsert {
            db: db.into(),
            table: table.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            values: Box::new(values),
            merge: Merge::Insert,
            name: format!("mariadb:{db}.{table}"),
            query: String::new(),
            chunk: CHUNK,
            limits: Vec::new(),
            transactional: false,
        }
    }
    /// How rows merge with existing ones.
    pub fn merge(mut self, merge: Merge) -> MariaDbInsert<T> {
        self.merge = merge;
        self
    }

    fn full_table(&self) -> Result<String> {
        Ok(format!(
            "{}.{}",
            mio::quote_ident(&self.db)?,
            mio::quote_ident(&self.table)?
        ))
    }

    /// The insert's parameters for `chunk`: the `values` closure's values, row after row,
    /// refused when the closure returns another number of values than there are columns.
    fn params_of<R: std::borrow::Borrow<T>>(&self, chunk: &[R]) -> Result<Vec<Value>> {
        let params: Vec<Value> = chunk
            .iter()
            .flat_map(|r| (self.values)(r.borrow()))
            .collect();
        if params.len() != chunk.len() * self.columns.len() {
            return Err(Error::invalid(format!(
                "the values closure of {} must return {} values per row",
                self.name,
                self.columns.len()
            )));
        }
        Ok(params)
    }

    fn insert_sql(&self, n: usize) -> Result<String> {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| mio::quote_ident(c))
            .collect::<Result<_>>()?;
        let one = format!("({})", vec!["?"; cols.len()].join(","));
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            self.full_table()?,
            cols.join(","),
            vec![one; n].join(",")
        );
        if let Merge::Additive { add, .. } = &self.merge {
            let upd: Vec<String> = add
                .iter()
                .map(|c| mio::quote_ident(c).map(|c| format!("{c} = {c} + VALUES({c})")))
                .collect::<Result<_>>()?;
            sql.push_str(&format!(" ON DUPLICATE KEY UPDATE {}", upd.join(", ")));
        }
        Ok(sql)
    }

    fn conn(&self, settings: &Settings) -> Result<PooledConn> {
        mio::conn(settings, None)
    }

    /// The limits of the sink's columns, read from `information_schema`.
    fn read_limits(&self, c: &mut PooledConn, url: &str) -> Result<Vec<ColumnLimit>> {
        let rows: Vec<ColumnRow> = c
            .exec(COLUMNS_SQL, (&self.db, &self.table))
            .map_err(|e| mio::map_err(url, "read the table's columns", e))?;
        if rows.is_empty() {
            return Err(Error::invalid(format!(
                "table {}.{} does not exist (or the MariaDB user cannot see it): create it before starting the query (the setup notebook creates the course's tables)",
                self.db, self.table
            )));
        }
        let all: Vec<ColumnLimit> = rows.into_iter().map(ColumnLimit::from_row).collect();
        self.columns
            .iter()
            .map(|c| {
                all.iter().find(|l| l.name.eq_ignore_ascii_case(c)).cloned().ok_or_else(|| {
                    let have: Vec<&str> = all.iter().map(|l| l.name.as_str()).collect();
                    Error::invalid(format!("table {}.{} has no column {c} (it has {}): fix the sink's column list or the table", self.db, self.table, have.join(", ")))
                })
            })
            .collect()
    }
}

impl<T> MariaDbInsert<T> {
    /// Inserts `rows` in a transaction that is rolled back whatever happens (see [`Sink::probe`]).
    fn try_rows(&self, batch: &BatchInfo, rows: &[T]) -> Result<Probe> {
        if rows.is_empty() {
            return Ok(Probe::Accepted);
        }
        let url = batch.settings.mariadb.clone();
        let mut c = self.conn(&batch.settings)?;
        let mut tx = c
            .start_transaction(TxOpts::default())
            .map_err(|e| mio::map_err(&url, "start a transaction", e))?;
        let mut verdict = Probe::Accepted;
        for chunk in rows.chunks(self.chunk) {
            let params = self.params_of(chunk)?;
            match tx.exec_drop(self.insert_sql(chunk.len())?, params) {
                Ok(()) => {}
                Err(e) if refuses_data(&e) => {
                    verdict = Probe::Refused(e.to_string());
                    break;
                }
                Err(e) => {
                    return Err(mio::map_err(
                        &url,
                        &format!("try rows on {}", self.table),
                        e,
                    ))
                }
            }
        }
        tx.rollback()
            .map_err(|e| mio::map_err(&url, "roll back", e))?;
        Ok(verdict)
    }
}

/// DDL of the progress table in `db`.
pub fn progress_ddl(db: &str) -> Result<String> {
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {}.bde_sink_progress (query_name VARCHAR(190) NOT NULL, sink_name VARCHAR(190) NOT NULL, \
         batch_id BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, \
         PRIMARY KEY (query_name, sink_name))",
        mio::quote_ident(db)?
    ))
}

impl<T: Send> Sink<T> for MariaDbInsert<T> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn open(&mut self, query: &str, settings: &Settings) -> Result<()> {
        self.query = query.into();
        let mut c = self.conn(settings)?;
        let url = &settings.mariadb;
        c.query_drop(progress_ddl(&self.db)?)
            .map_err(|e| mio::map_err(url, "create bde_sink_progress", e))?;
        self.limits = self.read_limits(&mut c, url)?;
        let engine: Option<String> = c
            .exec_first(
                "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&self.db, &self.table),
            )
            .map_err(|e| mio::map_err(url, "read the table's engine", e))?;
        self.transactional = engine.is_some_and(|e| e.eq_ignore_ascii_case("InnoDB"));
        if let Merge::Additive { key, .. } = &self.merge {
            let n: Option<i64> = c
                .exec_first(
                    "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 AND INDEX_NAME <> 'PRIMARY'",
                    (&self.db, &self.table),
                )
                .map_err(|e| mio::map_err(url, "look up unique keys", e))?;
            if n.unwrap_or(0) == 0 {
                let cols: Vec<String> = key
                    .iter()
                    .map(|c| mio::quote_ident(c))
                    .collect::<Result<_>>()?;
                let sql = format!(
                    "ALTER TABLE {} ADD UNIQUE KEY bde_window_key ({})",
                    self.full_table()?,
                    cols.join(",")
                );
                let added = c.query_drop(&sql);
                // Another member may have added it at the same moment (ER_DUP_KEYNAME 1061).
                let raced = matches!(&added, Err(mysql::Error::MySqlError(m)) if m.code == 1061);
                if raced {
                    return Ok(());
                }
                added.map_err(|e| {
                    Error::service(
                        crate::error::Service::MariaDb,
                        Settings::address_of(url),
                        format!("add a unique key on {} for additive merging", self.table),
                        format!("{e}; remove duplicate rows first, or use Merge::Insert"),
                    )
                })?;
            }
        }
        Ok(())
    }

    fn check(&self, _batch: &BatchInfo, rows: &[T]) -> Vec<(usize, String)> {
        if self.limits.is_empty() {
            return Vec::new();
        }
        rows.iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let values = (self.values)(r);
                if values.len() != self.limits.len() {
                    return None; // a wrong values closure is the program's error: apply reports it
                }
                let why = values
                    .iter()
                    .zip(&self.limits)
                    .find_map(|(v, l)| l.refuses(v))?;
                Some((i, format!("{} would refuse the row: {why}", self.name)))
            })
            .collect()
    }

    fn probe(&mut self, batch: &BatchInfo, rows: &[T]) -> Option<Result<Probe>> {
        if !self.transactional {
            return None;
        }
        Some(self.try_rows(batch, rows))
    }

    fn apply(&mut self, batch: &BatchInfo, rows: &[T], _plan: &serde_json::Value) -> Result<u64> {
        let selected: Vec<&T> = rows.iter().collect();
        if selected.is_empty() {
            return Ok(0);
        }
        let url = batch.settings.mariadb.clone();
        let mut c = self.conn(&batch.settings)?;
        let mut tx = c
            .start_transaction(TxOpts::default())
            .map_err(|e| mio::map_err(&url, "start a transaction", e))?;
        let progress = format!("{}.bde_sink_progress", mio::quote_ident(&self.db)?);
        let last: Option<i64> = tx
            .exec_first(format!("SELECT batch_id FROM {progress} WHERE query_name = ? AND sink_name = ? FOR UPDATE"), (&self.query, &self.name))
            .map_err(|e| mio::map_err(&url, "read the sink progress", e))?;
        if last.is_some_and(|l| l >= batch.batch_id as i64) {
            tx.rollback()
                .map_err(|e| mio::map_err(&url, "roll back", e))?;
            return Ok(0);
        }
        for chunk in selected.chunks(self.chunk) {
            let sql = self.insert_sql(chunk.len())?;
            let params = self.params_of(chunk)?;
            tx.exec_drop(&sql, params)
                .map_err(|e| mio::map_err(&url, &format!("insert into {}", self.table), e))?;
        }
        tx.exec_drop(
            format!("INSERT INTO {progress} (query_name, sink_name, batch_id) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE batch_id = VALUES(batch_id)"),
            (&self.query, &self.name, batch.batch_id as i64),
        )
        .map_err(|e| mio::map_err(&url, "record the sink progress", e))?;
        tx.commit().map_err(|e| mio::map_err(&url, "commit", e))?;
        Ok(selected.len() as u64)
    }
}
