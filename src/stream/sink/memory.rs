//! [`MemorySink`]: the rows of a branch kept in memory, read back as a DataFrame (Spark's
//! `writeStream.format("memory").queryName(name)`), so a learner peeks at any branch without a
//! server.
//!
//! The table holds the last [`MemorySink::limit`] rows written (default
//! [`DEFAULT_LIMIT`]); older rows are dropped, so a long-running query keeps a bounded memory.
//! A batch id seen before is skipped (a retry or a replay within the process). The table lives as
//! long as the process and is emptied when a query using it starts: like Spark's memory sink it
//! is for looking, not for keeping.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use polars::prelude::{Column, DataFrame};
use serde::Serialize;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::stream::sink::{BatchInfo, Sink};

/// Rows a memory table keeps by default.
pub const DEFAULT_LIMIT: usize = 10_000;

#[derive(Default)]
struct Table {
    rows: VecDeque<serde_json::Value>,
    limit: usize,
    last_batch: Option<u64>,
}

type Shared = Arc<Mutex<Table>>;

fn tables() -> MutexGuard<'static, HashMap<String, Shared>> {
    static TABLES: OnceLock<Mutex<HashMap<String, Shared>>> = OnceLock::new();
    TABLES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn lock(t: &Shared) -> MutexGuard<'_, Table> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps the last rows of a branch in a named in-memory table.
pub struct MemorySink<T> {
    name: String,
    limit: usize,
    table: Option<Shared>,
    _rows: std::marker::PhantomData<fn(&T)>,
}

impl<T> MemorySink<T> {
    /// A memory table called `name` (read it with `StreamingQuery::output(name)` or [`output`]).
    pub fn new(name: &str) -> MemorySink<T> {
        MemorySink {
            name: name.to_string(),
            limit: DEFAULT_LIMIT,
            table: None,
            _rows: std::marker::PhantomData,
        }
    }

    /// Keep at most the last `rows` rows (at least one).
    pub fn limit(mut self, rows: usize) -> MemorySink<T> {
        self.limit = rows.max(1);
        self
    }
}

impl<T: Serialize + Send> Sink<T> for MemorySink<T> {
    fn name(&self) -> String {
        format!("memory:{}", self.name)
    }

    fn open(&mut self, _query: &str, _settings: &Settings) -> Result<()> {
        let table = Arc::new(Mutex::new(Table {
            limit: self.limit,
            ..Table::default()
        }));
        tables().insert(self.name.clone(), table.clone());
        self.table = Some(table);
        Ok(())
    }

    fn check(&self, _batch: &BatchInfo, rows: &[T]) -> Vec<(usize, String)> {
        rows.iter()
            .enumerate()
            .filter_map(|(i, r)| {
                serde_json::to_value(r)
                    .err()
                    .map(|e| (i, format!("memory:{}: not serializable: {e}", self.name)))
            })
            .collect()
    }

    fn apply(&mut self, batch: &BatchInfo, rows: &[T], _plan: &serde_json::Value) -> Result<u64> {
        let table = self
            .table
            .as_ref()
            .ok_or_else(|| Error::invalid("memory sink not opened"))?;
        let mut t = lock(table);
        if t.last_batch.is_some_and(|b| b >= batch.batch_id) {
            return Ok(0);
        }
        for r in rows {
            let v = serde_json::to_value(r)
                .map_err(|e| Error::invalid(format!("memory:{}: {e}", self.name)))?;
            if t.rows.len() == t.limit {
                t.rows.pop_front();
            }
            t.rows.push_back(v);
        }
        t.last_batch = Some(batch.batch_id);
        Ok(rows.len() as u64)
    }
}

/// The rows of the memory table `name` as a DataFrame: one column per field of the rows (numbers
/// as `i64` when every value is an integer, else `f64`; booleans; everything else as text).
pub fn output(name: &str) -> Result<DataFrame> {
    let table = tables().get(name).cloned().ok_or_else(|| {
        let known: Vec<String> = tables().keys().cloned().collect();
        Error::invalid(format!(
            "no memory table '{name}' (known: {}); write a branch to `MemorySink::new(\"{name}\")` and start its query",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ))
    })?;
    let rows: Vec<serde_json::Value> = lock(&table).rows.iter().cloned().collect();
    frame_of(&rows)
}

/// One column per field, in the order of the first row's fields; a row that is not an object is
/// one column `value`.
fn frame_of(rows: &[serde_json::Value]) -> Result<DataFrame> {
    let mut names: Vec<String> = Vec::new();
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    for r in rows {
        match r.as_object() {
            Some(o) => {
                for k in o.keys() {
                    if seen.insert(k.clone(), ()).is_none() {
                        names.push(k.clone());
                    }
                }
            }
            None if seen.insert("value".into(), ()).is_none() => names.push("value".into()),
            None => {}
        }
    }
    let cell = |r: &serde_json::Value, k: &str| -> serde_json::Value {
        match r.as_object() {
            Some(o) => o.get(k).cloned().unwrap_or_default(),
            None if k == "value" => r.clone(),
            None => serde_json::Value::Null,
        }
    };
    let columns: Vec<Column> = names
        .iter()
        .map(|k| {
            let vals: Vec<serde_json::Value> = rows.iter().map(|r| cell(r, k)).collect();
            let present = || vals.iter().filter(|v| !v.is_null());
            if present().all(|v| v.is_i64()) {
                Column::new(
                    k.into(),
                    vals.iter().map(|v| v.as_i64()).collect::<Vec<_>>(),
                )
            } else if present().all(|v| v.is_number()) {
                Column::new(
                    k.into(),
                    vals.iter().map(|v| v.as_f64()).collect::<Vec<_>>(),
                )
            } else if present().all(|v| v.is_boolean()) {
                Column::new(
                    k.into(),
                    vals.iter().map(|v| v.as_bool()).collect::<Vec<_>>(),
                )
            } else {
                let text = |v: &serde_json::Value| match v {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                };
                Column::new(k.into(), vals.iter().map(text).collect::<Vec<_>>())
            }
        })
        .collect();
    DataFrame::new(columns).map_err(|e| Error::invalid(format!("memory table as a frame: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_typed_columns() {
        let rows = vec![
            serde_json::json!({"k": "a", "n": 1, "x": 1.5, "b": true}),
            serde_json::json!({"k": "b", "n": 2, "x": 2, "b": false}),
        ];
        let df = frame_of(&rows).expect("frame");
        assert_eq!(df.shape(), (2, 4));
        assert_eq!(
            df.column("n").expect("n").i64().expect("i64").get(1),
            Some(2)
        );
        assert_eq!(
            df.column("x").expect("x").f64().expect("f64").get(1),
            Some(2.0)
        );
        assert_eq!(
            df.column("k").expect("k").str().expect("str").get(0),
            Some("a")
        );
    }
}
