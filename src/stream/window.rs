//! Windowed aggregation with a watermark: the state of one window operator per (window, key).
//!
//! Shapes ([`Shape`]): tumbling windows of a size, sliding windows of a size every slide (a row
//! belongs to `size / slide` windows), both aligned to multiples of the slide since the epoch
//! (engine milliseconds, see [`crate::stream::clock`]); and session windows per key, which start at
//! a row and last until `gap` after the key's latest row (a row within the gap of two sessions
//! merges them). Aggregates ([`AggKind`]): sum, count, average, minimum, maximum of a 64-bit value,
//! several at once.
//!
//! The watermark is `max time seen − delay`, updated at the end of each batch (as in Spark): a
//! record whose time is below the watermark of the previous batches is late, counted and dropped.
//! With processing time every row of a batch carries the batch time, and an empty batch still
//! advances the watermark.
//!
//! - [`Mode::Append`]: a window is emitted once, after the watermark passed its end.
//! - [`Mode::Update`]: every batch emits the windows that changed.
//! - [`Mode::Complete`]: every batch emits every window (closed ones are kept, never dropped:
//!   the state grows with the windows seen; meant for small key sets, as in Spark).
//!
//! Every emitted [`WindowRow`] carries the first aggregate as `total` and its change since that
//! window's last emission as `delta` (equal in append mode), so additive sinks (`ZINCRBY`,
//! `… DURATION = DURATION + VALUES(DURATION)`) stay exact in every mode and across scaled-out
//! consumers (a session that merges with another is a new window: its delta is its whole total).
//!
//! The final flush on stop ([`WindowState::flush`]) emits a window once, whatever comes after:
//! - append mode: every open window is emitted and closed, and the watermark moves to the end
//!   of the last one. After a restart, a processing-time row counts from that end on (its time is
//!   the batch time, or the watermark when the batch time is below it: a restart within a flushed
//!   window counts in the next window), and an event-time row before it is late. So a window is
//!   never written twice, which a sink that inserts rows (`Merge::Insert`) would keep as two
//!   partial rows.
//! - update and complete modes: the changed (update) or all (complete) windows are emitted and
//!   kept open, marked as emitted; a restart goes on adding to them and emits their change (the
//!   `delta`), as every batch of these modes does.
//!
//! Arithmetic is checked everywhere: a sum that would leave `i64` is an error, never a wrapped
//! value or a panic (the window operator's check sends such rows to the dead-letter topic before
//! they reach the state, see [`WindowState::bounds`]). Times near the ends of `i64` saturate: a
//! window whose end is past `i64::MAX` ends at `i64::MAX`, a watermark below `i64::MIN` is
//! `i64::MIN`.

use std::borrow::Borrow;
use std::cmp::Ordering;
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
    /// Every batch, every window.
    Complete,
}

/// The shape of windows, in engine milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    Tumbling { size_ms: i64 },
    Sliding { size_ms: i64, slide_ms: i64 },
    Session { gap_ms: i64 },
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggKind {
    Sum,
    Count,
    Avg,
    Min,
    Max,
}

impl AggKind {
    /// Spark's default column name: `sum`, `count`, `avg`, `min`, `max`.
    pub fn name(self) -> &'static str {
        match self {
            AggKind::Sum => "sum",
            AggKind::Count => "count",
            AggKind::Avg => "avg",
            AggKind::Min => "min",
            AggKind::Max => "max",
        }
    }
    fn sums(self) -> bool {
        matches!(self, AggKind::Sum | AggKind::Avg)
    }
}

/// The value of an aggregate: whole for sum, count, min and max, fractional for the average.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AggValue {
    Int(i64),
    Float(f64),
}

impl AggValue {
    /// As a whole number (an average rounded toward zero).
    pub fn as_i64(self) -> i64 {
        match self {
            AggValue::Int(v) => v,
            AggValue::Float(f) => f as i64,
        }
    }
    /// As a float.
    pub fn as_f64(self) -> f64 {
        match self {
            AggValue::Int(v) => v as f64,
            AggValue::Float(f) => f,
        }
    }
}

impl std::fmt::Display for AggValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AggValue::Int(v) => write!(f, "{v}"),
            AggValue::Float(v) => write!(f, "{v}"),
        }
    }
}

/// One emitted (window, key) row.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRow {
    /// Window start, engine milliseconds.
    pub start_ms: i64,
    /// Window end (exclusive), engine milliseconds.
    pub end_ms: i64,
    pub key: String,
    /// The first aggregate (the course's sum), as a whole number.
    pub total: i64,
    /// Increase of `total` since this window was last emitted (the amount additive sinks add).
    pub delta: i64,
    /// Every aggregate by name, in the order given (`[("sum", 12), ("count", 3)]`).
    pub values: Vec<(String, AggValue)>,
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
    /// Window end as `YYYY-MM-DD HH:MM:SS`.
    pub fn end_text(&self) -> String {
        fmt_ms(self.end_ms)
    }
    /// The aggregate named `name`.
    pub fn value(&self, name: &str) -> Option<AggValue> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// As a flat record: `start`, `end` (text), `key`, then each aggregate by name.
impl Serialize for WindowRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(3 + self.values.len()))?;
        m.serialize_entry("start", &self.start_text())?;
        m.serialize_entry("end", &self.end_text())?;
        m.serialize_entry("key", &self.key)?;
        for (n, v) in &self.values {
            m.serialize_entry(n, v)?;
        }
        m.end()
    }
}

/// What one aggregate has accumulated in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Acc {
    pub sum: i64,
    pub n: i64,
    pub min: Option<i64>,
    pub max: Option<i64>,
}

