//! Queries: the builder a notebook cell writes, the engine loop that runs in the background on
//! the kit's runtime, the handle that watches it, and the registry of running queries by name.
//!
//! ```no_run
//! use bde_kit::stream::{self, sink, KafkaSource, Query, Start, Trigger, Visit};
//! use std::time::Duration;
//! # fn main() -> bde_kit::Result<()> {
//! let q = Query::<Visit>::new("website-analytics")
//!     .source(KafkaSource::new("spark.streaming.website.visits").starting(Start::Latest))
//!     .trigger(Trigger::every(Duration::from_secs(1)))
//!     .sink(sink::kafka::KafkaCsv::new("spark.streaming.carts.abandoned").filter(|v: &Visit| v.last_action == "ShoppingCart"))
//!     .start()?;
//! q.for_duration(Duration::from_secs(30))?; // one line per batch, then returns
//! q.stop()?;
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::runtime;
use crate::stream::checkpoint::{self, Checkpoint, PendingBatch};
use crate::stream::clock::{Clock, SystemClock};
use crate::stream::deadletter::{DeadLetter, DeadLetterWriter};
use crate::stream::progress::{Progress, Status, Summary};
use crate::stream::row::Row;
use crate::stream::sink::{BatchInfo, Sink};
use crate::stream::source::{KafkaSource, Msg, Offsets, Reader};
use crate::stream::trigger::Trigger;

/// Batches kept in memory for `progress()`.
const KEEP: usize = 1000;

/// A streaming query being built.
pub struct Query<T: Row> {
    name: String,
    source: Option<KafkaSource>,
    sinks: Vec<Box<dyn Sink<T>>>,
    trigger: Trigger,
    clock: Arc<dyn Clock>,
    settings: Settings,
    checkpoint_root: Option<PathBuf>,
    replace: bool,
    final_flush: bool,
    quiet: bool,
}

impl<T: Row> Query<T> {
    /// A query named `name` (its checkpoint folder and sink markers derive from the name).
    pub fn new(name: &str) -> Query<T> {
        Query {
            name: name.into(),
            source: None,
            sinks: Vec::new(),
            trigger: Trigger::default(),
            clock: Arc::new(SystemClock),
            settings: Settings::from_env(),
            checkpoint_root: None,
            replace: false,
            final_flush: true,
            quiet: false,
        }
    }
    pub fn source(mut self, source: KafkaSource) -> Query<T> {
        self.source = Some(source);
        self
    }
    /// Adds a sink; every batch goes to every sink.
    pub fn sink(mut self, sink: impl Sink<T> + 'static) -> Query<T> {
        self.sinks.push(Box::new(sink));
        self
    }
    pub fn trigger(mut self, trigger: Trigger) -> Query<T> {
        self.trigger = trigger;
        self
    }
    /// The processing-time clock (tests inject a [`crate::stream::ManualClock`]).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Query<T> {
        self.clock = Arc::new(clock);
        self
    }
    pub fn settings(mut self, settings: Settings) -> Query<T> {
        self.settings = settings;
        self
    }
    /// Checkpoint root folder (default `Settings.checkpoint_dir`); the query uses `<root>/<name>`.
    pub fn checkpoint_dir(mut self, root: impl Into<PathBuf>) -> Query<T> {
        self.checkpoint_root = Some(root.into());
        self
    }
    /// Stop a running query of the same name instead of failing with [`Error::QueryRunning`].
    pub fn replace_running(mut self, yes: bool) -> Query<T> {
        self.replace = yes;
        self
    }
    /// Emit all open windows when the query stops (default true).
    pub fn final_flush(mut self, yes: bool) -> Query<T> {
        self.final_flush = yes;
        self
    }
    /// No per-batch lines from bounded runs.
    pub fn quiet(mut self, yes: bool) -> Query<T> {
        self.quiet = yes;
        self
    }

    /// Starts the query in the background on the kit's runtime and returns at once.
    pub fn start(self) -> Result<StreamingQuery> {
        let source = self.source.clone().ok_or_else(|| Error::invalid(format!("query '{}' has no source: add `.source(KafkaSource::new(\"topic\"))`", self.name)))?;
        if self.sinks.is_empty() {
            return Err(Error::invalid(format!("query '{}' has no sink", self.name)));
        }
        let mut names: Vec<String> = self.sinks.iter().map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        if names.len() != self.sinks.len() {
            return Err(Error::invalid("two sinks of the query have the same name; give one another name".to_string()));
        }
        let shared = Arc::new(Shared::new(&self.name, self.quiet));
        {
            let reg = registry();
            let mut reg = reg.lock().map_err(|_| Error::Task("query registry poisoned".into()))?;
            if let Some(old) = reg.get(&self.name) {
                if !old.status().is_terminated() {
                    if !self.replace {
                        return Err(Error::QueryRunning(self.name.clone()));
                    }
                    let old = old.clone();
                    drop(reg);
                    old.stop()?;
                    return self.start();
                }
            }
            reg.insert(self.name.clone(), StreamingQuery { shared: shared.clone() });
        }
        let engine = Engine {
            name: self.name.clone(),
            identity: self.name.clone(),
            source,
            sinks: self.sinks,
            trigger: self.trigger,
            clock: self.clock,
            cp_dir: checkpoint::dir_for(self.checkpoint_root.as_ref().unwrap_or(&self.settings.checkpoint_dir), &self.name),
            settings: self.settings,
            final_flush: self.final_flush,
            shared: shared.clone(),
            chaos: std::env::var("BDE_STREAM_CHAOS").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0),
        };
        let sh = shared.clone();
        runtime::handle().spawn_blocking(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || engine.run()));
            let status = match r {
                Ok(Ok(())) => Status::Stopped,
                Ok(Err(e)) => Status::Failed(e.to_string()),
                Err(_) => Status::Failed("the query panicked; see the message printed above".into()),
            };
            sh.set_status(status);
        });
        Ok(StreamingQuery { shared })
    }
}

