//! A windowed sum in front of a sink of [`WindowRow`]s (the course's 5-second summaries).
//!
//! Rows are keyed and summed per tumbling window ([`crate::stream::window`]); the rows a batch
//! emits go to the inner sink under the same batch id. The window state lives in the query's
//! checkpoint, committed only after every sink applied the batch. A batch is computed on a copy
//! of the state, so a retried or replayed batch emits the same windows.
//!
//! [`Sink::check`] refuses, as dead letters, the rows that would always fail or harm the query:
//! - an event time more than [`Windowed::max_future`] ahead of the batch's processing time
//!   (default [`DEFAULT_MAX_FUTURE`], one day: wider than any time-zone offset between naive local
//!   event times and the engine's clock, far below a typo's year 2092). Such a row would move the
//!   watermark past every later record, which would all be dropped as late;
//! - a value that would push its window's sum out of `i64`, or out of what the inner sink accepts
//!   (the inner sink's own `check` on the window row the cell could become, e.g. `DURATION INT(10)`
//!   or a `LAST_ACTION` longer than `VARCHAR(45)` for [`MariaDbInsert`](super::MariaDbInsert)).
//!   The bound holds for whichever subset of the batch the engine applies: each cell's lowest and
//!   highest reachable total (the batch's negative and positive values counted apart) is checked.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::stream::clock::fmt_ms;
use crate::stream::sink::{BatchInfo, Sink};
use crate::stream::window::{Mode, WindowRow, WindowState};

type KeyFn<T> = Box<dyn Fn(&T) -> String + Send + Sync>;

/// How far ahead of the batch's processing time an event time may be by default (one day).
pub const DEFAULT_MAX_FUTURE: Duration = Duration::from_secs(24 * 3600);
type IntFn<T> = Box<dyn Fn(&T) -> i64 + Send + Sync>;
/// A window cell: (window start in ms, key).
type Cell = (i64, String);

/// Tumbling-window sum per key, feeding an inner sink.
pub struct Windowed<T> {
    size: Duration,
    delay: Duration,
    mode: Mode,
    event_time: Option<IntFn<T>>,
    key: Option<KeyFn<T>>,
    value: Option<IntFn<T>>,
    inner: Option<Box<dyn Sink<WindowRow>>>,
    state: Option<WindowState>,
    last_emitted: u64,
    max_future: Duration,
}

impl<T> Windowed<T> {
    /// Tumbling windows of `size`, on processing time, append mode, no watermark delay yet.
    pub fn tumbling(size: Duration) -> Windowed<T> {
        Windowed {
            size,
            delay: Duration::ZERO,
            mode: Mode::Append,
            event_time: None,
            key: None,
            value: None,
            inner: None,
            state: None,
            last_emitted: 0,
            max_future: DEFAULT_MAX_FUTURE,
        }
    }
    /// Watermark delay (how long a window waits for late data).
    pub fn watermark(mut self, delay: Duration) -> Windowed<T> {
        self.delay = delay;
        self
    }
    /// Windows on processing time (the batch time; the course's choice). The default.
    pub fn processing_time(mut self) -> Windowed<T> {
        self.event_time = None;
        self
    }
    /// Windows on an event-time column (engine milliseconds, e.g. `Visit::event_ms` of `course::visit`).
    pub fn event_time(
        mut self,
        time_ms: impl Fn(&T) -> i64 + Send + Sync + 'static,
    ) -> Windowed<T> {
        self.event_time = Some(Box::new(time_ms));
        self
    }
    /// Event times more than `ahead` after the batch's processing time are dead letters (default
    /// [`DEFAULT_MAX_FUTURE`]); `Duration::MAX` accepts any time. Only used with event time.
    pub fn max_future(mut self, ahead: Duration) -> Windowed<T> {
        self.max_future = ahead;
        self
    }
    /// Append (default) or update mode.
    pub fn mode(mut self, mode: Mode) -> Windowed<T> {
        self.mode = mode;
        self
    }
    /// Grouping key.
    pub fn key(mut self, key: impl Fn(&T) -> String + Send + Sync + 'static) -> Windowed<T> {
        self.key = Some(Box::new(key));
        self
    }
    /// The summed value.
    pub fn sum(mut self, value: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Windowed<T> {
        self.value = Some(Box::new(value));
        self
    }
    /// Where the emitted window rows go.
    pub fn to(mut self, inner: impl Sink<WindowRow> + 'static) -> Windowed<T> {
        self.inner = Some(Box::new(inner));
        self
    }

    fn ms(d: Duration) -> i64 {
        d.as_millis().min(i64::MAX as u128) as i64
    }

    fn inner(&mut self) -> Result<&mut Box<dyn Sink<WindowRow>>> {
        self.inner
            .as_mut()
            .ok_or_else(|| Error::invalid("a windowed sink needs `.to(inner sink)`"))
    }

    /// Rows emitted by the last batch.
    pub fn last_emitted(&self) -> u64 {
        self.last_emitted
    }
}

impl<T: Send> Sink<T> for Windowed<T> {
    fn name(&self) -> String {
        match &self.inner {
            Some(i) => format!("window:{}", i.name()),
            None => "window".into(),
        }
    }

