//! Streams as typed pipelines of operators (Spark's streaming DataFrame, Arroyo's operators).
//!
//! A [`Stream<T, R>`] describes rows of type `T` computed from the rows `R` that a source
//! decodes: [`Stream::read`] a [`Source`], then [`filter`](Stream::filter),
//! [`map`](Stream::map) into another row type, put a watermark on it
//! ([`with_watermark`](Stream::with_watermark) on processing time,
//! [`with_event_time`](Stream::with_event_time)), [`window`](Timed::window) it or
//! [drop duplicates](Timed::drop_duplicates_within_watermark), and join each row with a
//! MariaDB table ([`lookup`](Stream::lookup), refreshed on the rule of [`lookup`]). A stream is a
//! description: it can be used several times, and each use that ends in a sink
//! ([`write`](Stream::write)) is a [`Branch`] with its own operator state. A query
//! ([`crate::stream::Query::start`]) runs the branches of one read: every batch is read and
//! decoded once, and each branch computes its rows from it and writes them.
//!
//! ```no_run
//! use bde_kit::course::visit::Visit;
//! use bde_kit::stream::{sink, KafkaSource, Query, Start, Stream, Trigger, Window, sum};
//! use std::time::Duration;
//! # fn main() -> bde_kit::Result<()> {
//! let visits = Stream::<Visit>::read(KafkaSource::new("visits").starting(Start::Latest));
//! let carts = visits
//!     .filter(|v| v.last_action == "ShoppingCart")
//!     .write(sink::KafkaSink::new("carts", Visit::csv_line));
//! let per_action = visits
//!     .with_watermark(Duration::from_secs(5))
//!     .window(Window::tumbling(Duration::from_secs(5)), |v| v.last_action.clone())
//!     .agg([sum(|v: &Visit| v.duration as i64)])
//!     .write(sink::MemorySink::new("per_action"));
//! let job = Query::new("analytics")
//!     .trigger(Trigger::every(Duration::from_secs(1)))
//!     .start([carts, per_action])?;
//! # Ok(()) }
//! ```
//!
//! Exactly-once: an operator computes a batch from its committed state and keeps the result
//! aside; only after the branch's sink applied the batch does the state move on
//! ([`Op::commit`]), and the query saves it in the checkpoint with the batch's offsets. A retried
//! or replayed batch therefore computes the same rows.
//!
//! Dead letters: a sink refuses rows it would always reject ([`Sink::check`]); each operator
//! translates those refusals back to the rows of the read that caused them (a filter or a map
//! row by row, a window through the cells a row adds to), so the engine dead-letters the
//! source records and no branch applies them.

mod dedup;
pub mod lookup;
mod stateless;
pub mod windowing;

pub use lookup::{MariaDbLookup, Record};
pub use windowing::{sum, Agg, Timed, Window, Windowing};

/// The aggregates of a window, by name (`agg::sum(|v: &Visit| v.duration)`, `agg::count()`),
/// apart from Polars' expressions of the same names.
pub mod agg {
    pub use super::windowing::{avg, count, max, min, sum};
}

use std::sync::Arc;

use crate::config::Settings;
use crate::error::Result;
use crate::stream::row::Row;
use crate::stream::sink::{BatchInfo, Probe, Sink};
use crate::stream::source::Source;

/// What a stream can carry: plain data, shared across the engine's threads.
pub trait Data: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> Data for T {}

/// A batch of rows an operator hands on: the input itself (no copy) or new rows.
pub enum Rows<'a, T> {
    Borrowed(&'a [T]),
    Owned(Vec<T>),
}

impl<T> std::ops::Deref for Rows<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Rows::Borrowed(r) => r,
            Rows::Owned(v) => v,
        }
    }
}

/// Rejections: indexes into a batch's rows, with the reason.
pub type Refusals = Vec<(usize, String)>;