impl Acc {
    fn can_add(&self, kind: AggKind, v: i64) -> bool {
        (!kind.sums() || self.sum.checked_add(v).is_some()) && self.n < i64::MAX
    }

    fn add(&mut self, kind: AggKind, v: i64) -> Option<()> {
        if kind.sums() {
            self.sum = self.sum.checked_add(v)?;
        }
        self.n = self.n.checked_add(1)?;
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
        Some(())
    }

    fn merge(&mut self, kind: AggKind, o: &Acc) -> Option<()> {
        if kind.sums() {
            self.sum = self.sum.checked_add(o.sum)?;
        }
        self.n = self.n.checked_add(o.n)?;
        self.min = match (self.min, o.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, o.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Some(())
    }

    fn value(&self, kind: AggKind) -> AggValue {
        match kind {
            AggKind::Sum => AggValue::Int(self.sum),
            AggKind::Count => AggValue::Int(self.n),
            AggKind::Avg if self.n == 0 => AggValue::Float(0.0),
            AggKind::Avg => AggValue::Float(self.sum as f64 / self.n as f64),
            AggKind::Min => AggValue::Int(self.min.unwrap_or(0)),
            AggKind::Max => AggValue::Int(self.max.unwrap_or(0)),
        }
    }
}

/// The values a batch's rows may add to one aggregate of one window, whichever subset of them
/// is applied: negative and positive sums apart, how many, lowest and highest value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pending {
    pub neg: i64,
    pub pos: i64,
    pub k: i64,
    pub lo: Option<i64>,
    pub hi: Option<i64>,
}

impl Pending {
    /// With one more value; `None` when a sum leaves `i64`.
    pub fn with(self, v: i64) -> Option<Pending> {
        let (neg, pos) = if v < 0 {
            (self.neg.checked_add(v)?, self.pos)
        } else {
            (self.neg, self.pos.checked_add(v)?)
        };
        Some(Pending {
            neg,
            pos,
            k: self.k.checked_add(1)?,
            lo: Some(self.lo.map_or(v, |m| m.min(v))),
            hi: Some(self.hi.map_or(v, |m| m.max(v))),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cell {
    end: i64,
    accs: Vec<Acc>,
    /// The values last emitted (none yet: `None`).
    emitted: Option<Vec<AggValue>>,
    /// `total` last emitted.
    emitted_total: i64,
}

/// A cell's id, (window start, key), owned as the open cells' map holds it or borrowed as a row
/// gives it: the map is searched with a borrowed id, so adding a row to an open cell copies no key.
/// Both forms order as the tuple `(start, key)` does.
trait CellId {
    fn id(&self) -> (i64, &str);
}

impl CellId for (i64, String) {
    fn id(&self) -> (i64, &str) {
        (self.0, self.1.as_str())
    }
}

impl CellId for (i64, &str) {
    fn id(&self) -> (i64, &str) {
        *self
    }
}

impl<'a> Borrow<dyn CellId + 'a> for (i64, String) {
    fn borrow(&self) -> &(dyn CellId + 'a) {
        self
    }
}

impl PartialEq for dyn CellId + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for dyn CellId + '_ {}

impl PartialOrd for dyn CellId + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn CellId + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.id().cmp(&other.id())
    }
}

/// Open windows, watermark and late-row count of one windowed aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowState {
    shape: Shape,
    aggs: Vec<(AggKind, String)>,
    delay_ms: i64,
    mode: Mode,
    max_seen: Option<i64>,
    watermark: Option<i64>,
    open: BTreeMap<(i64, String), Cell>,
    late: u64,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    shape: Shape,
    aggs: Vec<(AggKind, String)>,
    delay_ms: i64,
    mode: Mode,
    max_seen: Option<i64>,
    watermark: Option<i64>,
    open: Vec<(i64, String, Cell)>,
    late: u64,
}

/// The window state as the first typed-pipeline release (tumbling windows, one sum) wrote it.
#[derive(Deserialize)]
struct TumblingSumSnapshot {
    size_ms: i64,
    delay_ms: i64,
    mode: Mode,
    max_seen: Option<i64>,
    watermark: Option<i64>,
    open: Vec<(i64, String, i64, i64)>,
    late: u64,
}

fn invalid(msg: String) -> Error {
    Error::invalid(msg)
}

impl WindowState {
    /// Windows of `shape` with the aggregates `aggs` (kind and output name), a watermark `delay_ms`
    /// behind the latest time, emitted in `mode`.
    pub fn new(
        shape: Shape,
        aggs: Vec<(AggKind, String)>,
        delay_ms: i64,
        mode: Mode,
    ) -> Result<WindowState> {
        let ok = match shape {
            Shape::Tumbling { size_ms } => size_ms > 0,
            Shape::Sliding { size_ms, slide_ms } => slide_ms > 0 && size_ms >= slide_ms,
            Shape::Session { gap_ms } => gap_ms > 0,
        };
        if !ok || delay_ms < 0 {
            return Err(invalid(format!(
                "windows need a size, slide and gap > 0, a slide no longer than the size, and a delay ≥ 0 (got {shape:?}, delay {delay_ms} ms)"
            )));
        }
        if aggs.is_empty() {
            return Err(invalid(
                "a window needs at least one aggregate: `.agg([agg::sum(|row| value)])`".into(),
            ));
        }
        Ok(WindowState {
            shape,
            aggs,
            delay_ms,
            mode,
            max_seen: None,
            watermark: None,
            open: BTreeMap::new(),
            late: 0,
        })
    }

