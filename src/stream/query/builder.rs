//! [`Query`]: the builder a notebook cell writes. It names the query and its trigger;
//! `start(branches)` takes the checkpoint's lock and runs the engine over the branches of one
//! read (see [`crate::stream::Stream`]) in the background.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::runtime;
use crate::stream::checkpoint;
use crate::stream::clock::{Clock, SystemClock};
use crate::stream::dataflow::Branch;
use crate::stream::lock::CheckpointLock;
use crate::stream::progress::{Progress, Status};
use crate::stream::query::engine::Engine;
use crate::stream::query::handle::{Shared, StreamingQuery};
use crate::stream::query::registry;
use crate::stream::row::Row;
use crate::stream::trigger::Trigger;

/// Called by the engine after every committed batch (Spark's `StreamingQueryListener`).
pub type Listener = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How long a bounded run (`Trigger::Once`, `Trigger::AvailableNow`) may take by default.
pub const BOUNDED_RUN_DEADLINE: Duration = Duration::from_secs(600);

/// A streaming query being built.
pub struct Query {
    pub(super) name: String,
    pub(super) trigger: Trigger,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) settings: Settings,
    pub(super) checkpoint_root: Option<PathBuf>,
    pub(super) replace: bool,
    pub(super) final_flush: bool,
    pub(super) dead_letter_refused: bool,
    pub(super) quiet: bool,
    pub(super) listener: Option<Listener>,
    pub(super) deadline: Duration,
    pub(super) outage_retry: Duration,
}

impl Query {
    /// A query named `name` (its checkpoint folder and sink markers derive from the name).
    pub fn new(name: &str) -> Query {
        Query {
            name: name.into(),
            trigger: Trigger::default(),
            clock: Arc::new(SystemClock),
            settings: Settings::from_env(),
            checkpoint_root: None,
            replace: false,
            final_flush: true,
            dead_letter_refused: false,
            quiet: false,
            listener: None,
            deadline: BOUNDED_RUN_DEADLINE,
            outage_retry: crate::stream::query::OUTAGE_RETRY,
        }
    }
    pub fn trigger(mut self, trigger: Trigger) -> Query {
        self.trigger = trigger;
        self
    }
    /// The processing-time clock (tests inject a [`crate::stream::ManualClock`]).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Query {
        self.clock = Arc::new(clock);
        self
    }
    pub fn settings(mut self, settings: Settings) -> Query {
        self.settings = settings;
        self
    }
    /// Checkpoint root folder (default `Settings.checkpoint_dir`); the query uses `<root>/<name>`
    /// (a relative root is made absolute against the working directory when the query starts).
    pub fn checkpoint_dir(mut self, root: impl Into<PathBuf>) -> Query {
        self.checkpoint_root = Some(root.into());
        self
    }
    /// Stop a running query of the same name in this process instead of failing with
    /// [`Error::QueryRunning`].
    pub fn replace_running(mut self, yes: bool) -> Query {
        self.replace = yes;
        self
    }
    /// Emit all open windows when the query stops (default true).
    pub fn final_flush(mut self, yes: bool) -> Query {
        self.final_flush = yes;
        self
    }
    /// No per-batch lines from bounded runs.
    pub fn quiet(mut self, yes: bool) -> Query {
        self.quiet = yes;
        self
    }
    /// Calls `f` with every committed batch's progress, on the engine's thread (keep it short).
    pub fn on_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Query {
        self.listener = Some(Arc::new(f));
        self
    }
    /// When a sink refuses a batch and bisecting it cannot find the rows to blame (the sink
    /// cannot try rows apart, or its server refuses only the rows together), send that branch's
    /// rows of the batch to the dead-letter topic and go on, instead of failing the query on the
    /// batch at every restart (the default, `false`). Rows the bisecting finds are dead-lettered
    /// either way.
    pub fn dead_letter_refused_batches(mut self, yes: bool) -> Query {
        self.dead_letter_refused = yes;
        self
    }

    /// How long a bounded run (`Trigger::Once`, `Trigger::AvailableNow`) may take before the
    /// query fails with a timeout naming the partitions still behind (default 10 minutes).
    pub fn deadline(mut self, d: Duration) -> Query {
        self.deadline = d;
        self
    }
    /// How long the running query retries Kafka, Redis or MariaDB when it does not answer (a
    /// restart, a network blip) before it fails (default 30 s, [`crate::stream::query::OUTAGE_RETRY`]).
    /// Meanwhile its status is `retrying: <service> at <address> …`; the batch in flight is
    /// applied once when the service is back. `Duration::ZERO` fails at the first error.
    pub fn outage_retry(mut self, d: Duration) -> Query {
        self.outage_retry = d;
        self
    }

    /// Starts the query over `branches` (each a [`Stream`](crate::stream::Stream) ending in a
    /// sink, all from the same read) in the background on the kit's runtime and returns at once.
    /// Fails at once when the query runs already: in this process ([`Error::QueryRunning`]) or
    /// anywhere else on this checkpoint ([`Error::CheckpointLocked`], naming the holder).
    pub fn start<R: Row>(
        self,
        branches: impl IntoIterator<Item = Branch<R>>,
    ) -> Result<StreamingQuery> {
        let branches: Vec<Branch<R>> = branches.into_iter().collect();
        let Some(source) = branches.first().map(|b| b.source.clone()) else {
            return Err(Error::invalid(format!(
                "query '{}' has no branch: start it with `.start([stream.write(sink), …])`",
                self.name
            )));
        };
        if let Some(other) = branches.iter().find(|b| !Arc::ptr_eq(&b.source, &source)) {
            return Err(Error::invalid(format!(
                "query '{}': branch {} reads another source than branch {} ({} vs {}); the branches of a query come from one `Stream::read` (use that stream for each branch)",
                self.name,
                other.name(),
                branches[0].name(),
                other.source.describe(),
                source.describe()
            )));
        }
        let mut names: Vec<String> = branches.iter().map(Branch::name).collect();
        names.sort();
        names.dedup();
        if names.len() != branches.len() {
            return Err(Error::invalid(
                "two branches of the query end in sinks with the same name; give one another name"
                    .to_string(),
            ));
        }
        if let Some(old) = registry::running(&self.name) {
            if !self.replace {
                return Err(Error::QueryRunning(self.name.clone()));
            }
            old.stop()?;
        }
        // Absolute, so the status names the folder wherever the kernel runs.
        let cp_dir = checkpoint::dir_for(
            &crate::config::absolute(
                self.checkpoint_root
                    .clone()
                    .unwrap_or_else(|| self.settings.checkpoint_dir.clone()),
            ),
            &self.name,
        );
        let lock = CheckpointLock::acquire(&cp_dir, &self.name)?;
        let shared = Arc::new(Shared::new(&self.name, self.quiet, cp_dir.clone()));
        let handle = StreamingQuery {
            shared: shared.clone(),
        };
        registry::insert(&self.name, handle.clone())?;
        let pipes = branches.into_iter().map(|b| b.pipe).collect();
        let engine = Engine::new(self, source, pipes, cp_dir, shared.clone(), lock);
        runtime::handle().spawn_blocking(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || engine.run()));
            // the engine (and with it the checkpoint lock) is gone before the status says so
            let status = match r {
                Ok(Ok(())) => Status::Stopped,
                Ok(Err(e)) => Status::Failed(e.to_string()),
                Err(_) => {
                    Status::Failed("the query panicked; see the message printed above".into())
                }
            };
            shared.set_status(status);
        });
        Ok(handle)
    }
}
