//! Stream-static join: each row looks up a key in a MariaDB table read into memory (Spark's
//! `stream_df.join(static_df, "key", "left")` with the static side read over JDBC).
//!
//! **Refresh rule.** The table is read when the query starts, and read again at the start of the
//! first batch whose processing time is at least [`MariaDbLookup::refresh`] (default 60 s) after
//! the last read; between reads every batch joins against the same snapshot. Only the read's
//! time is kept, not the table: a batch replayed after a crash joins against the table as read by
//! the run that replays it, which equals the original only if the table did not change in
//! between (a lookup table is reference data; change it while the query is stopped, or accept
//! that the rows of one replayed batch may see the newer values).
//!
//! Every column is read as text (`NULL` is absent from the record); the key column's text is the
//! key. A table of more than [`MariaDbLookup::max_rows`] rows (default 1 000 000) is refused: a
//! lookup table lives in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql::prelude::Queryable;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::io::mariadb as mio;
use crate::stream::dataflow::{Data, Op, Refusals, Rows, Stream};
use crate::stream::row::Row;
use crate::stream::sink::BatchInfo;

/// One row of the lookup table: column name → value as text (`NULL` columns are absent).
pub type Record = BTreeMap<String, String>;

type KeyFn<T> = Arc<dyn Fn(&T) -> String + Send + Sync>;
type JoinFn<T, U> = Arc<dyn Fn(&T, Option<&Record>) -> Option<U> + Send + Sync>;

/// A MariaDB table to look rows up in, by one key column.
#[derive(Debug, Clone)]
pub struct MariaDbLookup {
    db: String,
    table: String,
    key: String,
    refresh: Duration,
    max_rows: usize,
}

impl MariaDbLookup {
    /// The table `db.table`, looked up by the column `key`.
    pub fn new(db: &str, table: &str, key: &str) -> MariaDbLookup {
        MariaDbLookup {
            db: db.into(),
            table: table.into(),
            key: key.into(),
            refresh: Duration::from_secs(60),
            max_rows: 1_000_000,
        }
    }

    /// Read the table again when a batch starts at least `every` after the last read.
    pub fn refresh(mut self, every: Duration) -> MariaDbLookup {
        self.refresh = every;
        self
    }

    /// Refuse a table of more rows than this.
    pub fn max_rows(mut self, n: usize) -> MariaDbLookup {
        self.max_rows = n;
        self
    }