/// One operator from rows `I` to rows `O`. Operators with state compute a batch on a copy and
/// keep it until [`Op::commit`].
pub trait Op<I, O>: Send {
    /// Called once when the query starts.
    fn open(&mut self, _query: &str, _settings: &Settings) -> Result<()> {
        Ok(())
    }

    /// The input rows to refuse: the operator's own refusals plus those of everything
    /// downstream (`down` judges output rows), as indexes into `rows`. Pure: depends only on the
    /// rows, the batch and the committed state.
    fn check(&self, batch: &BatchInfo, rows: &[I], down: &dyn Fn(&[O]) -> Refusals) -> Refusals;

    /// The output rows of a batch, computed from the committed state.
    fn run<'a>(&mut self, batch: &BatchInfo, rows: Rows<'a, I>) -> Result<Rows<'a, O>>;

    /// The batch the last [`Op::run`] computed was applied downstream: its state becomes the
    /// committed state.
    fn commit(&mut self) {}

    /// State to checkpoint (`None`: stateless).
    fn state(&self) -> Option<serde_json::Value> {
        None
    }

    /// Restores what [`Op::state`] returned.
    fn restore(&mut self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }

    /// The operator's watermark, engine milliseconds.
    fn watermark(&self) -> Option<i64> {
        None
    }

    /// Rows dropped as late so far.
    fn late_rows(&self) -> u64 {
        0
    }

    /// True when an empty batch at processing time `now_ms` would still emit or drop something.
    fn wants_empty_batch(&self, _now_ms: i64) -> bool {
        false
    }
}

/// The identity: the rows of the read.
struct Source_;

impl<R: Data> Op<R, R> for Source_ {
    fn check(&self, _batch: &BatchInfo, rows: &[R], down: &dyn Fn(&[R]) -> Refusals) -> Refusals {
        down(rows)
    }
    fn run<'a>(&mut self, _batch: &BatchInfo, rows: Rows<'a, R>) -> Result<Rows<'a, R>> {
        Ok(rows)
    }
}

/// Two operators one after the other.
struct Then<I, M, O> {
    first: Box<dyn Op<I, M>>,
    second: Box<dyn Op<M, O>>,
}

impl<I: Data, M: Data, O: Data> Op<I, O> for Then<I, M, O> {
    fn open(&mut self, query: &str, settings: &Settings) -> Result<()> {
        self.first.open(query, settings)?;
        self.second.open(query, settings)
    }
    fn check(&self, batch: &BatchInfo, rows: &[I], down: &dyn Fn(&[O]) -> Refusals) -> Refusals {
        self.first.check(batch, rows, &|mid: &[M]| {
            self.second.check(batch, mid, down)
        })
    }
    fn run<'a>(&mut self, batch: &BatchInfo, rows: Rows<'a, I>) -> Result<Rows<'a, O>> {
        let mid = self.first.run(batch, rows)?;
        self.second.run(batch, mid)
    }
    fn commit(&mut self) {
        self.first.commit();
        self.second.commit();
    }
    fn state(&self) -> Option<serde_json::Value> {
        match (self.first.state(), self.second.state()) {
            (None, None) => None,
            (a, b) => Some(serde_json::json!([a, b])),
        }
    }
    fn restore(&mut self, state: &serde_json::Value) -> Result<()> {
        let null = serde_json::Value::Null;
        let (a, b) = match state.as_array().map(Vec::as_slice) {
            Some([a, b]) => (a, b),
            _ => (&null, &null),
        };
        if !a.is_null() {
            self.first.restore(a)?;
        }
        if !b.is_null() {
            self.second.restore(b)?;
        }
        Ok(())
    }
    fn watermark(&self) -> Option<i64> {
        self.second.watermark().or_else(|| self.first.watermark())
    }
    fn late_rows(&self) -> u64 {
        self.first
            .late_rows()
            .saturating_add(self.second.late_rows())
    }
    fn wants_empty_batch(&self, now_ms: i64) -> bool {
        self.first.wants_empty_batch(now_ms) || self.second.wants_empty_batch(now_ms)
    }
}

