//! The kit's one process-wide tokio runtime, and blocking waits for notebook cells.
//!
//! evcxr runs cells that use `.await` inside a runtime of its own; calling
//! `Runtime::block_on` there panics ("Cannot start a runtime from within a runtime"), and tasks
//! spawned on evcxr's runtime in one cell may never be polled in the next. So the kit never
//! relies on the caller's context: work is spawned on the kit's runtime (its own threads) and the
//! calling thread waits on a plain channel. [`block_on`] therefore works from a plain cell, from
//! an `await` cell, from tests and from binaries alike.

use std::future::Future;
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};

use crate::error::{Error, Result};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The kit's runtime, created on first use (two worker threads: the course's `local[2]`).
pub fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bde-kit")
            .enable_all()
            .build()
            .unwrap_or_else(|e| {
                panic!(
                    "bde_kit cannot start its tokio runtime (out of threads or file handles?): {e}"
                )
            })
    })
}

/// A handle to the kit's runtime, for spawning background tasks.
pub fn handle() -> Handle {
    runtime().handle().clone()
}

/// Runs `fut` on the kit's runtime and waits for its result on the calling thread.
///
/// Returns [`Error::Task`] if the future panicked.
pub fn block_on<F>(fut: F) -> Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let rx = spawn_reporting(fut);
    rx.recv()
        .map_err(|_| Error::Task("the task panicked; see the message printed above".into()))
}

/// Like [`block_on`], but gives up waiting after `timeout`. The task itself is aborted.
pub fn block_on_timeout<F>(fut: F, timeout: Duration, what: &str) -> Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let task = runtime().spawn(async move {
        let _ = tx.send(fut.await);
    });
    match rx.recv_timeout(timeout) {
        Ok(v) => Ok(v),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            task.abort();
            Err(Error::Timeout {
                what: what.into(),
                after: timeout,
                hint: "the work was cancelled; check the service or raise the timeout".into(),
            })
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::Task(format!(
            "{what} panicked; see the message printed above"
        ))),
    }
}

/// Runs blocking work (a synchronous client call) on the runtime's blocking pool and waits.
pub fn run_blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    block_on(async move { tokio::task::spawn_blocking(f).await })?
        .map_err(|e| Error::Task(format!("blocking task failed: {e}")))
}

fn spawn_reporting<F>(fut: F) -> mpsc::Receiver<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    runtime().spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_works_inside_another_runtime() {
        // The situation of an evcxr `await` cell: a foreign runtime is current on this thread.
        let foreign = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let v = foreign
            .block_on(async { block_on(async { 40 + 2 }) })
            .expect("value");
        assert_eq!(v, 42);
    }

    #[test]
    fn block_on_reports_panics_as_errors() {
        let r = block_on(async {
            if true {
                panic!("boom");
            }
            1
        });
        assert!(matches!(r, Err(Error::Task(_))));
    }

    #[test]
    fn timeout_gives_a_timeout_error() {
        let r = block_on_timeout(
            async { tokio::time::sleep(Duration::from_secs(5)).await },
            Duration::from_millis(50),
            "a nap",
        );
        assert!(matches!(r, Err(Error::Timeout { .. })));
    }
}