    /// Tumbling windows of `size_ms` with one sum named `sum`.
    pub fn tumbling_sum(size_ms: i64, delay_ms: i64, mode: Mode) -> Result<WindowState> {
        WindowState::new(
            Shape::Tumbling { size_ms },
            vec![(AggKind::Sum, "sum".into())],
            delay_ms,
            mode,
        )
    }

    /// The aggregates: kind and output name.
    pub fn aggs(&self) -> &[(AggKind, String)] {
        &self.aggs
    }

    fn is_session(&self) -> bool {
        matches!(self.shape, Shape::Session { .. })
    }

    /// Starts of the windows holding `t_ms` (tumbling: one; sliding: `size / slide`; session:
    /// the start of a new session at `t_ms`), saturating at `i64::MIN`.
    pub fn starts_of(&self, t_ms: i64) -> Vec<i64> {
        let (size, slide) = match self.shape {
            Shape::Tumbling { size_ms } => (size_ms, size_ms),
            Shape::Sliding { size_ms, slide_ms } => (size_ms, slide_ms),
            Shape::Session { .. } => return vec![t_ms],
        };
        let last = t_ms
            .div_euclid(slide)
            .checked_mul(slide)
            .unwrap_or(i64::MIN);
        let mut out = vec![last];
        let mut s = last;
        while let Some(prev) = s.checked_sub(slide) {
            if prev.saturating_add(size) <= t_ms {
                break;
            }
            out.push(prev);
            s = prev;
        }
        out.reverse();
        out
    }

    /// The start of the one window holding `t_ms` when windows tumble (as [`WindowState::starts_of`]
    /// computes it, without a list); `None` for the other shapes.
    fn tumbling_start(&self, t_ms: i64) -> Option<i64> {
        match self.shape {
            Shape::Tumbling { size_ms } => Some(
                t_ms.div_euclid(size_ms)
                    .checked_mul(size_ms)
                    .unwrap_or(i64::MIN),
            ),
            _ => None,
        }
    }

    /// Start of the (first) window holding `t_ms`.
    pub fn window_start(&self, t_ms: i64) -> i64 {
        self.starts_of(t_ms)[0]
    }

    /// End (exclusive) of a tumbling or sliding window starting at `start`, or of a new session.
    fn window_end(&self, start: i64) -> i64 {
        match self.shape {
            Shape::Tumbling { size_ms } | Shape::Sliding { size_ms, .. } => {
                start.saturating_add(size_ms)
            }
            Shape::Session { gap_ms } => start.saturating_add(gap_ms),
        }
    }

    /// True when a row at `t_ms` would be dropped as late.
    pub fn is_late(&self, t_ms: i64) -> bool {
        self.watermark.is_some_and(|w| t_ms < w)
    }

