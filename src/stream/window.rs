//! Tumbling windows with a watermark: the state of one windowed sum per (window, key).
//!
//! Windows are aligned to multiples of their size since the epoch (engine milliseconds, see
//! [`crate::stream::clock`]). The watermark is `max time seen − delay`, updated at the end of
//! each batch (as in Spark): a record whose time is below the watermark of the previous batches
//! is late, counted and dropped. With processing time every row of a batch carries the batch
//! time, and an empty batch still advances the watermark.
//!
//! - [`Mode::Append`]: a window is emitted once, after the watermark passed its end.
//! - [`Mode::Update`]: every batch emits the windows that changed, with their running total.
//!
//! Every emitted [`WindowRow`] carries the running `total` and the `delta` since that window's
//! last emission (equal in append mode), so additive sinks (`ZINCRBY`, `… DURATION = DURATION +
//! VALUES(DURATION)`) stay exact in both modes and across scaled-out consumers.
//! [`WindowState::flush`] emits every open window (the final flush on stop).
//!
//! Arithmetic is checked everywhere: a sum that would leave `i64` is an error, never a wrapped
//! value or a panic (the windowed sink's `check` sends such rows to the dead-letter topic before
//! they reach the state, see [`WindowState::bounds_after`]). Times near the ends of `i64`
//! saturate: a window whose end is past `i64::MAX` ends at `i64::MAX`, a watermark below
//! `i64::MIN` is `i64::MIN`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::stream::clock::{fmt_ms, to_naive};

/// When windows are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Mode {
    /// Once per window, after the watermark passed its end (the course's default).
    #[default]
    Append,
    /// Every batch, for the windows that changed.
    Update,
}

/// One emitted (window, key) sum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRow {
    /// Window start, engine milliseconds.
    pub start_ms: i64,
    /// Window end (exclusive), engine milliseconds.
    pub end_ms: i64,
    pub key: String,
    /// Running sum of the window.
    pub total: i64,
    /// Increase since this window was last emitted (the amount additive sinks add).
    pub delta: i64,
}

