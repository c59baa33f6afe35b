//! The queries started in this process, by name: `active()`, `get`, `stop`, `stop_all`. Another
//! process's queries are kept out by the checkpoint lock, not by this registry.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::stream::query::handle::StreamingQuery;

fn registry() -> &'static Mutex<HashMap<String, StreamingQuery>> {
    static R: OnceLock<Mutex<HashMap<String, StreamingQuery>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

fn all() -> Vec<StreamingQuery> {
    registry()
        .lock()
        .map(|r| r.values().cloned().collect())
        .unwrap_or_default()
}

/// The running query of this name, if any.
pub(super) fn running(name: &str) -> Option<StreamingQuery> {
    get(name).filter(|q| !q.status().is_terminated())
}

pub(super) fn insert(name: &str, q: StreamingQuery) -> Result<()> {
    registry()
        .lock()
        .map_err(|_| Error::Task("query registry poisoned".into()))?
        .insert(name.to_string(), q);
    Ok(())
}

/// Names of the queries that are running in this process.
pub fn active() -> Vec<String> {
    let mut v: Vec<String> = all()
        .into_iter()
        .filter(|q| !q.status().is_terminated())
        .map(|q| q.name().to_string())
        .collect();
    v.sort();
    v
}

/// The handle of a query started in this process, by name.
pub fn get(name: &str) -> Option<StreamingQuery> {
    registry().lock().ok().and_then(|r| r.get(name).cloned())
}

/// Stops the query named `name` (a no-op when unknown).
pub fn stop(name: &str) -> Result<()> {
    match get(name) {
        Some(q) => q.stop().map(|_| ()),
        None => Ok(()),
    }
}

/// Stops every running query; the first error is returned after all were asked to stop.
pub fn stop_all() -> Result<()> {
    let all = all();
    for q in &all {
        q.request_stop();
    }
    let mut first = None;
    for q in &all {
        if let Err(e) = q.stop() {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}
