//! [`StreamingQuery`]: the handle of a started query. A notebook cell watches it for a bounded
//! time (one line per batch), reads its status and progress, and stops it; the query itself runs
//! on the kit's runtime and never blocks the kernel.
//!
//! The engine also publishes the progress to `<checkpoint>/progress.json` (at most four times a
//! second, and on every status change), so another kernel can watch a query it did not start
//! ([`crate::stream::progress::read_published`]).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::stream::progress::{self, Progress, Published, Status, Summary, PUBLISHED_BATCHES};

/// Batches kept in memory for `progress()`.
const KEEP: usize = 1000;
/// The shortest time between two progress files (status changes are always published).
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// Totals since the query started.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    rows: u64,
    dead_letters: u64,
    late_rows: u64,
}

/// The batches a query reported.
#[derive(Debug, Default)]
struct ProgressLog {
    /// Batches completed since start (more than `recent` holds after a long run).
    batches_done: u64,
    /// The last [`KEEP`] batches.
    recent: VecDeque<Progress>,
    totals: Totals,
    last_published: Option<Instant>,
}

/// What the engine and the handles share.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) quiet: bool,
    pub(crate) stop: AtomicBool,
    status: Mutex<Status>,
    cv: Condvar,
    log: Mutex<ProgressLog>,
    /// The checkpoint folder, where the progress is published.
    publish_dir: PathBuf,
}

impl Shared {
    pub(crate) fn new(name: &str, quiet: bool, publish_dir: PathBuf) -> Shared {
        Shared {
            name: name.into(),
            quiet,
            stop: AtomicBool::new(false),
            status: Mutex::new(Status::Starting),
            cv: Condvar::new(),
            log: Mutex::new(ProgressLog::default()),
            publish_dir,
        }
    }

    pub(crate) fn set_status(&self, s: Status) {
        if let Ok(mut g) = self.status.lock() {
            // a stop request does not hide a failure, and a terminal state is final
            if !g.is_terminated() {
                *g = s;
            }
        }
        self.cv.notify_all();
        self.publish(true);
    }

    /// While running: `Some(note)` says the query waits for a service ([`Status::Retrying`]),
    /// `None` that it runs again. Changes nothing once a stop was asked for or the query ended.
    pub(crate) fn set_retrying(&self, note: Option<String>) {
        if let Ok(mut g) = self.status.lock() {
            match (&*g, note) {
                (Status::Running | Status::Retrying(_), Some(n)) => *g = Status::Retrying(n),
                (Status::Retrying(_), None) => *g = Status::Running,
                _ => return,
            }
        }
        self.cv.notify_all();
        self.publish(true);
    }

    pub(crate) fn push(&self, p: Progress) {
        if let Ok(mut g) = self.log.lock() {
            g.batches_done += 1;
            g.totals.rows += p.rows_in;
            g.totals.dead_letters += p.dead_letters;
            g.totals.late_rows += p.late_rows;
            g.recent.push_back(p);
            if g.recent.len() > KEEP {
                g.recent.pop_front();
            }
        }
        self.publish(false);
    }

    fn status(&self) -> Status {
        self.status
            .lock()
            .map(|g| g.clone())
            .unwrap_or(Status::Failed("status lock poisoned".into()))
    }

    fn summary(&self, last: usize) -> Summary {
        let status = self.status();
        let g = match self.log.lock() {
            Ok(g) => g,
            Err(_) => {
                return Summary {
                    name: self.name.clone(),
                    status,
                    checkpoint: self.publish_dir.clone(),
                    batches: vec![],
                    total_rows: 0,
                    total_dead_letters: 0,
                    total_late: 0,
                }
            }
        };
        let skip = g.recent.len().saturating_sub(last);
        Summary {
            name: self.name.clone(),
            status,
            checkpoint: self.publish_dir.clone(),
            batches: g.recent.iter().skip(skip).cloned().collect(),
            total_rows: g.totals.rows,
            total_dead_letters: g.totals.dead_letters,
            total_late: g.totals.late_rows,
        }
    }

    /// Writes the progress file: always when `force`, else at most every [`PUBLISH_EVERY`].
    fn publish(&self, force: bool) {
        {
            let Ok(mut g) = self.log.lock() else { return };
            if !force
                && g.last_published
                    .is_some_and(|t| t.elapsed() < PUBLISH_EVERY)
            {
                return;
            }
            g.last_published = Some(Instant::now());
        }
        let published = Published {
            pid: std::process::id(),
            written_ms: chrono::Utc::now().timestamp_millis(),
            summary: self.summary(PUBLISHED_BATCHES),
        };
        // Best effort: the checkpoint, not this file, is what must be durable.
        let _ = progress::publish(&self.publish_dir, &published);
    }
}

/// The handle of a started query (cheap to clone).
#[derive(Clone)]
pub struct StreamingQuery {
    pub(crate) shared: Arc<Shared>,
}