type Build<R, T> = Arc<dyn Fn() -> Box<dyn Op<R, T>> + Send + Sync>;

/// Rows of type `T` computed from the rows `R` of one read (see the [module](self)).
pub struct Stream<T, R = T> {
    pub(crate) source: Arc<dyn Source>,
    build: Build<R, T>,
}

impl<T, R> Clone for Stream<T, R> {
    fn clone(&self) -> Self {
        Stream {
            source: self.source.clone(),
            build: self.build.clone(),
        }
    }
}

impl<R: Row> Stream<R, R> {
    /// The rows of `source`, decoded as `R` (Spark's `spark.readStream`).
    pub fn read(source: impl Source + 'static) -> Stream<R, R> {
        Stream {
            source: Arc::new(source),
            build: Arc::new(|| Box::new(Source_)),
        }
    }
}

impl<T: Data, R: Row> Stream<T, R> {
    /// This stream followed by the operator `make` builds (a fresh one per branch).
    pub(crate) fn then<U: Data>(
        &self,
        make: impl Fn() -> Box<dyn Op<T, U>> + Send + Sync + 'static,
    ) -> Stream<U, R> {
        let first = self.build.clone();
        Stream {
            source: self.source.clone(),
            build: Arc::new(move || {
                Box::new(Then {
                    first: first(),
                    second: make(),
                })
            }),
        }
    }

    /// The rows for which `keep` is true (Spark's `filter`/`where`).
    pub fn filter(&self, keep: impl Fn(&T) -> bool + Send + Sync + 'static) -> Stream<T, R> {
        let keep = Arc::new(keep);
        self.then(move || Box::new(stateless::Filter::new(keep.clone())))
    }

    /// Each row turned into a row of another type (Spark's `select`/`withColumn`).
    pub fn map<U: Data>(&self, f: impl Fn(&T) -> U + Send + Sync + 'static) -> Stream<U, R> {
        let f = Arc::new(f);
        self.then(move || Box::new(stateless::Map::new(f.clone())))
    }

    /// A branch ending in `sink` (Spark's `writeStream`); start it with
    /// [`Query::start`](crate::stream::Query::start) together with the other branches of the read.
    pub fn write(&self, sink: impl Sink<T> + 'static) -> Branch<R> {
        Branch {
            source: self.source.clone(),
            pipe: Box::new(Ended {
                ops: (self.build)(),
                sink: Box::new(sink),
            }),
        }
    }
}

/// One way from a read to a sink: its operators (with their state) and the sink.
pub struct Branch<R> {
    pub(crate) source: Arc<dyn Source>,
    pub(crate) pipe: Box<dyn Pipe<R>>,
}

impl<R> Branch<R> {
    /// The branch's name (its sink's), unique within a query.
    pub fn name(&self) -> String {
        self.pipe.name()
    }

    /// Opens the operators and the sink (the engine does it when the query starts; public to
    /// drive a branch batch by batch in a test).
    pub fn open(&mut self, query: &str, settings: &Settings) -> Result<()> {
        self.pipe.open(query, settings)
    }

    /// The rows of the read the branch refuses (dead letters), by index, with the reason.
    pub fn check(&self, batch: &BatchInfo, rows: &[R]) -> Refusals {
        self.pipe.check(batch, rows)
    }

    /// Computes the batch through the operators and applies it to the sink; returns what the
    /// sink wrote.
    pub fn apply(&mut self, batch: &BatchInfo, rows: &[R]) -> Result<u64> {
        let plan = self.pipe.plan(batch)?;
        self.pipe.apply(batch, rows, &plan)
    }

    /// The operators' and sink's state, as the checkpoint stores it (`null`: stateless).
    pub fn state(&self) -> serde_json::Value {
        self.pipe.state()
    }