    fn open(&mut self, query: &str, settings: &Settings) -> Result<()> {
        if self.key.is_none() || self.value.is_none() {
            return Err(Error::invalid(
                "a windowed sink needs `.key(…)` and `.sum(…)`",
            ));
        }
        self.state = Some(WindowState::new(
            Self::ms(self.size),
            Self::ms(self.delay),
            self.mode,
        )?);
        self.inner()?.open(query, settings)
    }

    fn plan(&mut self, batch: &BatchInfo) -> Result<serde_json::Value> {
        self.inner()?.plan(batch)
    }

    fn check(&self, batch: &BatchInfo, rows: &[T]) -> Vec<(usize, String)> {
        let (Some(state), Some(key), Some(value)) = (&self.state, &self.key, &self.value) else {
            return Vec::new();
        };
        if batch.flush {
            return Vec::new();
        }
        let latest = batch
            .batch_time_ms
            .saturating_add(Self::ms(self.max_future));
        // Each row's event time, and its cell (window start, key) and value when it is summed
        // (not too far in the future, not late): the key and value are read once per row.
        let summed: Vec<(i64, Option<(Cell, i64)>)> = rows
            .iter()
            .map(|r| {
                let t = self
                    .event_time
                    .as_ref()
                    .map_or(batch.batch_time_ms, |f| f(r));
                let counts = !((self.event_time.is_some() && t > latest) || state.is_late(t));
                (
                    t,
                    counts.then(|| ((state.window_start(t), key(r)), value(r))),
                )
            })
            .collect();
        // Cells whose every row passes the inner sink: a sink's limits on a number are ranges (a
        // column's type), and a cell's bounds only widen row by row, so when the bounds after all
        // its rows pass, so does every row's. One question per cell instead of one per row; a
        // cell that fails is checked row by row below to find the culprits.
        let mut whole: HashMap<&(i64, String), (i64, i64, i64)> = HashMap::new(); // cell -> (t, neg, pos)
        let mut overflow: HashSet<&(i64, String)> = HashSet::new();
        for (t, row) in &summed {
            let Some((cell, v)) = row else { continue };
            let e = whole.entry(cell).or_insert((*t, 0, 0));
            let next = if *v < 0 {
                e.1.checked_add(*v).map(|n| (n, e.2))
            } else {
                e.2.checked_add(*v).map(|p| (e.1, p))
            };
            match next {
                Some((n, p)) => (e.1, e.2) = (n, p),
                None => {
                    overflow.insert(cell);
                }
            }
        }
        let clean: HashSet<&(i64, String)> = match &self.inner {
            None => HashSet::new(),
            Some(inner) => whole
                .into_iter()
                .filter(|(cell, _)| !overflow.contains(cell))
                .filter(|((_, k), (t, neg, pos))| {
                    state
                        .bounds_after(*t, k, (*neg, *pos), 0)
                        .and_then(|((lo, hi), _)| window_candidates(state, *t, k, lo, hi))
                        .is_some_and(|c| inner.check(batch, &c).is_empty())
                })
                .map(|(cell, _)| cell)
                .collect(),
        };
        // cell -> (sum of negative, sum of positive) values of the rows kept so far
        let mut extra: HashMap<&(i64, String), (i64, i64)> = HashMap::new();
        let mut refused = Vec::new();
        for (i, (t, row)) in summed.iter().enumerate() {
            let t = *t;
            if self.event_time.is_some() && t > latest {
                refused.push((
                    i,
                    format!(
                        "event time {} is more than {:?} after the batch's processing time {}: it would move the watermark past every later record (raise `Windowed::max_future` if such times are real)",
                        fmt_ms(t), self.max_future, fmt_ms(batch.batch_time_ms)
                    ),
                ));
                continue;
            }
            let Some((cell, v)) = row else {
                continue; // late: dropped by apply, never summed
            };
            let (k, v) = (&cell.1, *v);
            let seen = extra.get(cell).copied().unwrap_or((0, 0));
            let Some(((lo, hi), next)) = state.bounds_after(t, k, seen, v) else {
                refused.push((
                    i,
                    format!(
                        "adding {v} would overflow the 64-bit window sum of '{k}' at {}",
                        fmt_ms(cell.0)
                    ),
                ));
                continue;
            };
            if let (Some(inner), false) = (&self.inner, clean.contains(cell)) {
                let candidates = window_candidates(state, t, k, lo, hi);
                let Some(candidates) = candidates else {
                    refused.push((
                        i,
                        format!(
                            "adding {v} would overflow the 64-bit window delta of '{k}' at {}",
                            fmt_ms(cell.0)
                        ),
                    ));
                    continue;
                };
                if let Some((_, why)) = inner.check(batch, &candidates).into_iter().next() {
                    refused.push((i, format!("window row of '{k}' at {} with this value ({v}) would be refused by {}: {why}", fmt_ms(cell.0), inner.name())));
                    continue;
                }
            }
            extra.insert(cell, next);
        }
        refused
    }