struct Shared {
    name: String,
    quiet: bool,
    stop: AtomicBool,
    status: Mutex<Status>,
    cv: Condvar,
    progress: Mutex<(u64, VecDeque<Progress>, [u64; 3])>,
}

impl Shared {
    fn new(name: &str, quiet: bool) -> Shared {
        Shared {
            name: name.into(),
            quiet,
            stop: AtomicBool::new(false),
            status: Mutex::new(Status::Starting),
            cv: Condvar::new(),
            progress: Mutex::new((0, VecDeque::new(), [0; 3])),
        }
    }
    fn set_status(&self, s: Status) {
        if let Ok(mut g) = self.status.lock() {
            // a stop request does not hide a failure, and a terminal state is final
            if !g.is_terminated() {
                *g = s;
            }
        }
        self.cv.notify_all();
    }
    fn push(&self, p: Progress) {
        if let Ok(mut g) = self.progress.lock() {
            g.0 += 1;
            g.2[0] += p.rows_in;
            g.2[1] += p.dead_letters;
            g.2[2] += p.late_rows;
            g.1.push_back(p);
            if g.1.len() > KEEP {
                g.1.pop_front();
            }
        }
    }
}

/// The handle of a started query (cheap to clone).
#[derive(Clone)]
pub struct StreamingQuery {
    shared: Arc<Shared>,
}

impl StreamingQuery {
    pub fn name(&self) -> &str {
        &self.shared.name
    }
    pub fn status(&self) -> Status {
        self.shared.status.lock().map(|g| g.clone()).unwrap_or(Status::Failed("status lock poisoned".into()))
    }
    /// The last batches (at most 1000).
    pub fn progress(&self) -> Vec<Progress> {
        self.shared.progress.lock().map(|g| g.1.iter().cloned().collect()).unwrap_or_default()
    }
    pub fn last_progress(&self) -> Option<Progress> {
        self.shared.progress.lock().ok().and_then(|g| g.1.back().cloned())
    }
    /// Batches completed since start.
    pub fn batches_done(&self) -> u64 {
        self.shared.progress.lock().map(|g| g.0).unwrap_or(0)
    }
    /// Status, recent batches and totals (rich output in Jupyter).
    pub fn summary(&self) -> Summary {
        let (batches, totals) = self.shared.progress.lock().map(|g| (g.1.iter().cloned().collect(), g.2)).unwrap_or_default();
        Summary { name: self.shared.name.clone(), status: self.status(), batches, total_rows: totals[0], total_dead_letters: totals[1], total_late: totals[2] }
    }

