//! Redis sorted-set sink: `ZINCRBY key by member` per row, exactly once per batch.
//!
//! A batch's increments are summed per member, then applied in one transaction guarded by a
//! marker key `<key>:applied:<query>:<sink>` holding the last applied batch id:
//! `WATCH marker; GET marker` → skip if ≥ batch id; else `MULTI; ZINCRBY…; SET marker id; EXEC`
//! (retried if another client touched the marker). The increments and the marker change together
//! or not at all, so a replayed batch changes nothing twice.

use std::collections::BTreeMap;

use redis::Connection;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::io::redis as rio;
use crate::stream::sink::{BatchInfo, Pred, Sink};

/// `ZINCRBY key by(row) member(row)` for every row.
pub struct RedisZIncr<T> {
    key: String,
    name: String,
    member: Box<dyn Fn(&T) -> String + Send + Sync>,
    by: Box<dyn Fn(&T) -> f64 + Send + Sync>,
    filter: Option<Pred<T>>,
    con: Option<Connection>,
    marker: String,
}

impl<T> RedisZIncr<T> {
    /// A sink incrementing sorted set `key`.
    pub fn new(
        key: &str,
        member: impl Fn(&T) -> String + Send + Sync + 'static,
        by: impl Fn(&T) -> f64 + Send + Sync + 'static,
    ) -> RedisZIncr<T> {
        RedisZIncr {
            key: key.into(),
            name: format!("redis:{key}"),
            member: Box::new(member),
            by: Box::new(by),
            filter: None,
            con: None,
            marker: String::new(),
        }
    }
    /// Only rows for which `pred` is true.
    pub fn filter(mut self, pred: impl Fn(&T) -> bool + Send + Sync + 'static) -> RedisZIncr<T> {
        self.filter = Some(Box::new(pred));
        self
    }
    /// The marker key holding the last applied batch id.
    pub fn marker_key(key: &str, query: &str, sink: &str) -> String {
        format!("{key}:applied:{query}:{sink}")
    }
}

impl<T: Send> Sink<T> for RedisZIncr<T> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn open(&mut self, query: &str, settings: &Settings) -> Result<()> {
        self.con = Some(rio::connect(settings)?);
        self.marker = Self::marker_key(&self.key, query, &self.name);
        Ok(())
    }

    fn apply(&mut self, batch: &BatchInfo, rows: &[T], _plan: &serde_json::Value) -> Result<u64> {
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        for r in rows {
            if self.filter.as_ref().is_none_or(|f| f(r)) {
                *sums.entry((self.member)(r)).or_default() += (self.by)(r);
            }
        }
        if sums.is_empty() {
            return Ok(0);
        }
        if self.con.is_none() {
            self.con = Some(rio::connect(&batch.settings)?);
        }
        let s = &batch.settings;
        let id = batch.batch_id as i64;
        for _attempt in 0..20 {
            let Some(con) = self.con.as_mut() else { return Err(Error::Task("redis connection missing".into())) };
            let res: Result<Option<u64>> = (|| {
                redis::cmd("WATCH").arg(&self.marker).query::<()>(con).map_err(|e| rio::map_err(s, "WATCH", e))?;
                let last: Option<i64> = redis::cmd("GET").arg(&self.marker).query(con).map_err(|e| rio::map_err(s, "GET marker", e))?;
                if last.is_some_and(|l| l >= id) {
                    redis::cmd("UNWATCH").query::<()>(con).map_err(|e| rio::map_err(s, "UNWATCH", e))?;
                    return Ok(Some(0));
                }
                let mut p = redis::pipe();
                p.atomic();
                for (m, by) in &sums {
                    p.cmd("ZINCRBY").arg(&self.key).arg(*by).arg(m).ignore();
                }
                p.cmd("SET").arg(&self.marker).arg(id).ignore();
                let r: Option<()> = p.query(con).map_err(|e| rio::map_err(s, &format!("MULTI/EXEC ZINCRBY {}", self.key), e))?;
                Ok(r.map(|_| sums.len() as u64))
            })();
            match res {
                Ok(Some(n)) => return Ok(n),
                Ok(None) => continue, // the marker changed under WATCH: read it again
                Err(e) => {
                    self.con = None; // reconnect on the next call
                    return Err(e);
                }
            }
        }
        Err(Error::service(crate::error::Service::Redis, Settings::address_of(&s.redis), "apply a batch", "the marker kept changing (another writer with the same query name?)"))
    }
}
