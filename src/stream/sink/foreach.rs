//! `foreach_batch`: a closure called with each batch (Spark's `foreachBatch`).

use crate::error::Result;
use crate::stream::sink::{BatchInfo, Sink};

type BatchFn<T> = Box<dyn FnMut(&BatchInfo, &[T]) -> Result<()> + Send>;

/// Calls a closure with every batch. The closure sees `batch.replay` and `batch.batch_id` and is
/// responsible for its own idempotence (at-least-once otherwise).
pub struct ForeachBatch<T> {
    name: String,
    f: BatchFn<T>,
}

impl<T> ForeachBatch<T> {
    pub fn new(
        name: &str,
        f: impl FnMut(&BatchInfo, &[T]) -> Result<()> + Send + 'static,
    ) -> ForeachBatch<T> {
        ForeachBatch {
            name: name.into(),
            f: Box::new(f),
        }
    }
}

/// Shorthand for [`ForeachBatch::new`].
pub fn foreach_batch<T>(
    name: &str,
    f: impl FnMut(&BatchInfo, &[T]) -> Result<()> + Send + 'static,
) -> ForeachBatch<T> {
    ForeachBatch::new(name, f)
}

impl<T: Send> Sink<T> for ForeachBatch<T> {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn apply(&mut self, batch: &BatchInfo, rows: &[T], _plan: &serde_json::Value) -> Result<u64> {
        (self.f)(batch, rows)?;
        Ok(rows.len() as u64)
    }
}