    fn read(&self, settings: &Settings) -> Result<HashMap<String, Record>> {
        let sql = format!(
            "SELECT * FROM {}.{}",
            mio::quote_ident(&self.db)?,
            mio::quote_ident(&self.table)?
        );
        let mut c = mio::conn(settings, None)?;
        let what = format!("read the lookup table {}.{}", self.db, self.table);
        let rows: Vec<mysql::Row> = c
            .query(&sql)
            .map_err(|e| mio::map_err(&settings.mariadb, &what, e))?;
        if rows.len() > self.max_rows {
            return Err(Error::invalid(format!(
                "the lookup table {}.{} has {} rows, more than {} kept in memory: raise `max_rows` or look up a smaller table",
                self.db,
                self.table,
                rows.len(),
                self.max_rows
            )));
        }
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            let cols = r.columns();
            let mut rec = Record::new();
            for (i, col) in cols.iter().enumerate() {
                let text = match r.as_ref(i) {
                    None | Some(mysql::Value::NULL) => continue,
                    Some(mysql::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
                    Some(v) => v.as_sql(true).trim_matches('\'').to_string(),
                };
                rec.insert(col.name_str().into_owned(), text);
            }
            let Some(k) = rec.get(&self.key).cloned() else {
                if cols.iter().any(|c| c.name_str() == self.key) {
                    continue; // a NULL key matches nothing
                }
                return Err(Error::invalid(format!(
                    "the lookup table {}.{} has no column {} (its columns: {})",
                    self.db,
                    self.table,
                    self.key,
                    cols.iter()
                        .map(|c| c.name_str().into_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            out.insert(k, rec);
        }
        Ok(out)
    }
}

impl<T: Data, R: Row> Stream<T, R> {
    /// Each row joined with the record of `table` whose key column equals `key(row)`:
    /// `join(row, Some(record))` on a match, `join(row, None)` otherwise; `None` from `join`
    /// drops the row (an inner join: `|v, r| r.map(|r| ...)`). See the module's refresh rule.
    pub fn lookup<U: Data>(
        &self,
        table: MariaDbLookup,
        key: impl Fn(&T) -> String + Send + Sync + 'static,
        join: impl Fn(&T, Option<&Record>) -> Option<U> + Send + Sync + 'static,
    ) -> Stream<U, R> {
        let key: KeyFn<T> = Arc::new(key);
        let join: JoinFn<T, U> = Arc::new(join);
        self.then(move || {
            Box::new(Lookup {
                table: table.clone(),
                key: key.clone(),
                join: join.clone(),
                snap: Mutex::new(Snapshot::default()),
            })
        })
    }
}

struct Lookup<T, U> {
    table: MariaDbLookup,
    key: KeyFn<T>,
    join: JoinFn<T, U>,
    /// The snapshot and the processing time it is for. Behind a lock because the check, which
    /// comes first in a batch, already joins against the batch's snapshot.
    snap: Mutex<Snapshot>,
}

#[derive(Default)]
struct Snapshot {
    rows: Arc<HashMap<String, Record>>,
    /// Processing time of the batch that asked for the last read (none before the first batch).
    read_at: Option<i64>,
}

impl<T, U> Lookup<T, U> {
    /// The snapshot for `batch`, read again first when the refresh rule says so.
    fn snapshot(&self, batch: &BatchInfo) -> Result<Arc<HashMap<String, Record>>> {
        let mut s = self.snap.lock().unwrap_or_else(|e| e.into_inner());
        let refresh = self.table.refresh.as_millis().min(i64::MAX as u128) as i64;
        match s.read_at {
            None => s.read_at = Some(batch.batch_time_ms),
            Some(at) if batch.batch_time_ms >= at.saturating_add(refresh) => {
                s.rows = Arc::new(self.table.read(&batch.settings)?);
                s.read_at = Some(batch.batch_time_ms);
            }
            Some(_) => {}
        }
        Ok(s.rows.clone())
    }

    fn joined(&self, table: &HashMap<String, Record>, rows: &[T]) -> (Vec<usize>, Vec<U>) {
        let mut origin = Vec::with_capacity(rows.len());
        let mut out = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            if let Some(u) = (self.join)(r, table.get(&(self.key)(r))) {
                origin.push(i);
                out.push(u);
            }
        }
        (origin, out)
    }
}

impl<T: Data, U: Data> Op<T, U> for Lookup<T, U> {
    fn open(&mut self, _query: &str, settings: &Settings) -> Result<()> {
        let rows = self.table.read(settings)?;
        self.snap = Mutex::new(Snapshot {
            rows: Arc::new(rows),
            read_at: None,
        });
        Ok(())
    }

    fn check(&self, batch: &BatchInfo, rows: &[T], down: &dyn Fn(&[U]) -> Refusals) -> Refusals {
        // a failed read keeps the last snapshot here; the batch's run fails on it and retries
        let table = match self.snapshot(batch) {
            Ok(t) => t,
            Err(_) => self
                .snap
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .rows
                .clone(),
        };
        let (origin, out) = self.joined(&table, rows);
        down(&out)
            .into_iter()
            .map(|(i, why)| (origin[i], why))
            .collect()
    }

    fn run<'a>(&mut self, batch: &BatchInfo, rows: Rows<'a, T>) -> Result<Rows<'a, U>> {
        let table = self.snapshot(batch)?;
        Ok(Rows::Owned(self.joined(&table, &rows).1))
    }
}
