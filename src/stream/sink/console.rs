//! Console sink: prints each batch's first rows (Spark's `format("console")`).

use std::fmt::Debug;

use crate::error::Result;
use crate::stream::sink::{BatchInfo, Sink};

/// Prints up to `rows` rows of each batch with `Debug`, under a `Batch: N` header.
pub struct Console {
    name: String,
    rows: usize,
}

impl Console {
    pub fn new() -> Console {
        Console {
            name: "console".into(),
            rows: 20,
        }
    }
    /// How many rows to print per batch.
    pub fn rows(mut self, n: usize) -> Console {
        self.rows = n;
        self
    }
    pub fn named(mut self, name: &str) -> Console {
        self.name = name.into();
        self
    }
}

impl Default for Console {
    fn default() -> Self {
        Console::new()
    }
}

impl<T: Debug> Sink<T> for Console {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn apply(&mut self, batch: &BatchInfo, rows: &[T], _plan: &serde_json::Value) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        println!("-------------------------------------------\nBatch: {}\n-------------------------------------------", batch.batch_id);
        for r in rows.iter().take(self.rows) {
            println!("{}", crate::untrusted::line(&format!("{r:?}")));
        }
        if rows.len() > self.rows {
            println!("only showing top {} of {} rows", self.rows, rows.len());
        }
        Ok(rows.len() as u64)
    }
}