    /// Sessions of `key` that a row at `t_ms` joins (its interval `[t, t + gap)` overlaps theirs).
    fn sessions_hit(&self, t_ms: i64, key: &str) -> Vec<(i64, String)> {
        let end = self.window_end(t_ms);
        self.open
            .iter()
            .filter(|((s, k), c)| k == key && *s < end && t_ms < c.end)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The cells a row at `t_ms` of `key` counts in, as `(start, key)`; for sessions one cell per
    /// key (every open session of the key and the row may merge into one).
    pub fn cells_of(&self, t_ms: i64, key: &str) -> Vec<(i64, String)> {
        self.cell_starts(t_ms)
            .into_iter()
            .map(|s| (s, key.to_string()))
            .collect()
    }

    /// The starts of [`WindowState::cells_of`], the same for every key: what a check needs to
    /// name a row's cells without a copy of its key per cell.
    pub fn cell_starts(&self, t_ms: i64) -> Vec<i64> {
        if self.is_session() {
            return vec![i64::MIN];
        }
        self.starts_of(t_ms)
    }

    /// What the cell (as [`WindowState::cells_of`] names it) holds now, and the row it would emit
    /// at time `t_ms` (start, end, emitted total).
    fn current(&self, cell: &(i64, String), t_ms: i64) -> (Vec<Acc>, i64, i64, i64) {
        if self.is_session() {
            let mut accs = vec![Acc::default(); self.aggs.len()];
            let (mut start, mut end) = (t_ms, self.window_end(t_ms));
            for ((s, k), c) in &self.open {
                if *k == cell.1 {
                    for (i, (kind, _)) in self.aggs.iter().enumerate() {
                        // a merge that overflows is refused by the bounds below
                        let _ = accs[i].merge(*kind, &c.accs[i]);
                    }
                    start = start.min(*s);
                    end = end.max(c.end);
                }
            }
            return (accs, start, end, 0);
        }
        match self.open.get(cell) {
            Some(c) => (c.accs.clone(), cell.0, c.end, c.emitted_total),
            None => (
                vec![Acc::default(); self.aggs.len()],
                cell.0,
                self.window_end(cell.0),
                0,
            ),
        }
    }

    /// The lowest and highest row the cell can emit at time `t_ms` when `pending` (one per
    /// aggregate) is added, whichever subset of it is applied, each also with its whole total
    /// as delta (what an additive sink accumulates). `None` when a bound leaves `i64`: a row
    /// would overflow the window's sum or delta.
    pub fn bounds(
        &self,
        cell: &(i64, String),
        t_ms: i64,
        pending: &[Pending],
    ) -> Option<Vec<WindowRow>> {
        let (accs, start, end, emitted_total) = self.current(cell, t_ms);
        let mut lows = Vec::with_capacity(self.aggs.len());
        let mut highs = Vec::with_capacity(self.aggs.len());
        for (i, (kind, name)) in self.aggs.iter().enumerate() {
            let (a, p) = (&accs[i], pending.get(i).copied().unwrap_or_default());
            let (lo, hi) = match kind {
                AggKind::Sum => (
                    AggValue::Int(a.sum.checked_add(p.neg)?),
                    AggValue::Int(a.sum.checked_add(p.pos)?),
                ),
                AggKind::Count => (AggValue::Int(a.n), AggValue::Int(a.n.checked_add(p.k)?)),
                AggKind::Min => {
                    let lo = match (a.min, p.lo) {
                        (Some(m), Some(v)) => m.min(v),
                        (m, v) => m.or(v).unwrap_or(0),
                    };
                    (
                        AggValue::Int(lo),
                        AggValue::Int(a.min.or(p.hi).unwrap_or(0)),
                    )
                }
                AggKind::Max => {
                    let hi = match (a.max, p.hi) {
                        (Some(m), Some(v)) => m.max(v),
                        (m, v) => m.or(v).unwrap_or(0),
                    };
                    (
                        AggValue::Int(a.max.or(p.lo).unwrap_or(0)),
                        AggValue::Int(hi),
                    )
                }
                AggKind::Avg => {
                    a.sum.checked_add(p.neg)?;
                    a.sum.checked_add(p.pos)?;
                    let cur = (a.n > 0).then(|| a.sum as f64 / a.n as f64);
                    let lo = [cur, p.lo.map(|v| v as f64)]
                        .into_iter()
                        .flatten()
                        .fold(f64::INFINITY, f64::min);
                    let hi = [cur, p.hi.map(|v| v as f64)]
                        .into_iter()
                        .flatten()
                        .fold(f64::NEG_INFINITY, f64::max);
                    let fix = |x: f64| if x.is_finite() { x } else { 0.0 };
                    (AggValue::Float(fix(lo)), AggValue::Float(fix(hi)))
                }
            };
            lows.push((name.clone(), lo));
            highs.push((name.clone(), hi));
        }
        let mut out = Vec::with_capacity(4);
        for values in [lows, highs] {
            let total = values[0].1.as_i64();
            let row = WindowRow {
                start_ms: start,
                end_ms: end,
                key: cell.1.clone(),
                total,
                delta: total.checked_sub(emitted_total)?,
                values,
            };
            out.push(WindowRow {
                delta: total,
                ..row.clone()
            });
            out.push(row);
        }
        Some(out)
    }

    /// The current watermark (none before the first batch).
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// Counts a late row dropped without reading it.
    pub fn drop_late(&mut self) {
        self.late = self.late.saturating_add(1);
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
        if self.mode == Mode::Complete {
            return false;
        }
        let wm = now_ms
            .saturating_sub(self.delay_ms)
            .max(self.watermark.unwrap_or(i64::MIN));
        self.open.values().any(|c| c.end <= wm)
    }

    fn overflow(&self, key: &str, start: i64, values: &[i64]) -> Error {
        invalid(format!(
            "the window aggregate of '{key}' at {} overflows a 64-bit integer (adding {values:?})",
            fmt_ms(start)
        ))
    }

    /// Adds a row at time `t_ms` for `key` with one value per aggregate; `Ok(false)` (and
    /// counted) when the row is late. An aggregate that would leave `i64` is an error and changes
    /// nothing.
    pub fn add(&mut self, t_ms: i64, key: &str, values: &[i64]) -> Result<bool> {
        if self.is_late(t_ms) {
            self.late = self.late.saturating_add(1);
            return Ok(false);
        }
        if values.len() != self.aggs.len() {
            return Err(invalid(format!(
                "{} values for {} aggregates",
                values.len(),
                self.aggs.len()
            )));
        }
        let add_row = |accs: &mut [Acc]| -> Option<()> {
            for (i, (kind, _)) in self.aggs.iter().enumerate() {
                accs[i].add(*kind, values[i])?;
            }
            Some(())
        };
        let fresh = || Cell {
            end: 0,
            accs: vec![Acc::default(); values.len()],
            emitted: None,
            emitted_total: 0,
        };
        // every changed cell is computed first, then stored: an error changes nothing
        let mut changed: Vec<((i64, String), Cell)> = Vec::new();
        let mut removed: Vec<(i64, String)> = Vec::new();
        if self.is_session() {
            let hit = self.sessions_hit(t_ms, key);
            let mut cell = fresh();
            let (mut start, mut end) = (t_ms, self.window_end(t_ms));
            for id in &hit {
                let c = &self.open[id];
                for (i, (kind, _)) in self.aggs.iter().enumerate() {
                    cell.accs[i]
                        .merge(*kind, &c.accs[i])
                        .ok_or_else(|| self.overflow(key, id.0, values))?;
                }
                start = start.min(id.0);
                end = end.max(c.end);
            }
            if let [only] = hit.as_slice() {
                if only.0 == start {
                    // the row extends one session in place: what was emitted stays emitted
                    cell.emitted = self.open[only].emitted.clone();
                    cell.emitted_total = self.open[only].emitted_total;
                }
            }
            add_row(&mut cell.accs).ok_or_else(|| self.overflow(key, start, values))?;
            cell.end = end;
            removed = hit;
            changed.push(((start, key.to_string()), cell));
        } else {
            if let Some(s) = self.tumbling_start(t_ms) {
                // one window: the cell is looked up with the borrowed key, which is copied only
                // when the cell is new
                let id: &dyn CellId = &(s, key);
                let ok = self.open.get(id).is_none_or(|c| {
                    self.aggs
                        .iter()
                        .zip(&c.accs)
                        .zip(values)
                        .all(|(((kind, _), a), v)| a.can_add(*kind, *v))
                });
                if !ok {
                    return Err(self.overflow(key, s, values));
                }
                if !self.open.contains_key(id) {
                    let end = self.window_end(s);
                    self.open
                        .insert((s, key.to_string()), Cell { end, ..fresh() });
                }
                if let Some(cell) = self.open.get_mut(id) {
                    for (i, (kind, _)) in self.aggs.iter().enumerate() {
                        // cannot fail: checked above
                        let _ = cell.accs[i].add(*kind, values[i]);
                    }
                }
                self.max_seen = Some(self.max_seen.map_or(t_ms, |m| m.max(t_ms)));
                return Ok(true);
            }
            let starts = self.starts_of(t_ms);
            // checked before anything changes, so the cells are updated in place
            for s in &starts {
                let id = (*s, key.to_string());
                let ok = match self.open.get(&id) {
                    Some(c) => self
                        .aggs
                        .iter()
                        .zip(&c.accs)
                        .zip(values)
                        .all(|(((kind, _), a), v)| a.can_add(*kind, *v)),
                    None => true,
                };
                if !ok {
                    return Err(self.overflow(key, *s, values));
                }
            }
            for s in starts {
                let end = self.window_end(s);
                let cell = self
                    .open
                    .entry((s, key.to_string()))
                    .or_insert_with(|| Cell { end, ..fresh() });
                for (i, (kind, _)) in self.aggs.iter().enumerate() {
                    // cannot fail: checked above
                    let _ = cell.accs[i].add(*kind, values[i]);
                }
            }
        }
        for id in removed {
            self.open.remove(&id);
        }
        self.open.extend(changed);
        self.max_seen = Some(self.max_seen.map_or(t_ms, |m| m.max(t_ms)));
        Ok(true)
    }

    /// A row to emit for a cell; an error when its delta leaves `i64`.
    fn emitted_row(&self, start: i64, key: &str, cell: &Cell) -> Result<WindowRow> {
        let values: Vec<(String, AggValue)> = self
            .aggs
            .iter()
            .zip(&cell.accs)
            .map(|((kind, name), a)| (name.clone(), a.value(*kind)))
            .collect();
        let total = values[0].1.as_i64();
        let delta = total.checked_sub(cell.emitted_total).ok_or_else(|| {
            invalid(format!(
                "the window delta of '{key}' at {} overflows a 64-bit integer ({total} − {})",
                fmt_ms(start),
                cell.emitted_total
            ))
        })?;
        Ok(WindowRow {
            start_ms: start,
            end_ms: cell.end,
            key: key.to_string(),
            total,
            delta,
            values,
        })
    }

    fn changed(&self, cell: &Cell) -> bool {
        let now: Vec<AggValue> = self
            .aggs
            .iter()
            .zip(&cell.accs)
            .map(|((kind, _), a)| a.value(*kind))
            .collect();
        cell.emitted.as_ref() != Some(&now)
    }

    /// Marks the emitted rows as emitted.
    fn mark(&mut self, rows: &[WindowRow]) {
        for r in rows {
            if let Some(c) = self.open.get_mut(&(r.start_ms, r.key.clone())) {
                c.emitted = Some(r.values.iter().map(|(_, v)| *v).collect());
                c.emitted_total = r.total;
            }
        }
    }

    /// Ends a batch: moves time to at least `now_ms` (the batch time for processing-time
    /// windows; `None` for event time), updates the watermark and returns the rows to emit.
    /// On an error the state is unchanged only if the caller works on a copy (the window operator does).
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
        for ((start, key), cell) in &self.open {
            let done = cell.end <= wm;
            let emit = match self.mode {
                Mode::Append => done,
                Mode::Update => self.changed(cell),
                Mode::Complete => true,
            };
            if emit {
                out.push(self.emitted_row(*start, key, cell)?);
            }
            if done && self.mode != Mode::Complete {
                closed.push((*start, key.clone()));
            }
        }
        self.mark(&out);
        for k in closed {
            self.open.remove(&k);
        }
        Ok(out)
    }