    /// Restores a state returned by [`Branch::state`] (after [`Branch::open`]).
    pub fn restore(&mut self, state: &serde_json::Value) -> Result<()> {
        self.pipe.restore(state)
    }

    /// The watermark of the branch's time operators, engine milliseconds.
    pub fn watermark(&self) -> Option<i64> {
        self.pipe.watermark()
    }

    /// Rows the branch dropped as late so far.
    pub fn late_rows(&self) -> u64 {
        self.pipe.late_rows()
    }
}

/// What the engine drives: a branch with its operators and sink behind one face.
pub(crate) trait Pipe<R>: Send {
    fn name(&self) -> String;
    fn open(&mut self, query: &str, settings: &Settings) -> Result<()>;
    fn plan(&mut self, batch: &BatchInfo) -> Result<serde_json::Value>;
    fn check(&self, batch: &BatchInfo, rows: &[R]) -> Refusals;
    /// Computes `rows` through the operators (no state moves on) and tries the output with
    /// [`Sink::probe`].
    fn probe(&mut self, batch: &BatchInfo, rows: &[R]) -> Option<Result<Probe>>;
    fn apply(&mut self, batch: &BatchInfo, rows: &[R], plan: &serde_json::Value) -> Result<u64>;
    fn state(&self) -> serde_json::Value;
    fn restore(&mut self, state: &serde_json::Value) -> Result<()>;
    fn watermark(&self) -> Option<i64>;
    fn late_rows(&self) -> u64;
    fn wants_empty_batch(&self, now_ms: i64) -> bool;
}

struct Ended<R, T> {
    ops: Box<dyn Op<R, T>>,
    sink: Box<dyn Sink<T>>,
}

impl<R: Data, T: Data> Pipe<R> for Ended<R, T> {
    fn name(&self) -> String {
        self.sink.name()
    }
    fn open(&mut self, query: &str, settings: &Settings) -> Result<()> {
        self.ops.open(query, settings)?;
        self.sink.open(query, settings)
    }
    fn plan(&mut self, batch: &BatchInfo) -> Result<serde_json::Value> {
        self.sink.plan(batch)
    }
    fn check(&self, batch: &BatchInfo, rows: &[R]) -> Refusals {
        self.ops
            .check(batch, rows, &|out: &[T]| self.sink.check(batch, out))
    }
    fn probe(&mut self, batch: &BatchInfo, rows: &[R]) -> Option<Result<Probe>> {
        // run computes from the committed state and keeps its result only until `commit`,
        // which a probe never calls: the apply that follows computes afresh
        let out = match self.ops.run(batch, Rows::Borrowed(rows)) {
            Ok(out) => out,
            Err(e) => return Some(Err(e)),
        };
        self.sink.probe(batch, &out)
    }
    fn apply(&mut self, batch: &BatchInfo, rows: &[R], plan: &serde_json::Value) -> Result<u64> {
        let out = self.ops.run(batch, Rows::Borrowed(rows))?;
        let n = self.sink.apply(batch, &out, plan)?;
        drop(out);
        self.ops.commit();
        Ok(n)
    }
    fn state(&self) -> serde_json::Value {
        let sink = self.sink.state();
        match self.ops.state() {
            None if sink.is_null() => serde_json::Value::Null,
            ops => serde_json::json!({ "ops": ops, "sink": sink }),
        }
    }
    fn restore(&mut self, state: &serde_json::Value) -> Result<()> {
        if let Some(ops) = state.get("ops").filter(|v| !v.is_null()) {
            self.ops.restore(ops)?;
        }
        match state.get("sink") {
            Some(s) if !s.is_null() => self.sink.restore(s),
            _ => Ok(()),
        }
    }
    fn watermark(&self) -> Option<i64> {
        self.ops.watermark()
    }
    fn late_rows(&self) -> u64 {
        self.ops.late_rows()
    }
    fn wants_empty_batch(&self, now_ms: i64) -> bool {
        self.ops.wants_empty_batch(now_ms)
    }
}