impl WindowRow {
    /// Window start as a naive date-time (the course's `INTERVAL_TIMESTAMP`).
    pub fn start(&self) -> chrono::NaiveDateTime {
        to_naive(self.start_ms).unwrap_or_default()
    }
    /// Window start as `YYYY-MM-DD HH:MM:SS`.
    pub fn start_text(&self) -> String {
        fmt_ms(self.start_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Agg {
    total: i64,
    emitted: i64,
}

/// Open windows, watermark and late-row count of one windowed aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowState {
    size_ms: i64,
    delay_ms: i64,
    mode: Mode,
    max_seen: Option<i64>,
    watermark: Option<i64>,
    open: BTreeMap<(i64, String), Agg>,
    late: u64,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    size_ms: i64,
    delay_ms: i64,
    mode: Mode,
    max_seen: Option<i64>,
    watermark: Option<i64>,
    open: Vec<(i64, String, i64, i64)>,
    late: u64,
}

impl WindowState {
    /// Tumbling windows of `size_ms` with a watermark delay of `delay_ms`.
    pub fn new(size_ms: i64, delay_ms: i64, mode: Mode) -> Result<WindowState> {
        if size_ms <= 0 || delay_ms < 0 {
            return Err(Error::invalid(format!(
                "window size must be > 0 and delay ≥ 0 (got {size_ms} ms, {delay_ms} ms)"
            )));
        }
        Ok(WindowState {
            size_ms,
            delay_ms,
            mode,
            max_seen: None,
            watermark: None,
            open: BTreeMap::new(),
            late: 0,
        })
    }

    /// Start of the window holding `t_ms` (saturating at `i64::MIN` for times within one window
    /// size of it).
    pub fn window_start(&self, t_ms: i64) -> i64 {
        t_ms.div_euclid(self.size_ms)
            .checked_mul(self.size_ms)
            .unwrap_or(i64::MIN)
    }

    /// End (exclusive) of the window starting at `start` (saturating at `i64::MAX`).
    fn window_end(&self, start: i64) -> i64 {
        start.saturating_add(self.size_ms)
    }

    /// True when a row at `t_ms` would be dropped as late.
    pub fn is_late(&self, t_ms: i64) -> bool {
        self.watermark.is_some_and(|w| t_ms < w)
    }

    /// Running total and emitted part of the cell (window of `t_ms`, `key`); zeros when absent.
    pub fn cell(&self, t_ms: i64, key: &str) -> (i64, i64) {
        let a = self
            .open
            .get(&(self.window_start(t_ms), key.to_string()))
            .copied()
            .unwrap_or_default();
        (a.total, a.emitted)
    }

    /// The window of `t_ms` as it would be emitted with running total `total`: start, end, and
    /// the delta since its last emission; `None` when the delta leaves `i64`.
    pub fn row_with_total(&self, t_ms: i64, key: &str, total: i64) -> Option<WindowRow> {
        let start = self.window_start(t_ms);
        let (_, emitted) = self.cell(t_ms, key);
        Some(WindowRow {
            start_ms: start,
            end_ms: self.window_end(start),
            key: key.to_string(),
            total,
            delta: total.checked_sub(emitted)?,
        })
    }

    /// The lowest and highest total the cell (window of `t_ms`, `key`) can reach when `extra`
    /// (the values of earlier rows of the batch, by sign: `(sum of negatives, sum of positives)`)
    /// and then `value` are added, whichever subset of them is applied. `None` when a bound
    /// leaves `i64`: the row would overflow the window sum.
    pub fn bounds_after(
        &self,
        t_ms: i64,
        key: &str,
        extra: (i64, i64),
        value: i64,
    ) -> Option<((i64, i64), (i64, i64))> {
        let (neg, pos) = if value < 0 {
            (extra.0.checked_add(value)?, extra.1)
        } else {
            (extra.0, extra.1.checked_add(value)?)
        };
        let (total, _) = self.cell(t_ms, key);
        Some((
            (total.checked_add(neg)?, total.checked_add(pos)?),
            (neg, pos),
        ))
    }

    /// The current watermark (none before the first batch).
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// Late rows dropped so far.
    pub fn late_rows(&self) -> u64 {
        self.late
    }

    /// Number of open (window, key) cells.
    pub fn open_cells(&self) -> usize {
        self.open.len()
    }

    /// True when moving processing time to `now_ms` would close (emit or drop) an open window.
    pub fn would_close_at(&self, now_ms: i64) -> bool {
        let wm = now_ms
            .saturating_sub(self.delay_ms)
            .max(self.watermark.unwrap_or(i64::MIN));
        self.open
            .keys()
            .next()
            .is_some_and(|(start, _)| self.window_end(*start) <= wm)
    }

    /// Adds `value` at time `t_ms` for `key`; `Ok(false)` (and counted) when the row is late.
    /// A sum that would leave `i64` is an error and changes nothing.
    pub fn add(&mut self, t_ms: i64, key: &str, value: i64) -> Result<bool> {
        if self.is_late(t_ms) {
            self.late = self.late.saturating_add(1);
            return Ok(false);
        }
        let start = self.window_start(t_ms);
        let agg = self.open.entry((start, key.to_string())).or_default();
        agg.total = agg.total.checked_add(value).ok_or_else(|| {
            Error::invalid(format!(
                "the window sum of '{key}' at {} overflows a 64-bit integer (adding {value} to {})",
                fmt_ms(start),
                agg.total
            ))
        })?;
        self.max_seen = Some(self.max_seen.map_or(t_ms, |m| m.max(t_ms)));
        Ok(true)
    }

    /// Ends a batch: moves time to at least `now_ms` (the batch time for processing-time
    /// windows; `None` for event time), updates the watermark and returns the rows to emit.
    /// A row to emit for a cell; an error when its delta leaves `i64`.
    fn emitted_row(&self, start: i64, key: &str, agg: &Agg) -> Result<WindowRow> {
        let delta = agg.total.checked_sub(agg.emitted).ok_or_else(|| {
            Error::invalid(format!(
                "the window delta of '{key}' at {} overflows a 64-bit integer ({} − {})",
                fmt_ms(start),
                agg.total,
                agg.emitted
            ))
        })?;
        Ok(WindowRow {
            start_ms: start,
            end_ms: self.window_end(start),
            key: key.to_string(),
            total: agg.total,
            delta,
        })
    }

    /// Ends a batch: moves time to at least `now_ms` (the batch time for processing-time
    /// windows; `None` for event time), updates the watermark and returns the rows to emit.
    /// On an error the state is unchanged only if the caller works on a copy (the windowed sink does).
    pub fn end_batch(&mut self, now_ms: Option<i64>) -> Result<Vec<WindowRow>> {
        if let Some(n) = now_ms {
            self.max_seen = Some(self.max_seen.map_or(n, |m| m.max(n)));
        }
        if let Some(m) = self.max_seen {
            let w = m.saturating_sub(self.delay_ms);
            self.watermark = Some(self.watermark.map_or(w, |old| old.max(w)));
        }
        let wm = self.watermark.unwrap_or(i64::MIN);
        let mut out = Vec::new();
        let mut closed = Vec::new();
        let mut emitted = Vec::new();
        for ((start, key), agg) in self.open.iter() {
            let done = self.window_end(*start) <= wm;
            let emit = match self.mode {
                Mode::Append => done,
                Mode::Update => agg.total != agg.emitted,
            };
            if emit && (agg.total != agg.emitted || self.mode == Mode::Append) {
                out.push(self.emitted_row(*start, key, agg)?);
                emitted.push((*start, key.clone()));
            }
            if done {
                closed.push((*start, key.clone()));
            }
        }
        for k in emitted {
            if let Some(a) = self.open.get_mut(&k) {
                a.emitted = a.total;
            }
        }
        for k in closed {
            self.open.remove(&k);
        }
        Ok(out)
    }

    /// Emits every open window (final flush), leaving the watermark where it was.
    pub fn flush(&mut self) -> Result<Vec<WindowRow>> {
        let out = self
            .open
            .iter()
            .filter(|(_, a)| a.total != a.emitted || (self.mode == Mode::Append))
            .map(|((start, key), a)| self.emitted_row(*start, key, a))
            .collect::<Result<Vec<_>>>()?;
        self.open.clear();
        Ok(out)
    }

    /// The state as JSON, for the checkpoint.
    pub fn to_json(&self) -> serde_json::Value {
        let snap = Snapshot {
            size_ms: self.size_ms,
            delay_ms: self.delay_ms,
            mode: self.mode,
            max_seen: self.max_seen,
            watermark: self.watermark,
            open: self
                .open
                .iter()
                .map(|((s, k), a)| (*s, k.clone(), a.total, a.emitted))
                .collect(),
            late: self.late,
        };
        serde_json::to_value(snap).unwrap_or(serde_json::Value::Null)
    }

    /// Restores the state written by [`WindowState::to_json`]; the window size must match.
    pub fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        if v.is_null() {
            return Ok(());
        }
        let s: Snapshot = serde_json::from_value(v.clone())
            .map_err(|e| Error::invalid(format!("window state in checkpoint: {e}")))?;
        if s.size_ms != self.size_ms {
            return Err(Error::invalid(format!(
                "the checkpoint holds {} ms windows but the query asks for {} ms: use a new query name or delete its checkpoint",
                s.size_ms, self.size_ms
            )));
        }
        self.max_seen = s.max_seen;
        self.watermark = s.watermark;
        self.late = s.late;
        self.open = s
            .open
            .into_iter()
            .map(|(st, k, t, e)| {
                (
                    (st, k),
                    Agg {
                        total: t,
                        emitted: e,
                    },
                )
            })
            .collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::clock::{Clock, ManualClock};

    const S: i64 = 1000;

    fn state(mode: Mode) -> WindowState {
        WindowState::new(5 * S, 5 * S, mode).expect("state")
    }

    #[test]
    fn windows_align_to_the_epoch() {
        let w = state(Mode::Append);
        assert_eq!(w.window_start(0), 0);
        assert_eq!(w.window_start(4_999), 0);
        assert_eq!(w.window_start(5_000), 5_000);
        assert_eq!(w.window_start(-1), -5_000);
        assert_eq!(w.window_start(1_723_467_676_123), 1_723_467_675_000);
    }

    #[test]
    fn append_emits_once_after_the_watermark_passes_the_end() {
        // Processing time: the course's 5 s windows with a 5 s watermark.
        let clock = ManualClock::new(100 * S);
        let mut w = state(Mode::Append);
        // batch at t=100 s: two rows in window [100,105)
        let t = clock.now_ms();
        assert!(w.add(t, "FAQ", 3).expect("window"));
        assert!(w.add(t, "FAQ", 4).expect("window"));
        assert!(w.add(t, "Order", 1).expect("window"));
        assert!(w.end_batch(Some(t)).expect("window").is_empty());
        assert_eq!(w.watermark(), Some(95 * S));
        assert!(
            !w.would_close_at(109_999) && w.would_close_at(110 * S),
            "an empty batch is only needed at 110 s"
        );
        // batch at 106 s: watermark 101 s < 105 s, nothing yet
        clock.set(106 * S);
        assert!(w.add(clock.now_ms(), "FAQ", 10).expect("window"));
        assert!(w
            .end_batch(Some(clock.now_ms()))
            .expect("window")
            .is_empty());
        // empty batch at 109.999 s: still open (watermark 104.999)
        clock.set(110 * S - 1);
        assert!(w
            .end_batch(Some(clock.now_ms()))
            .expect("window")
            .is_empty());
        // empty batch at exactly 110 s: watermark 105 s = end of [100,105) → emitted, once
        clock.set(110 * S);
        let out = w.end_batch(Some(clock.now_ms())).expect("window");
        assert_eq!(out.len(), 2);
        assert_eq!(
            (
                out[0].start_ms,
                out[0].key.as_str(),
                out[0].total,
                out[0].delta
            ),
            (100 * S, "FAQ", 7, 7)
        );
        assert_eq!((out[1].key.as_str(), out[1].total), ("Order", 1));
        assert!(
            w.end_batch(Some(clock.now_ms()))
                .expect("window")
                .is_empty(),
            "a window is emitted once"
        );
        // [105,110) follows when the watermark reaches 110 s
        clock.set(115 * S);
        let out = w.end_batch(Some(clock.now_ms())).expect("window");
        assert_eq!(
            out,
            vec![WindowRow {
                start_ms: 105 * S,
                end_ms: 110 * S,
                key: "FAQ".into(),
                total: 10,
                delta: 10
            }]
        );
        assert_eq!(w.open_cells(), 0);
    }

    #[test]
    fn late_event_time_rows_are_counted_and_dropped() {
        let mut w = state(Mode::Append);
        assert!(w.add(20 * S, "A", 1).expect("window"));
        assert!(w.add(12 * S, "A", 1).expect("window")); // out of order but not late yet (no watermark)
        let first = w.end_batch(None).expect("window"); // watermark 15 s closes [10,15)
        assert_eq!(
            first
                .iter()
                .map(|r| (r.start_ms / S, r.total))
                .collect::<Vec<_>>(),
            vec![(10, 1)]
        );
        assert_eq!(w.watermark(), Some(15 * S));
        assert!(
            !w.add(14 * S, "A", 100).expect("window"),
            "below the watermark"
        );
        assert!(
            w.add(15 * S, "A", 2).expect("window"),
            "at the watermark is on time"
        );
        assert_eq!(w.late_rows(), 1);
        // an empty event-time batch does not move the watermark
        assert!(w.end_batch(None).expect("window").is_empty());
        assert_eq!(w.watermark(), Some(15 * S));
        assert!(w.add(31 * S, "A", 5).expect("window"));
        let out = w.end_batch(None).expect("window"); // watermark 26 s: [15,20) [20,25) closed
        let sums: Vec<(i64, i64)> = out.iter().map(|r| (r.start_ms / S, r.total)).collect();
        assert_eq!(sums, vec![(15, 2), (20, 1)]);
        let rest = w.flush().expect("window");
        assert_eq!(rest.len(), 1);
        assert_eq!((rest[0].start_ms, rest[0].total), (30 * S, 5));
        assert_eq!(w.watermark(), Some(26 * S), "flush keeps the watermark");
    }

    #[test]
    fn update_mode_emits_changes_with_deltas() {
        let mut w = state(Mode::Update);
        w.add(100 * S, "A", 3).expect("window");
        let out = w.end_batch(Some(100 * S)).expect("window");
        assert_eq!((out[0].total, out[0].delta), (3, 3));
        assert!(
            w.end_batch(Some(101 * S)).expect("window").is_empty(),
            "unchanged windows are not repeated"
        );
        w.add(101 * S, "A", 4).expect("window");
        let out = w.end_batch(Some(101 * S)).expect("window");
        assert_eq!((out[0].total, out[0].delta), (7, 4));
        // deltas add up to the total, and the window is dropped once closed
        assert!(w.end_batch(Some(120 * S)).expect("window").is_empty());
        assert_eq!(w.open_cells(), 0);
    }

    #[test]
    fn state_survives_a_checkpoint_round_trip() {
        let mut w = state(Mode::Append);
        w.add(100 * S, "A", 3).expect("window");
        w.end_batch(Some(100 * S)).expect("window");
        w.add(90 * S, "A", 3).expect("window"); // late
        let mut r = state(Mode::Append);
        r.restore(&w.to_json()).expect("restore");
        assert_eq!(r, w);
        let mut other = WindowState::new(10 * S, 0, Mode::Append).expect("state");
        assert!(
            other.restore(&w.to_json()).is_err(),
            "size mismatch is refused"
        );
        assert!(WindowState::new(0, 0, Mode::Append).is_err());
    }

    #[test]
    fn a_sum_that_would_overflow_is_an_error_and_changes_nothing() {
        let mut w = state(Mode::Append);
        assert!(w.add(100 * S, "A", i64::MAX - 1).expect("window"));
        let before = w.clone();
        let e = w.add(100 * S, "A", 2).expect_err("overflow");
        assert!(e.to_string().contains("overflows"), "{e}");
        assert_eq!(w, before, "a refused row leaves the state as it was");
        assert!(w.add(100 * S, "B", 2).expect("window"), "other cells go on");
        // bounds: the highest total any subset of the batch's rows can reach
        assert_eq!(
            w.bounds_after(100 * S, "A", (0, 0), 1),
            Some(((i64::MAX - 1, i64::MAX), (0, 1)))
        );
        assert_eq!(
            w.bounds_after(100 * S, "A", (0, 1), 1),
            None,
            "two more would overflow"
        );
        assert_eq!(
            w.bounds_after(100 * S, "A", (-5, 0), -3),
            Some(((i64::MAX - 9, i64::MAX - 1), (-8, 0)))
        );
    }

    #[test]
    fn times_at_the_ends_of_i64_never_panic() {
        let mut w = state(Mode::Update);
        assert_eq!(
            w.window_start(i64::MIN),
            i64::MIN,
            "saturates instead of overflowing"
        );
        assert!(w.add(i64::MAX, "A", 1).expect("window"));
        assert!(w.add(i64::MIN, "A", 1).expect("window"));
        let out = w.end_batch(None).expect("window");
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|r| r.end_ms >= r.start_ms));
        assert_eq!(w.watermark(), Some(i64::MAX - 5 * S));
        assert!(!w.would_close_at(i64::MAX));
        assert_eq!(w.flush().expect("window").len(), 0);
    }
}
