//! Named crash points for the crash tests: the engine and the sinks call [`hit`] at the steps
//! where a process may die (after the write-ahead, between sinks, inside a Kafka send, between
//! a Redis transaction's start and its commit, after the sinks before the checkpoint commit).
//!
//! With `BDE_CRASH_AT=<step>@<batch>` set (for example `between-sinks@3` or `kafka-send@2`) the
//! process aborts exactly there, so a test chooses its kill point by batch and step instead of
//! by sleeping. Without the variable, `hit` is one relaxed load of a cached `None`. A step that
//! must settle something before dying (the Kafka sink delivers what it handed over) passes that
//! work to [`hit_settled`], which runs it only when the crash is due.
//!
//! | step | where |
//! |---|---|
//! | `after-write-ahead` | the batch is in the checkpoint's `pending`, no sink ran |
//! | `between-sinks` | after the first sink applied the batch, before the next |
//! | `kafka-send` | the Kafka sink sent part of the batch's records |
//! | `redis-exec` | the Redis sink prepared its transaction but did not commit it |
//! | `before-commit` | every sink applied the batch, the checkpoint still has it pending |

use std::sync::OnceLock;

/// The environment variable naming the crash point.
pub const ENV: &str = "BDE_CRASH_AT";

/// Every step name [`hit`] knows.
pub const STEPS: [&str; 5] = [
    "after-write-ahead",
    "between-sinks",
    "kafka-send",
    "redis-exec",
    "before-commit",
];

fn target() -> Option<&'static (String, u64)> {
    static T: OnceLock<Option<(String, u64)>> = OnceLock::new();
    T.get_or_init(|| {
        let v = std::env::var(ENV).ok()?;
        let (step, batch) = v.split_once('@')?;
        Some((step.to_string(), batch.trim().parse().ok()?))
    })
    .as_ref()
}

/// Like [`hit`], for a step where the process must settle something before it dies: when
/// `BDE_CRASH_AT` names this `step` and `batch_id`, runs `settle` first (the Kafka sink waits
/// for the records it handed over, so the crash leaves a partial batch in the topic) and aborts
/// if it succeeded; its error is returned. Otherwise `settle` does not run: the sink's hot path
/// holds no test switch of its own.
pub fn hit_settled<E>(
    step: &str,
    batch_id: u64,
    settle: impl FnOnce() -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    if target().is_some_and(|(s, b)| s == step && *b == batch_id) {
        settle()?;
        hit(step, batch_id);
    }
    Ok(())
}

/// Aborts the process when `BDE_CRASH_AT` names this `step` and `batch_id`.
pub fn hit(step: &str, batch_id: u64) {
    if let Some((s, b)) = target() {
        if s == step && *b == batch_id {
            eprintln!("{ENV}: aborting at {step} of batch {batch_id}");
            std::process::abort();
        }
    }
}