    /// Rich output for evcxr: the [`Summary`] report of the query.
    pub fn evcxr_display(&self) {
        self.summary().evcxr_display();
    }

    /// Asks the query to stop (finish the batch in flight, commit, final flush) without waiting.
    pub fn request_stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let terminated = self.status().is_terminated();
        if !terminated {
            self.shared.set_status(Status::Stopping);
        }
    }

    /// Stops the query and waits (up to 2 minutes) until it has committed and flushed.
    pub fn stop(&self) -> Result<Summary> {
        self.request_stop();
        if !self.await_termination(Duration::from_secs(120))? {
            return Err(Error::Timeout { what: format!("query '{}' to stop", self.name()), after: Duration::from_secs(120), hint: "a sink may be hanging; it keeps stopping in the background".into() });
        }
        match self.status() {
            Status::Failed(e) => Err(Error::Task(format!("query '{}' failed: {e}", self.name()))),
            _ => Ok(self.summary()),
        }
    }

    /// Waits until the query ended (true) or `timeout` passed (false).
    pub fn await_termination(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut g = self.shared.status.lock().map_err(|_| Error::Task("status lock poisoned".into()))?;
        while !g.is_terminated() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            g = self.shared.cv.wait_timeout(g, left).map_err(|_| Error::Task("status lock poisoned".into()))?.0;
        }
        Ok(true)
    }

    fn watch(&self, mut done: impl FnMut(&Self, &[Progress], Instant) -> bool, cap: Duration) -> Result<Summary> {
        let started = Instant::now();
        let mut seen = self.batches_done();
        loop {
            let (count, fresh) = {
                let g = self.shared.progress.lock().map_err(|_| Error::Task("progress lock poisoned".into()))?;
                let n_new = (g.0 - seen).min(g.1.len() as u64) as usize;
                (g.0, g.1.iter().skip(g.1.len() - n_new).cloned().collect::<Vec<_>>())
            };
            seen = count;
            if !self.shared.quiet {
                for p in &fresh {
                    println!("{}", p.line());
                }
            }
            if done(self, &fresh, started) || self.status().is_terminated() || started.elapsed() >= cap {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Status::Failed(e) = self.status() {
            return Err(Error::Task(format!("query '{}' failed: {e}", self.name())));
        }
        Ok(self.summary())
    }

    /// Watches `n` more batches (at most 10 minutes), printing one line per batch; the query goes on.
    pub fn for_batches(&self, n: u64) -> Result<Summary> {
        let mut got = 0u64;
        self.watch(move |_, fresh, _| {
            got += fresh.len() as u64;
            got >= n
        }, Duration::from_secs(600))
    }

    /// Watches for `d`, printing one line per batch; the query goes on.
    pub fn for_duration(&self, d: Duration) -> Result<Summary> {
        self.watch(|_, _, _| false, d)
    }

    /// Watches until no row arrived for `idle` (at most 10 minutes); the query goes on.
    pub fn until_idle(&self, idle: Duration) -> Result<Summary> {
        let mut last = Instant::now();
        self.watch(move |_, fresh, _| {
            if fresh.iter().any(|p| p.rows_in > 0) {
                last = Instant::now();
            }
            last.elapsed() >= idle
        }, Duration::from_secs(600))
    }
}

impl std::fmt::Debug for StreamingQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StreamingQuery({}, {})", self.name(), self.status())
    }
}

fn registry() -> &'static Mutex<HashMap<String, StreamingQuery>> {
    static R: OnceLock<Mutex<HashMap<String, StreamingQuery>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Names of the queries that are running.