    /// The final flush (on stop). In append mode: emits every open window and closes it, the
    /// watermark moving to the end of the last one, so no window is emitted twice when the query
    /// restarts within it (see the module doc). In update and complete modes: emits the changed
    /// (update) or all (complete) windows and keeps them open, marked as emitted, so a restart
    /// goes on adding to them and emits their change.
    pub fn flush(&mut self) -> Result<Vec<WindowRow>> {
        let out = self
            .open
            .iter()
            .filter(|(_, c)| self.mode != Mode::Update || self.changed(c))
            .map(|((start, key), c)| self.emitted_row(*start, key, c))
            .collect::<Result<Vec<_>>>()?;
        if self.mode == Mode::Append {
            if let Some(end) = self.open.values().map(|c| c.end).max() {
                self.watermark = Some(self.watermark.map_or(end, |w| w.max(end)));
            }
            self.open.clear();
        } else {
            self.mark(&out);
        }
        Ok(out)
    }

    /// The state as JSON, for the checkpoint.
    pub fn to_json(&self) -> serde_json::Value {
        let snap = Snapshot {
            shape: self.shape,
            aggs: self.aggs.clone(),
            delay_ms: self.delay_ms,
            mode: self.mode,
            max_seen: self.max_seen,
            watermark: self.watermark,
            open: self
                .open
                .iter()
                .map(|((s, k), c)| (*s, k.clone(), c.clone()))
                .collect(),
            late: self.late,
        };
        serde_json::to_value(snap).unwrap_or(serde_json::Value::Null)
    }