    fn apply(&mut self, batch: &BatchInfo, rows: &[T], plan: &serde_json::Value) -> Result<u64> {
        let mut next = self
            .state
            .clone()
            .ok_or_else(|| Error::invalid("windowed sink not opened"))?;
        let (Some(key), Some(value)) = (&self.key, &self.value) else {
            return Err(Error::invalid("windowed sink needs key and sum"));
        };
        let out = if batch.flush {
            next.flush()?
        } else {
            for r in rows {
                let t = self
                    .event_time
                    .as_ref()
                    .map_or(batch.batch_time_ms, |f| f(r));
                next.add(t, &key(r), value(r))?;
            }
            next.end_batch(if self.event_time.is_none() {
                Some(batch.batch_time_ms)
            } else {
                None
            })?
        };
        self.inner()?.apply(batch, &out, plan)?;
        self.last_emitted = out.len() as u64;
        self.state = Some(next);
        Ok(out.len() as u64)
    }

    fn state(&self) -> serde_json::Value {
        self.state
            .as_ref()
            .map_or(serde_json::Value::Null, WindowState::to_json)
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<()> {
        match self.state.as_mut() {
            Some(s) => s.restore(state),
            None => Err(Error::invalid("windowed sink not opened")),
        }
    }

    fn watermark(&self) -> Option<i64> {
        self.state.as_ref().and_then(WindowState::watermark)
    }

    fn late_rows(&self) -> u64 {
        self.state.as_ref().map_or(0, WindowState::late_rows)
    }

    fn wants_empty_batch(&self, now_ms: i64) -> bool {
        self.event_time.is_none()
            && self
                .state
                .as_ref()
                .is_some_and(|s| s.would_close_at(now_ms))
    }
}

/// The rows a window cell could emit when its total ends between `lo` and `hi`: each bound as
/// emitted (the delta since the last emission) and as an additive sink accumulates it (the whole
/// total). `None` when a delta leaves `i64`.
fn window_candidates(
    state: &WindowState,
    t: i64,
    key: &str,
    lo: i64,
    hi: i64,
) -> Option<Vec<WindowRow>> {
    [lo, hi]
        .into_iter()
        .flat_map(|total| {
            [
                state.row_with_total(t, key, total),
                state
                    .row_with_total(t, key, total)
                    .map(|w| WindowRow { delta: total, ..w }),
            ]
        })
        .collect()
}