pub fn active() -> Vec<String> {
    let mut v: Vec<String> = registry().lock().map(|r| r.iter().filter(|(_, q)| !q.status().is_terminated()).map(|(n, _)| n.clone()).collect()).unwrap_or_default();
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
    let all: Vec<StreamingQuery> = registry().lock().map(|r| r.values().cloned().collect()).unwrap_or_default();
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

struct Engine<T: Row> {
    name: String,
    /// `name@epoch`, what sinks key their markers by; set when the checkpoint is loaded.
    identity: String,
    source: KafkaSource,
    sinks: Vec<Box<dyn Sink<T>>>,
    trigger: Trigger,
    clock: Arc<dyn Clock>,
    cp_dir: PathBuf,
    settings: Settings,
    final_flush: bool,
    shared: Arc<Shared>,
    chaos: f64,
}

impl<T: Row> Engine<T> {
    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    fn run(mut self) -> Result<()> {
        let mut cp = Checkpoint::load(&self.cp_dir, &self.name)?;
        if cp.epoch.is_empty() {
            cp.epoch = checkpoint::new_epoch();
            cp.save(&self.cp_dir)?;
        }
        // Sinks know the query by name and checkpoint lineage (see `Checkpoint::epoch`).
        self.identity = format!("{}@{}", self.name, cp.epoch);
        for s in self.sinks.iter_mut() {
            s.open(&self.identity, &self.settings)?;
            if let Some(st) = cp.state_of(&s.name()) {
                s.restore(st)?;
            }
        }
        let group = self.source.group.clone().unwrap_or_else(|| format!("bde-stream-{}", self.name));
        let mut reader = Reader::open(&self.settings, &self.source, &group, &cp.offsets)?;
        if cp.offsets != reader.next && cp.pending.is_none() {
            // Pin the resolved starting offsets, so a restart does not move to a newer "latest".
            cp.offsets = reader.next.clone();
            cp.save(&self.cp_dir)?;
        }
        let mut dlq = DeadLetterWriter::new();
        self.shared.set_status(Status::Running);
        if let Some(p) = cp.pending.clone() {
            let started = Instant::now();
            let msgs = if p.flush { Vec::new() } else { reader.read(&p.end, usize::MAX, Duration::from_secs(60), true)?.0 };
            self.run_batch(&mut cp, &mut reader, &mut dlq, p, msgs, true, started)?;
        }
        let fixed_targets = match self.trigger {
            Trigger::AvailableNow => Some(reader.end_offsets()?),
            _ => None,
        };
        let interval = match self.trigger {
            Trigger::Every(d) => d,
            _ => Duration::ZERO,
        };
        let mut last_start: Option<Instant> = None;
        while !self.stopping() {
            if let Some(ls) = last_start {
                let due = ls + interval;
                while Instant::now() < due && !self.stopping() {
                    std::thread::sleep((due - Instant::now()).min(Duration::from_millis(20)));
                }
                if self.stopping() {
                    break;
                }
            }
            last_start = Some(Instant::now());
            checkpoint::heartbeat(&self.cp_dir);
            let targets = match &fixed_targets {
                Some(t) => t.clone(),
                None => reader.end_offsets()?,
            };
            let behind = reader.next.iter().any(|(t, ps)| ps.iter().any(|(p, o)| targets.get(t).and_then(|m| m.get(p)).is_some_and(|e| o < e)));
            let now = self.clock.now_ms();
            let wants_empty = self.sinks.iter().any(|s| s.wants_empty_batch(now));
            if !behind && !wants_empty {
                if !matches!(self.trigger, Trigger::Every(_)) {
                    break;
                }
                if interval.is_zero() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
            let batch_time = self.clock.now_ms();
            let started = Instant::now();
            let (msgs, end) = reader.read(&targets, self.source.max_records, Duration::from_secs(5), false)?;
            if msgs.is_empty() && !wants_empty {
                continue;
            }
            let pending = PendingBatch { batch_id: cp.next_batch, start: reader.next.clone(), end, batch_time_ms: batch_time, flush: false, plans: Vec::new() };
            self.run_batch(&mut cp, &mut reader, &mut dlq, pending, msgs, false, started)?;
            if self.trigger == Trigger::Once {
                break;
            }
        }
        if self.final_flush && self.sinks.iter().any(|s| !s.state().is_null()) {
            let pending = PendingBatch {
                batch_id: cp.next_batch,
                start: reader.next.clone(),
                end: reader.next.clone(),
                batch_time_ms: self.clock.now_ms(),
                flush: true,
                plans: Vec::new(),
            };
            self.run_batch(&mut cp, &mut reader, &mut dlq, pending, Vec::new(), false, Instant::now())?;
        }
        checkpoint::heartbeat_stop(&self.cp_dir);
        Ok(())
    }

    fn maybe_crash(&self) {
        maybe_crash(self.chaos);
    }

    #[allow(clippy::too_many_arguments)]
    fn run_batch(&mut self, cp: &mut Checkpoint, reader: &mut Reader, dlq: &mut DeadLetterWriter, mut p: PendingBatch, msgs: Vec<Msg>, replay: bool, read_started: Instant) -> Result<()> {
        let t0 = read_started;
        let rows_in = msgs.len() as u64;
        let mut rows: Vec<T> = Vec::with_capacity(msgs.len());
        let mut dead: Vec<DeadLetter> = Vec::new();
        for m in &msgs {
            let reason = match &m.value {
                None => Some("null value".to_string()),
                Some(v) if v.len() > self.source.max_value_bytes => {
                    Some(format!("value of {} bytes exceeds the limit of {} bytes", v.len(), self.source.max_value_bytes))
                }
                Some(v) => match T::decode(v) {
                    Ok(r) => {
                        rows.push(r);
                        None
                    }
                    Err(e) => Some(e),
                },
            };
            if let Some(r) = reason {
                dead.push(DeadLetter::new(&self.name, p.batch_id, m, &r));
            }
        }
        let read_ms = t0.elapsed().as_millis() as u64;
        let mut info = BatchInfo { query: self.identity.clone(), batch_id: p.batch_id, batch_time_ms: p.batch_time_ms, replay, flush: p.flush, settings: self.settings.clone() };
        if !replay {
            p.plans = Vec::new();
            for s in self.sinks.iter_mut() {
                p.plans.push((s.name(), s.plan(&info)?));
            }
            cp.pending = Some(p.clone());
            cp.save(&self.cp_dir)?;
        }
        self.maybe_crash();
        if self.source.dead_letters {
            dlq.send(&self.settings, &dead)?;
        }
        let late_before: u64 = self.sinks.iter().map(|s| s.late_rows()).sum();
        let mut sink_rows = Vec::new();
        let mut sink_ms = Vec::new();
        for s in self.sinks.iter_mut() {
            let name = s.name();
            let ts = Instant::now();
            let plan = p.plans.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap_or_default();
            let mut attempt = 0;
            let n = loop {
                match s.apply(&info, &rows, &plan) {
                    Ok(n) => break n,
                    Err(e) if attempt < 3 => {
                        attempt += 1;
                        eprintln!("query {}: sink {name} failed on batch {} ({e}); retry {attempt}/3", self.name, p.batch_id);
                        std::thread::sleep(Duration::from_millis(500 * attempt));
                        info.replay = true; // a retry may follow a partial write
                    }
                    Err(e) => return Err(e),
                }
            };
            info.replay = replay;
            sink_ms.push((name.clone(), ts.elapsed().as_millis() as u64));
            sink_rows.push((name, n));
            maybe_crash(self.chaos);
        }
        let late: u64 = self.sinks.iter().map(|s| s.late_rows()).sum::<u64>().saturating_sub(late_before);
        cp.offsets = p.end.clone();
        cp.next_batch = p.batch_id + 1;
        cp.states = self.sinks.iter().map(|s| (s.name(), s.state())).filter(|(_, v)| !v.is_null()).collect();
        cp.pending = None;
        cp.save(&self.cp_dir)?;
        reader.commit(&p.end);
        let dur = t0.elapsed();
        let watermark_ms = self.sinks.iter().find_map(|s| s.watermark());
        self.shared.push(Progress {
            batch_id: p.batch_id,
            batch_time_ms: p.batch_time_ms,
            rows_in,
            rows_per_sec: if dur.as_secs_f64() > 0.0 { rows_in as f64 / dur.as_secs_f64() } else { 0.0 },
            duration_ms: dur.as_millis() as u64,
            watermark_ms,
            sink_rows,
            sink_ms,
            read_ms,
            dead_letters: dead.len() as u64,
            late_rows: late,
            replay,
            flush: p.flush,
        });
        Ok(())
    }
}

/// Test hook: with `BDE_STREAM_CHAOS=p` set, the process aborts with probability `p` after the
/// write-ahead and after each sink (crash tests only).
fn maybe_crash(chaos: f64) {
    if chaos > 0.0 && rand::random::<f64>() < chaos {
        eprintln!("BDE_STREAM_CHAOS: aborting on purpose");
        std::process::abort();
    }
}

/// Offsets of a query's checkpoint (for tests and notebooks).
pub fn checkpoint_offsets(settings: &Settings, query: &str) -> Result<Offsets> {
    Ok(Checkpoint::load(&checkpoint::dir_for(&settings.checkpoint_dir, query), query)?.offsets)
}
