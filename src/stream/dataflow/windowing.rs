//! Time on a stream and windowed aggregation as operators: [`Stream::with_watermark`] (processing
//! time) or [`Stream::with_event_time`], then [`Timed::window`] grouped by a key and
//! [`Windowing::agg`] (Spark's `withWatermark(...).groupBy(window(...), key).agg(...)`).
//!
//! The window state ([`crate::stream::window::WindowState`]) lives in the query's checkpoint. A
//! batch is computed on a copy of the state, kept until the branch's sink applied the window rows
//! ([`Op::commit`]), so a retried or replayed batch emits the same windows.
//!
//! [`Op::check`] refuses, as dead letters, the rows that would always fail or harm the query:
//! - an event time too far ahead of the batch's processing time. The rule: an event time may lead
//!   the batch's processing time by at most the watermark delay plus [`FUTURE_SKEW`] (one second
//!   for the producers' clocks), unless [`Timed::max_future`] sets another bound. A row further
//!   ahead would move the watermark past the batch's own time, and every row on time after it
//!   would be dropped as late (one event 12 h ahead under a 5 s delay dropped 12 h of rows); such
//!   a row goes to the dead-letter topic with the reason instead (its time is wrong, so no branch
//!   applies it), and the watermark stays where the rows on time put it. Event times are instants
//!   (see the README's time zones), so no time-zone margin is needed. Rows below the watermark
//!   are late: dropped and counted (the progress's `late`), as in Spark, by the window alone;
//! - a value that would push its window's sum out of `i64`, or out of what the sink downstream
//!   accepts (its `check` on the window row the cell could become, e.g. `DURATION INT(10)` or a
//!   `LAST_ACTION` longer than `VARCHAR(45)` for a MariaDB sink). A sink's limits on a number are
//!   ranges, so the bound holds for whichever subset of the batch the engine applies: each
//!   cell's lowest and highest reachable total (the batch's negative and positive values counted
//!   apart) is checked.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::stream::clock::fmt_ms;
use crate::stream::dataflow::{Data, Op, Refusals, Rows, Stream};
use crate::stream::row::Row;
use crate::stream::sink::BatchInfo;
use crate::stream::window::{AggKind, Mode, Pending, Shape, WindowRow, WindowState};

/// How much further than the watermark delay an event time may lead the batch's processing
/// time by default (producers' clocks a little ahead of the engine's): see the module doc.
pub const FUTURE_SKEW: Duration = Duration::from_secs(1);

/// The default bound on how far an event time may lead the batch's processing time: the
/// watermark delay plus [`FUTURE_SKEW`].
pub fn default_max_future(delay: Duration) -> Duration {
    delay.saturating_add(FUTURE_SKEW)
}

/// A row's key: borrowed from the row where the key function allows it (no copy per row).
type KeyFn<T> = Arc<dyn for<'r> Fn(&'r T) -> Cow<'r, str> + Send + Sync>;
type IntFn<T> = Arc<dyn Fn(&T) -> i64 + Send + Sync>;

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// Which clock a row's time comes from.
pub(crate) enum Time<T> {
    /// The batch's processing time (the course's choice: every row of a batch has the same time).
    Processing,
    /// A time read from the row, engine milliseconds.
    Event(IntFn<T>),
}

impl<T> Clone for Time<T> {
    fn clone(&self) -> Self {
        match self {
            Time::Processing => Time::Processing,
            Time::Event(f) => Time::Event(f.clone()),
        }
    }
}

/// A stream with a time and a watermark delay: windows and duplicates are judged on that time.
pub struct Timed<T, R> {
    pub(crate) stream: Stream<T, R>,
    pub(crate) time: Time<T>,
    pub(crate) delay: Duration,
    /// Set by [`Timed::max_future`]; `None`: [`default_max_future`] of the delay.
    pub(crate) max_future: Option<Duration>,
}

impl<T, R> Clone for Timed<T, R> {
    fn clone(&self) -> Self {
        Timed {
            stream: self.stream.clone(),
            time: self.time.clone(),
            delay: self.delay,
            max_future: self.max_future,
        }
    }
}

