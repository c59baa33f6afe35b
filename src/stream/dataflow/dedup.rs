//! [`Timed::drop_duplicates_within_watermark`]: the first row of each key passes, later rows of
//! the same key are dropped while the first one is within the watermark (Spark's
//! `dropDuplicatesWithinWatermark`).
//!
//! A key is remembered until the watermark passes the time of its first row plus the delay; then
//! it is forgotten and a new row of that key passes again. Rows below the watermark are late:
//! counted and dropped. The remembered keys live in the query's checkpoint, so a replayed or
//! restarted query drops exactly the rows the first run dropped.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::stream::dataflow::windowing::{Time, Timed};
use crate::stream::dataflow::{Data, Op, Refusals, Rows, Stream};
use crate::stream::row::Row;
use crate::stream::sink::BatchInfo;

type KeyFn<T> = Arc<dyn Fn(&T) -> String + Send + Sync>;

impl<T: Data, R: Row> Timed<T, R> {
    /// The rows whose `key` was not seen within the watermark (Spark's
    /// `dropDuplicatesWithinWatermark(["key"])`); the key is remembered until the watermark
    /// passes its first row's time plus the delay.
    pub fn drop_duplicates_within_watermark(
        &self,
        key: impl Fn(&T) -> String + Send + Sync + 'static,
    ) -> Stream<T, R> {
        let key: KeyFn<T> = Arc::new(key);
        let (time, delay) = (self.time.clone(), self.delay);
        self.stream.then(move || {
            Box::new(Dedup {
                key: key.clone(),
                time: time.clone(),
                delay_ms: delay.as_millis().min(i64::MAX as u128) as i64,
                state: Seen::default(),
                next: None,
            })
        })
    }
}

/// The keys remembered and the watermark.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Seen {
    /// key → time until which it is remembered (first row's time + delay).
    keys: BTreeMap<String, i64>,
    max_seen: Option<i64>,
    watermark: Option<i64>,
    late: u64,
}

struct Dedup<T> {
    key: KeyFn<T>,
    time: Time<T>,
    delay_ms: i64,
    state: Seen,
    next: Option<Seen>,
}

impl<T> Dedup<T> {
    fn time_of(&self, batch: &BatchInfo, r: &T) -> i64 {
        match &self.time {
            Time::Processing => batch.batch_time_ms,
            Time::Event(f) => f(r),
        }
    }

    /// Which rows pass (by index), skipping `refused`, and the state after the batch.
    fn pass(&self, batch: &BatchInfo, rows: &[T], refused: &HashSet<usize>) -> (Vec<usize>, Seen) {
        let mut s = self.state.clone();
        let mut keep = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            if refused.contains(&i) {
                continue;
            }
            let t = self.time_of(batch, r);
            if s.watermark.is_some_and(|w| t < w) {
                s.late = s.late.saturating_add(1);
                continue;
            }
            s.max_seen = Some(s.max_seen.map_or(t, |m| m.max(t)));
            let k = (self.key)(r);
            if s.keys.contains_key(&k) {
                continue;
            }
            s.keys.insert(k, t.saturating_add(self.delay_ms));
            keep.push(i);
        }
        if let Time::Processing = self.time {
            let t = batch.batch_time_ms;
            s.max_seen = Some(s.max_seen.map_or(t, |m| m.max(t)));
        }
        if let Some(m) = s.max_seen {
            let w = m.saturating_sub(self.delay_ms);
            s.watermark = Some(s.watermark.map_or(w, |old| old.max(w)));
        }
        if let Some(w) = s.watermark {
            s.keys.retain(|_, until| *until >= w);
        }
        (keep, s)
    }
}

impl<T: Data> Op<T, T> for Dedup<T> {
    fn check(&self, batch: &BatchInfo, rows: &[T], down: &dyn Fn(&[T]) -> Refusals) -> Refusals {
        if batch.flush {
            return Vec::new();
        }
        // A refused first row makes the next row of its key the first: check again until no
        // new refusal appears (each round refuses at least one more row, so it ends).
        let mut refused: Vec<(usize, String)> = Vec::new();
        let mut out: HashSet<usize> = HashSet::new();
        loop {
            let (keep, _) = self.pass(batch, rows, &out);
            let kept: Vec<T> = keep.iter().map(|i| rows[*i].clone()).collect();
            let new: Vec<(usize, String)> = down(&kept)
                .into_iter()
                .map(|(j, why)| (keep[j], why))
                .filter(|(i, _)| !out.contains(i))
                .collect();
            if new.is_empty() {
                refused.sort_by_key(|(i, _)| *i);
                return refused;
            }
            out.extend(new.iter().map(|(i, _)| *i));
            refused.extend(new);
        }
    }

    fn run<'a>(&mut self, batch: &BatchInfo, rows: Rows<'a, T>) -> Result<Rows<'a, T>> {
        if batch.flush {
            self.next = Some(self.state.clone());
            return Ok(rows);
        }
        let (keep, next) = self.pass(batch, &rows, &HashSet::new());
        self.next = Some(next);
        if keep.len() == rows.len() {
            return Ok(rows);
        }
        Ok(Rows::Owned(keep.iter().map(|i| rows[*i].clone()).collect()))
    }

    fn commit(&mut self) {
        if let Some(n) = self.next.take() {
            self.state = n;
        }
    }

    fn state(&self) -> Option<serde_json::Value> {
        serde_json::to_value(&self.state).ok()
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<()> {
        self.state = serde_json::from_value(state.clone()).map_err(|e| {
            Error::invalid(format!(
                "duplicate-drop state in checkpoint: {e}; use a new query name or reset its checkpoint (`stream::checkpoint::reset`)"
            ))
        })?;
        Ok(())
    }

    fn watermark(&self) -> Option<i64> {
        self.state.watermark
    }

    fn late_rows(&self) -> u64 {
        self.state.late
    }
}