    /// A state of the earlier format (tumbling windows with one sum) in today's, when this state
    /// is the same windows with one sum.
    fn migrated(&self, v: &serde_json::Value) -> Option<Snapshot> {
        let old: TumblingSumSnapshot = serde_json::from_value(v.clone()).ok()?;
        let one_sum = matches!(self.aggs.as_slice(), [(AggKind::Sum, _)]);
        if !one_sum
            || self.shape
                != (Shape::Tumbling {
                    size_ms: old.size_ms,
                })
        {
            return None;
        }
        let open = old
            .open
            .into_iter()
            .map(|(start, key, total, emitted)| {
                let cell = Cell {
                    end: start.saturating_add(old.size_ms),
                    accs: vec![Acc {
                        sum: total,
                        ..Acc::default()
                    }],
                    emitted: Some(vec![AggValue::Int(emitted)]),
                    emitted_total: emitted,
                };
                (start, key, cell)
            })
            .collect();
        Some(Snapshot {
            shape: self.shape,
            aggs: self.aggs.clone(),
            delay_ms: old.delay_ms,
            mode: old.mode,
            max_seen: old.max_seen,
            watermark: old.watermark,
            open,
            late: old.late,
        })
    }

    /// Restores the state written by [`WindowState::to_json`] (or by the first release, tumbling
    /// windows with one sum); the shape and aggregates must match.
    pub fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        if v.is_null() {
            return Ok(());
        }
        let s: Snapshot = match serde_json::from_value(v.clone()) {
            Ok(s) => s,
            Err(e) => self.migrated(v).ok_or_else(|| {
                invalid(format!(
                    "window state in checkpoint: {e}; use a new query name or reset its checkpoint (`stream::checkpoint::reset`)"
                ))
            })?,
        };
        if s.shape != self.shape || s.aggs != self.aggs {
            return Err(invalid(format!(
                "the checkpoint holds windows {:?} with {:?} but the query asks for {:?} with {:?}: use a new query name or reset its checkpoint (`stream::checkpoint::reset`)",
                s.shape, s.aggs, self.shape, self.aggs
            )));
        }
        self.max_seen = s.max_seen;
        self.watermark = s.watermark;
        self.late = s.late;
        self.open = s.open.into_iter().map(|(st, k, c)| ((st, k), c)).collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::clock::{Clock, ManualClock};

    const S: i64 = 1000;

    fn state(mode: Mode) -> WindowState {
        WindowState::tumbling_sum(5 * S, 5 * S, mode).expect("state")
    }

    fn sums(rows: &[WindowRow]) -> Vec<(i64, &str, i64)> {
        rows.iter()
            .map(|r| (r.start_ms / S, r.key.as_str(), r.total))
            .collect()
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
        let t = clock.now_ms();
        assert!(w.add(t, "FAQ", &[3]).expect("window"));
        assert!(w.add(t, "FAQ", &[4]).expect("window"));
        assert!(w.add(t, "Order", &[1]).expect("window"));
        assert!(w.end_batch(Some(t)).expect("window").is_empty());
        assert_eq!(w.watermark(), Some(95 * S));
        assert!(
            !w.would_close_at(109_999) && w.would_close_at(110 * S),
            "an empty batch is only needed at 110 s"
        );
        clock.set(106 * S);
        assert!(w.add(clock.now_ms(), "FAQ", &[10]).expect("window"));
        assert!(w.end_batch(Some(clock.now_ms())).expect("w").is_empty());
        clock.set(110 * S - 1);
        assert!(w.end_batch(Some(clock.now_ms())).expect("w").is_empty());
        clock.set(110 * S);
        let out = w.end_batch(Some(clock.now_ms())).expect("window");
        assert_eq!(sums(&out), [(100, "FAQ", 7), (100, "Order", 1)]);
        assert_eq!(out[0].delta, 7);
        assert_eq!(out[0].values, [("sum".to_string(), AggValue::Int(7))]);
        assert!(
            w.end_batch(Some(clock.now_ms())).expect("w").is_empty(),
            "a window is emitted once"
        );
        clock.set(115 * S);
        let out = w.end_batch(Some(clock.now_ms())).expect("window");
        assert_eq!(sums(&out), [(105, "FAQ", 10)]);
        assert_eq!(out[0].end_ms, 110 * S);
        assert_eq!(w.open_cells(), 0);
    }

    #[test]
    fn late_event_time_rows_are_counted_and_dropped() {
        let mut w = state(Mode::Append);
        assert!(w.add(20 * S, "A", &[1]).expect("window"));
        assert!(w.add(12 * S, "A", &[1]).expect("window"));
        let first = w.end_batch(None).expect("window"); // watermark 15 s closes [10,15)
        assert_eq!(sums(&first), [(10, "A", 1)]);
        assert_eq!(w.watermark(), Some(15 * S));
        assert!(
            !w.add(14 * S, "A", &[100]).expect("w"),
            "below the watermark"
        );
        assert!(
            w.add(15 * S, "A", &[2]).expect("w"),
            "at the watermark is on time"
        );
        assert_eq!(w.late_rows(), 1);
        assert!(w.end_batch(None).expect("window").is_empty());
        assert_eq!(
            w.watermark(),
            Some(15 * S),
            "an empty event-time batch keeps it"
        );
        assert!(w.add(31 * S, "A", &[5]).expect("window"));
        let out = w.end_batch(None).expect("window"); // watermark 26 s
        assert_eq!(sums(&out), [(15, "A", 2), (20, "A", 1)]);
        let rest = w.flush().expect("window");
        assert_eq!(sums(&rest), [(30, "A", 5)]);
        assert_eq!(
            w.watermark(),
            Some(35 * S),
            "the flush closes [30, 35): the watermark moves to its end"
        );
        assert!(
            !w.add(34 * S, "A", &[1]).expect("window"),
            "late after the flush"
        );
        assert!(w.add(35 * S, "A", &[1]).expect("window"));
    }