impl<T: Data, R: Row> Stream<T, R> {
    /// Processing time with a watermark `delay` behind the latest batch time (the course's
    /// `current_timestamp()` column with `withWatermark("timestamp", "5 seconds")`).
    pub fn with_watermark(&self, delay: Duration) -> Timed<T, R> {
        Timed {
            stream: self.clone(),
            time: Time::Processing,
            delay,
            max_future: None,
        }
    }

    /// Event time read from each row (engine milliseconds, e.g. `Visit::event_ms`), with a
    /// watermark `delay` behind the latest event time seen (Spark's `withWatermark("visit_date", …)`).
    pub fn with_event_time(
        &self,
        time_ms: impl Fn(&T) -> i64 + Send + Sync + 'static,
        delay: Duration,
    ) -> Timed<T, R> {
        Timed {
            stream: self.clone(),
            time: Time::Event(Arc::new(time_ms)),
            delay,
            max_future: None,
        }
    }
}

impl<T: Data, R: Row> Timed<T, R> {
    /// Event times more than `ahead` after the batch's processing time are dead letters (default
    /// the watermark delay plus [`FUTURE_SKEW`], see [`default_max_future`]); `Duration::MAX`
    /// accepts any time. Only used with event time.
    pub fn max_future(mut self, ahead: Duration) -> Timed<T, R> {
        self.max_future = Some(ahead);
        self
    }

    /// Groups the rows by window and `key` (Spark's `groupBy(window(time, size), key)`); name the
    /// aggregates with [`Windowing::agg`].
    pub fn window(
        &self,
        window: Window,
        key: impl Fn(&T) -> String + Send + Sync + 'static,
    ) -> Windowing<T, R> {
        self.window_with(window, key_fn(move |r: &T| Cow::Owned(key(r))))
    }

    /// [`Timed::window`] with a key the row holds as text (`|v| v.last_action.as_str()`): the
    /// key is read in place, with no copy per row.
    pub fn window_str(
        &self,
        window: Window,
        key: impl Fn(&T) -> &str + Send + Sync + 'static,
    ) -> Windowing<T, R> {
        self.window_with(window, key_fn(move |r: &T| Cow::Borrowed(key(r))))
    }

    fn window_with(&self, window: Window, key: KeyFn<T>) -> Windowing<T, R> {
        Windowing {
            timed: self.clone(),
            window,
            key,
            mode: Mode::Append,
        }
    }
}

/// The key function as the window operator keeps it (names the lifetime the key borrows).
fn key_fn<T, F>(f: F) -> KeyFn<T>
where
    F: for<'r> Fn(&'r T) -> Cow<'r, str> + Send + Sync + 'static,
{
    Arc::new(f)
}

/// The shape of a window (Spark's `window(time, size[, slide])` and `session_window(time, gap)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    shape: WindowShape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WindowShape {
    Tumbling(Duration),
    Sliding(Duration, Duration),
    Session(Duration),
}

impl Window {
    /// Back-to-back windows of `size`, aligned to multiples of `size` since the epoch.
    pub fn tumbling(size: Duration) -> Window {
        Window {
            shape: WindowShape::Tumbling(size),
        }
    }

    /// Windows of `size` starting every `slide` (aligned to multiples of `slide`): a row counts
    /// in each of the `size / slide` windows that hold its time.
    pub fn sliding(size: Duration, slide: Duration) -> Window {
        Window {
            shape: WindowShape::Sliding(size, slide),
        }
    }

    /// Per key, a window from a row until `gap` after the key's latest row: rows closer than
    /// `gap` are one session.
    pub fn session(gap: Duration) -> Window {
        Window {
            shape: WindowShape::Session(gap),
        }
    }

    fn shape(self) -> Shape {
        match self.shape {
            WindowShape::Tumbling(d) => Shape::Tumbling { size_ms: ms(d) },
            WindowShape::Sliding(d, s) => Shape::Sliding {
                size_ms: ms(d),
                slide_ms: ms(s),
            },
            WindowShape::Session(g) => Shape::Session { gap_ms: ms(g) },
        }
    }
}