impl StreamingQuery {
    pub fn name(&self) -> &str {
        &self.shared.name
    }
    /// The query's checkpoint folder (absolute).
    pub fn checkpoint_dir(&self) -> &std::path::Path {
        &self.shared.publish_dir
    }
    pub fn status(&self) -> Status {
        self.shared.status()
    }
    /// The last batches (at most 1000).
    pub fn progress(&self) -> Vec<Progress> {
        self.shared
            .log
            .lock()
            .map(|g| g.recent.iter().cloned().collect())
            .unwrap_or_default()
    }
    pub fn last_progress(&self) -> Option<Progress> {
        self.shared
            .log
            .lock()
            .ok()
            .and_then(|g| g.recent.back().cloned())
    }
    /// Batches completed since start.
    pub fn batches_done(&self) -> u64 {
        self.shared.log.lock().map(|g| g.batches_done).unwrap_or(0)
    }
    /// The rows a branch wrote so far to `MemorySink::new(name)` (the last ones, bounded), as a
    /// DataFrame (Spark's `spark.sql("select * from name")` on a memory sink).
    pub fn output(&self, name: &str) -> Result<polars::prelude::DataFrame> {
        crate::stream::sink::memory::output(name)
    }

    /// Status, recent batches and totals (rich output in Jupyter).
    pub fn summary(&self) -> Summary {
        self.shared.summary(KEEP)
    }

    /// Rich output for evcxr: the [`Summary`] report of the query.
    pub fn evcxr_display(&self) {
        self.summary().evcxr_display();
    }

    /// Asks the query to stop (finish the batch in flight, commit, final flush) without waiting.
    pub fn request_stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if !self.status().is_terminated() {
            self.shared.set_status(Status::Stopping);
        }
    }

    /// Stops the query and waits (up to 2 minutes) until it has committed and flushed.
    pub fn stop(&self) -> Result<Summary> {
        self.request_stop();
        if !self.await_termination(Duration::from_secs(120))? {
            return Err(Error::Timeout {
                what: format!("query '{}' to stop", self.name()),
                after: Duration::from_secs(120),
                hint: "a sink may be hanging; it keeps stopping in the background".into(),
            });
        }
        match self.status() {
            Status::Failed(e) => Err(Error::Task(format!("query '{}' failed: {e}", self.name()))),
            _ => Ok(self.summary()),
        }
    }

    /// Waits until the query ended (true) or `timeout` passed (false).
    pub fn await_termination(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut g = self
            .shared
            .status
            .lock()
            .map_err(|_| Error::Task("status lock poisoned".into()))?;
        while !g.is_terminated() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || crate::interrupt::interrupted() {
                return Ok(false);
            }
            g = self
                .shared
                .cv
                .wait_timeout(g, left.min(Duration::from_millis(200)))
                .map_err(|_| Error::Task("status lock poisoned".into()))?
                .0;
        }
        Ok(true)
    }

    /// The batches completed after the first `seen` ones (those still kept), and the new count.
    fn batches_after(&self, seen: u64) -> Result<(u64, Vec<Progress>)> {
        let g = self
            .shared
            .log
            .lock()
            .map_err(|_| Error::Task("progress lock poisoned".into()))?;
        let fresh = (g.batches_done - seen).min(g.recent.len() as u64) as usize;
        Ok((
            g.batches_done,
            g.recent
                .iter()
                .skip(g.recent.len() - fresh)
                .cloned()
                .collect(),
        ))
    }

    fn watch(&self, mut done: impl FnMut(&[Progress]) -> bool, cap: Duration) -> Result<Summary> {
        let started = Instant::now();
        let mut seen = self.batches_done();
        loop {
            let (count, fresh) = self.batches_after(seen)?;
            seen = count;
            if !self.shared.quiet {
                for p in &fresh {
                    println!("{}", p.line());
                }
            }
            if done(&fresh)
                || self.status().is_terminated()
                || started.elapsed() >= cap
                || crate::interrupt::interrupted()
            {
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
        self.watch(
            move |fresh| {
                got += fresh.len() as u64;
                got >= n
            },
            Duration::from_secs(600),
        )
    }

    /// Watches for `d`, printing one line per batch; the query goes on.
    pub fn for_duration(&self, d: Duration) -> Result<Summary> {
        self.watch(|_| false, d)
    }

    /// Watches until no row arrived for `idle` (at most 10 minutes); the query goes on.
    pub fn until_idle(&self, idle: Duration) -> Result<Summary> {
        let mut last = Instant::now();
        self.watch(
            move |fresh| {
                if fresh.iter().any(|p| p.rows_in > 0) {
                    last = Instant::now();
                }
                last.elapsed() >= idle
            },
            Duration::from_secs(600),
        )
    }
}

impl std::fmt::Debug for StreamingQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StreamingQuery({}, {}, checkpoint {})",
            self.name(),
            self.status(),
            self.checkpoint_dir().display()
        )
    }
}