    #[test]
    fn update_mode_emits_changes_with_deltas() {
        let mut w = state(Mode::Update);
        w.add(100 * S, "A", &[3]).expect("window");
        let out = w.end_batch(Some(100 * S)).expect("window");
        assert_eq!((out[0].total, out[0].delta), (3, 3));
        assert!(
            w.end_batch(Some(101 * S)).expect("window").is_empty(),
            "unchanged windows are not repeated"
        );
        w.add(101 * S, "A", &[4]).expect("window");
        let out = w.end_batch(Some(101 * S)).expect("window");
        assert_eq!((out[0].total, out[0].delta), (7, 4));
        assert!(w.end_batch(Some(120 * S)).expect("window").is_empty());
        assert_eq!(w.open_cells(), 0);
    }

    #[test]
    fn complete_mode_emits_every_window_every_batch_and_keeps_them() {
        let mut w = state(Mode::Complete);
        w.add(100 * S, "A", &[3]).expect("window");
        assert_eq!(
            sums(&w.end_batch(Some(100 * S)).expect("w")),
            [(100, "A", 3)]
        );
        w.add(120 * S, "B", &[4]).expect("window");
        let out = w.end_batch(Some(120 * S)).expect("w");
        assert_eq!(sums(&out), [(100, "A", 3), (120, "B", 4)]);
        assert_eq!(out[0].delta, 0, "unchanged since its last emission");
        assert_eq!(w.open_cells(), 2, "closed windows stay in complete mode");
        assert!(!w.would_close_at(i64::MAX));
    }

    #[test]
    fn the_tumbling_start_is_the_one_start_of_the_list() {
        let w = state(Mode::Append);
        for t in [
            0,
            1,
            5 * S - 1,
            5 * S,
            12 * S,
            -1,
            -5 * S,
            i64::MIN,
            i64::MAX,
        ] {
            assert_eq!(
                w.tumbling_start(t).map(|s| vec![s]),
                Some(w.starts_of(t)),
                "{t}"
            );
        }
    }

    #[test]
    fn a_borrowed_cell_id_finds_the_owned_one() {
        let mut open: BTreeMap<(i64, String), u8> = BTreeMap::new();
        open.insert((5, "B".into()), 1);
        open.insert((5, "A".into()), 2);
        open.insert((0, "C".into()), 3);
        let get = |s: i64, k: &str| open.get(&(s, k) as &dyn CellId).copied();
        assert_eq!(
            (get(5, "A"), get(5, "B"), get(0, "C")),
            (Some(2), Some(1), Some(3))
        );
        assert_eq!((get(0, "A"), get(5, "C"), get(5, "")), (None, None, None));
    }

    #[test]
    fn sliding_windows_count_a_row_in_each_window_holding_it() {
        let mut w = WindowState::new(
            Shape::Sliding {
                size_ms: 10 * S,
                slide_ms: 5 * S,
            },
            vec![(AggKind::Sum, "sum".into()), (AggKind::Count, "n".into())],
            0,
            Mode::Append,
        )
        .expect("state");
        assert_eq!(w.starts_of(12 * S), [5 * S, 10 * S]);
        assert_eq!(w.starts_of(10 * S), [5 * S, 10 * S]);
        assert_eq!(w.starts_of(-1), [-10 * S, -5 * S]);
        w.add(7 * S, "A", &[1, 1]).expect("w"); // [0,10) [5,15)
        w.add(12 * S, "A", &[2, 1]).expect("w"); // [5,15) [10,20)
        let out = w.end_batch(None).expect("w"); // watermark 12 s closes [0,10)
        assert_eq!(sums(&out), [(0, "A", 1)]);
        w.add(30 * S, "A", &[4, 1]).expect("w"); // watermark 30 s
        let out = w.end_batch(None).expect("w");
        assert_eq!(sums(&out), [(5, "A", 3), (10, "A", 2)]);
        assert_eq!(out[0].value("n"), Some(AggValue::Int(2)));
        assert!(WindowState::new(
            Shape::Sliding {
                size_ms: 5,
                slide_ms: 10
            },
            vec![(AggKind::Sum, "s".into())],
            0,
            Mode::Append
        )
        .is_err());
    }

    #[test]
    fn sessions_grow_merge_and_close_after_the_gap() {
        let mut w = WindowState::new(
            Shape::Session { gap_ms: 10 * S },
            vec![
                (AggKind::Sum, "sum".into()),
                (AggKind::Avg, "avg".into()),
                (AggKind::Min, "min".into()),
                (AggKind::Max, "max".into()),
            ],
            0,
            Mode::Append,
        )
        .expect("state");
        w.add(100 * S, "A", &[2, 2, 2, 2]).expect("w"); // [100,110)
        w.add(130 * S, "A", &[4, 4, 4, 4]).expect("w"); // [130,140): apart
        w.add(100 * S, "B", &[1, 1, 1, 1]).expect("w");
        assert_eq!(w.open_cells(), 3);
        w.add(121 * S, "A", &[6, 6, 6, 6]).expect("w"); // [121,131) touches [130,140)
        w.add(109 * S, "A", &[8, 8, 8, 8]).expect("w"); // extends [100,110) to [100,119)
        assert_eq!(w.open_cells(), 3);
        w.add(115 * S, "A", &[1, 1, 1, 1]).expect("w"); // bridges both: one session [100,140)
        assert_eq!(w.open_cells(), 2);
        // watermark 130 s: B's session [100,110) is over, A's [100,140) is not
        assert_eq!(sums(&w.end_batch(None).expect("w")), [(100, "B", 1)]);
        let out = w.flush().expect("w");
        assert_eq!(out.len(), 1);
        let a = out.iter().find(|r| r.key == "A").expect("A");
        assert_eq!((a.start_ms, a.end_ms), (100 * S, 140 * S));
        assert_eq!(a.total, 21);
        assert_eq!(a.value("avg"), Some(AggValue::Float(21.0 / 5.0)));
        assert_eq!(a.value("min"), Some(AggValue::Int(1)));
        assert_eq!(a.value("max"), Some(AggValue::Int(8)));
    }