/// An aggregate of a window (Spark's `sum("duration")`, `count("*")`...), named like Spark's
/// column (`sum`, `count`, `avg`, `min`, `max`) unless [`Agg::alias`] names it.
pub struct Agg<T> {
    kind: AggKind,
    name: String,
    value: IntFn<T>,
}

impl<T> Agg<T> {
    /// The aggregate's name in the window rows (Spark's `.alias("duration")`).
    pub fn alias(mut self, name: &str) -> Agg<T> {
        self.name = name.to_string();
        self
    }
}

fn agg<T>(kind: AggKind, value: IntFn<T>) -> Agg<T> {
    Agg {
        kind,
        name: kind.name().to_string(),
        value,
    }
}

/// The sum of `value` over the window's rows; 64-bit, checked (an overflow is a dead letter).
pub fn sum<T>(value: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Agg<T> {
    agg(AggKind::Sum, Arc::new(value))
}

/// The number of rows in the window.
pub fn count<T>() -> Agg<T> {
    agg(AggKind::Count, Arc::new(|_: &T| 1))
}

/// The average of `value` (a float).
pub fn avg<T>(value: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Agg<T> {
    agg(AggKind::Avg, Arc::new(value))
}

/// The lowest `value`.
pub fn min<T>(value: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Agg<T> {
    agg(AggKind::Min, Arc::new(value))
}

/// The highest `value`.
pub fn max<T>(value: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Agg<T> {
    agg(AggKind::Max, Arc::new(value))
}

/// A windowed aggregation being described.
pub struct Windowing<T, R> {
    timed: Timed<T, R>,
    window: Window,
    key: KeyFn<T>,
    mode: Mode,
}

impl<T: Data, R: Row> Windowing<T, R> {
    /// When windows are emitted: [`Mode::Append`] (default, once after the watermark passed the
    /// window's end), [`Mode::Update`] (every batch, the windows that changed) or
    /// [`Mode::Complete`] (every batch, every window; windows are never dropped).
    pub fn mode(mut self, mode: Mode) -> Windowing<T, R> {
        self.mode = mode;
        self
    }

    /// The window rows with the sum of `value`: `.agg([agg::sum(value)])` with the row type known.
    pub fn sum(self, value: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Stream<WindowRow, R> {
        self.agg([sum(value)])
    }

    /// The window rows with the aggregates (one or several): one row per (window, key); the
    /// first aggregate is the row's `total`.
    pub fn agg(self, aggs: impl IntoIterator<Item = Agg<T>>) -> Stream<WindowRow, R> {
        let aggs: Arc<Vec<Agg<T>>> = Arc::new(aggs.into_iter().collect());
        let (time, key, mode) = (self.timed.time.clone(), self.key.clone(), self.mode);
        let (shape, delay) = (self.window.shape(), self.timed.delay);
        let max_future = self
            .timed
            .max_future
            .unwrap_or_else(|| default_max_future(delay));
        self.timed.stream.then(move || {
            Box::new(WindowOp {
                shape,
                delay,
                mode,
                max_future,
                time: time.clone(),
                key: key.clone(),
                aggs: aggs.clone(),
                state: None,
                next: None,
            })
        })
    }
}

/// The window operator: rows in, window rows out.
struct WindowOp<T> {
    shape: Shape,
    delay: Duration,
    mode: Mode,
    max_future: Duration,
    time: Time<T>,
    key: KeyFn<T>,
    aggs: Arc<Vec<Agg<T>>>,
    state: Option<WindowState>,
    /// The state after the last computed batch, until it is committed.
    next: Option<WindowState>,
}

impl<T> WindowOp<T> {
    /// A row's time: its event time, or the batch's processing time, never below the watermark
    /// of `state` (only after an append-mode final flush is the watermark above the batch time:
    /// rows of a restart within a flushed window count in the next one, see
    /// [`WindowState::flush`]).
    fn time_of(&self, state: &WindowState, batch: &BatchInfo, r: &T) -> i64 {
        match &self.time {
            Time::Processing => batch
                .batch_time_ms
                .max(state.watermark().unwrap_or(i64::MIN)),
            Time::Event(f) => f(r),
        }
    }

    fn event_time(&self) -> bool {
        matches!(self.time, Time::Event(_))
    }
}

/// A row as the window's check reads it: the index of its time, and when it is aggregated its
/// key (borrowed from the row where the key function allows it) and where its values start.
type Counted<'r> = (usize, Option<(Cow<'r, str>, usize)>);

/// Adds one row's values to `p` (one per aggregate), in place; `false` (and `p` unchanged) when
/// a sum would leave `i64`.
fn add_all(p: &mut [Pending], values: &[i64]) -> bool {
    if p.iter().zip(values).any(|(p, v)| p.with(*v).is_none()) {
        return false;
    }
    for (p, v) in p.iter_mut().zip(values) {
        if let Some(next) = p.with(*v) {
            *p = next;
        }
    }
    true
}

impl<T: Data> Op<T, WindowRow> for WindowOp<T> {
    fn open(&mut self, _query: &str, _settings: &Settings) -> Result<()> {
        let aggs = self.aggs.iter().map(|a| (a.kind, a.name.clone())).collect();
        self.state = Some(WindowState::new(
            self.shape,
            aggs,
            ms(self.delay),
            self.mode,
        )?);
        Ok(())
    }

    fn check(
        &self,
        batch: &BatchInfo,
        rows: &[T],
        down: &dyn Fn(&[WindowRow]) -> Refusals,
    ) -> Refusals {
        let Some(state) = &self.state else {
            return Vec::new();
        };
        if batch.flush {
            return Vec::new();
        }
        let latest = batch.batch_time_ms.saturating_add(ms(self.max_future));
        let n = self.aggs.len();
        // Each row's time (as an index into `times`, which holds each run of equal times once
        // with its window starts: under processing time a batch has one) and, when it is
        // aggregated (not too far in the future, not late), its key; the key and values are
        // read once per row, the values into one flat list (`n` per aggregated row).
        let mut times: Vec<(i64, Vec<i64>)> = Vec::new();
        let mut values: Vec<i64> = Vec::new();
        let mut counted: Vec<Counted> = Vec::with_capacity(rows.len());
        for r in rows {
            let t = self.time_of(state, batch, r);
            if times.last().is_none_or(|(last, _)| *last != t) {
                times.push((t, state.cell_starts(t)));
            }
            let counts = !((self.event_time() && t > latest) || state.is_late(t));
            let row = counts.then(|| {
                let at = values.len();
                values.extend(self.aggs.iter().map(|a| (a.value)(r)));
                ((self.key)(r), at)
            });
            counted.push((times.len() - 1, row));
        }
        // A cell, (window start, key), borrowing the row's key.
        type CellRef<'k> = (i64, &'k str);
        let cell = |start: i64, key: &str| (start, key.to_string());
        // Cells whose every row passes downstream: a sink's limits on a number are ranges, and a
        // cell's bounds only widen row by row, so when the bounds after all its rows pass, so
        // does every row's. One question per cell instead of one per row; a cell that fails is
        // checked row by row below to find the culprits.
        let mut whole: HashMap<CellRef, (i64, Vec<Pending>)> = HashMap::new();
        let mut overflow: HashSet<CellRef> = HashSet::new();
        for (ti, row) in &counted {
            let Some((key, at)) = row else { continue };
            let (t, starts) = &times[*ti];
            let vals = &values[*at..*at + n];
            for s in starts {
                let c = (*s, key.as_ref());
                let e = whole
                    .entry(c)
                    .or_insert_with(|| (*t, vec![Pending::default(); n]));
                if !add_all(&mut e.1, vals) {
                    overflow.insert(c);
                }
            }
        }
        let clean: HashSet<CellRef> = whole
            .iter()
            .filter(|(c, _)| !overflow.contains(*c))
            .filter(|((s, k), (t, p))| {
                state
                    .bounds(&cell(*s, k), *t, p)
                    .is_some_and(|c| down(&c).is_empty())
            })
            .map(|(c, _)| *c)
            .collect();
        // cell -> what the rows kept so far may add. A clean cell needs none of it: any subset
        // of its rows stays within the bounds checked above (its sums did not overflow), so a
        // row whose cells are all clean passes without a look.
        let mut extra: HashMap<CellRef, Vec<Pending>> = HashMap::new();
        let mut refused = Vec::new();
        'rows: for (i, (ti, row)) in counted.iter().enumerate() {
            let (t, starts) = &times[*ti];
            let t = *t;
            if self.event_time() && t > latest {
                refused.push((
                    i,
                    format!(
                        "event time {} is more than {:?} after the batch's processing time {} (the watermark delay {:?} plus {:?}, or `max_future`): it would move the watermark {:?} past the batch's time, and the rows on time after it would be dropped as late (raise `max_future` if such times are real)",
                        fmt_ms(t), self.max_future, fmt_ms(batch.batch_time_ms), self.delay, FUTURE_SKEW,
                        Duration::from_millis(u64::try_from(t.saturating_sub(batch.batch_time_ms).saturating_sub(ms(self.delay))).unwrap_or(0))
                    ),
                ));
                continue;
            }
            let Some((key, at)) = row else {
                continue; // late: dropped by run, never aggregated
            };
            if starts.iter().all(|s| clean.contains(&(*s, key.as_ref()))) {
                continue;
            }
            let values = &values[*at..*at + n];
            let k = key;
            let mut next: Vec<(CellRef, Vec<Pending>)> = Vec::with_capacity(starts.len());
            for s in starts {
                let c = (*s, key.as_ref());
                let mut after = extra
                    .get(&c)
                    .cloned()
                    .unwrap_or_else(|| vec![Pending::default(); n]);
                if !add_all(&mut after, values) {
                    refused.push((
                        i,
                        format!(
                            "adding {values:?} would overflow the 64-bit window aggregate of '{k}'"
                        ),
                    ));
                    continue 'rows;
                }
                if !clean.contains(&c) {
                    let Some(candidates) = state.bounds(&cell(*s, k), t, &after) else {
                        refused.push((
                            i,
                            format!(
                                "adding {values:?} would overflow the 64-bit window aggregate of '{k}' at {}",
                                fmt_ms(t)
                            ),
                        ));
                        continue 'rows;
                    };
                    if let Some((_, why)) = down(&candidates).into_iter().next() {
                        refused.push((
                            i,
                            format!(
                                "window row of '{k}' at {} with this row's values {values:?} would be refused: {why}",
                                fmt_ms(candidates[0].start_ms)
                            ),
                        ));
                        continue 'rows;
                    }
                }
                next.push((c, after));
            }
            extra.extend(next);
        }
        refused
    }

    fn run<'a>(&mut self, batch: &BatchInfo, rows: Rows<'a, T>) -> Result<Rows<'a, WindowRow>> {
        let mut next = self
            .state
            .clone()
            .ok_or_else(|| Error::invalid("window operator not opened"))?;
        let out = if batch.flush {
            next.flush()?
        } else {
            let mut values = Vec::with_capacity(self.aggs.len());
            for r in rows.iter() {
                let t = self.time_of(&next, batch, r);
                if next.is_late(t) {
                    // the key and values of a late row are never read (as in the check)
                    next.drop_late();
                    continue;
                }
                values.clear();
                values.extend(self.aggs.iter().map(|a| (a.value)(r)));
                next.add(t, &(self.key)(r), &values)?;
            }
            next.end_batch(match self.time {
                Time::Processing => Some(batch.batch_time_ms),
                Time::Event(_) => None,
            })?
        };
        self.next = Some(next);
        Ok(Rows::Owned(out))
    }

    fn commit(&mut self) {
        if let Some(n) = self.next.take() {
            self.state = Some(n);
        }
    }

    fn state(&self) -> Option<serde_json::Value> {
        self.state.as_ref().map(WindowState::to_json)
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<()> {
        match self.state.as_mut() {
            Some(s) => s.restore(state),
            None => Err(Error::invalid("window operator not opened")),
        }
    }

    fn watermark(&self) -> Option<i64> {
        self.state.as_ref().and_then(WindowState::watermark)
    }

    fn late_rows(&self) -> u64 {
        self.state.as_ref().map_or(0, WindowState::late_rows)
    }

    fn wants_empty_batch(&self, now_ms: i64) -> bool {
        !self.event_time()
            && self
                .state
                .as_ref()
                .is_some_and(|s| s.would_close_at(now_ms))
    }
}