    #[test]
    fn a_session_closes_when_the_watermark_passes_its_end() {
        let mut w = WindowState::new(
            Shape::Session { gap_ms: 10 * S },
            vec![(AggKind::Count, "count".into())],
            0,
            Mode::Append,
        )
        .expect("state");
        w.add(100 * S, "A", &[1]).expect("w");
        assert!(w.end_batch(None).expect("w").is_empty());
        w.add(105 * S, "A", &[1]).expect("w"); // [100,115)
        w.add(116 * S, "B", &[1]).expect("w"); // watermark 116 s closes A
        let out = w.end_batch(None).expect("w");
        assert_eq!(sums(&out), [(100, "A", 2)]);
        assert_eq!(out[0].end_ms, 115 * S);
    }

    #[test]
    fn state_survives_a_checkpoint_round_trip() {
        let mut w = WindowState::new(
            Shape::Session { gap_ms: 5 * S },
            vec![(AggKind::Sum, "sum".into())],
            5 * S,
            Mode::Update,
        )
        .expect("state");
        w.add(100 * S, "A", &[3]).expect("window");
        w.end_batch(Some(100 * S)).expect("window");
        w.add(90 * S, "A", &[3]).expect("window"); // late
        let mut r = w.clone();
        r.open.clear();
        r.restore(&w.to_json()).expect("restore");
        assert_eq!(r, w);
        let mut other = state(Mode::Append);
        assert!(
            other.restore(&w.to_json()).is_err(),
            "another shape is refused"
        );
        assert!(WindowState::tumbling_sum(0, 0, Mode::Append).is_err());
    }

    #[test]
    fn a_state_of_the_first_release_is_read_as_its_windows_with_one_sum() {
        let old = serde_json::json!({
            "size_ms": 5000, "delay_ms": 5000, "mode": "Append", "max_seen": 101000,
            "watermark": 96000, "open": [[100000, "FAQ", 7, 0]], "late": 2
        });
        let mut w = state(Mode::Append);
        w.restore(&old).expect("migrated");
        assert_eq!(
            (w.watermark(), w.late_rows(), w.open_cells()),
            (Some(96 * S), 2, 1)
        );
        let out = w.end_batch(Some(110 * S)).expect("w");
        assert_eq!(sums(&out), [(100, "FAQ", 7)]);
        let mut sliding = WindowState::new(
            Shape::Sliding {
                size_ms: 5000,
                slide_ms: 1000,
            },
            vec![(AggKind::Sum, "sum".into())],
            0,
            Mode::Append,
        )
        .expect("state");
        assert!(sliding.restore(&old).is_err(), "other windows are refused");
    }

    #[test]
    fn a_sum_that_would_overflow_is_an_error_and_changes_nothing() {
        let mut w = WindowState::new(
            Shape::Sliding {
                size_ms: 10 * S,
                slide_ms: 5 * S,
            },
            vec![(AggKind::Sum, "sum".into())],
            0,
            Mode::Append,
        )
        .expect("state");
        assert!(w.add(100 * S, "A", &[i64::MAX - 1]).expect("window"));
        assert!(w.add(106 * S, "A", &[1]).expect("window")); // [100,110) at MAX, [105,115) at 1
        let before = w.clone();
        let e = w.add(107 * S, "A", &[1]).expect_err("overflow");
        assert!(e.to_string().contains("overflows"), "{e}");
        assert_eq!(w, before, "a refused row leaves every window as it was");
        assert!(
            w.add(106 * S, "B", &[2]).expect("window"),
            "other cells go on"
        );
        // bounds: the highest total any subset of the batch's rows can reach
        let cell = (100 * S, "A".to_string());
        let p = Pending::default().with(1).expect("pending");
        assert!(
            w.bounds(&cell, 100 * S, &[p]).is_none(),
            "one more overflows"
        );
        let p = Pending::default().with(-5).expect("pending");
        let rows = w.bounds(&cell, 100 * S, &[p]).expect("bounds");
        let totals: Vec<i64> = rows.iter().map(|r| r.total).collect();
        assert_eq!(totals, [i64::MAX - 5, i64::MAX - 5, i64::MAX, i64::MAX]);
    }

    #[test]
    fn times_at_the_ends_of_i64_never_panic() {
        let mut w = state(Mode::Update);
        assert_eq!(w.window_start(i64::MIN), i64::MIN, "saturates");
        assert!(w.add(i64::MAX, "A", &[1]).expect("window"));
        assert!(w.add(i64::MIN, "A", &[1]).expect("window"));
        let out = w.end_batch(None).expect("window");
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|r| r.end_ms >= r.start_ms));
        assert_eq!(w.watermark(), Some(i64::MAX - 5 * S));
        assert!(!w.would_close_at(i64::MAX));
        assert_eq!(w.flush().expect("window").len(), 0);
    }
}
