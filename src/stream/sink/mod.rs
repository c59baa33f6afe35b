//! Sinks: where each micro-batch goes. One query fans every batch out to all of its sinks.
//!
//! A sink applies a batch exactly once even when the batch is replayed after a crash: it records
//! the batch id in the same atomic step as its effect and skips a batch it has seen (Redis:
//! one Lua script applying the increments and an applied-batch marker; MariaDB: one transaction with a progress row;
//! Kafka: headers plus a replay check, see [`kafka`]). A sink only writes: which rows reach it
//! (filters, windows) is said by the operators of its [`Stream`](crate::stream::Stream).
//!
//! | sink | effect | guarantee |
//! |---|---|---|
//! | [`KafkaSink`] | one record per row (CSV/JSON/any text) | exactly-once for a single writer (replay check), idempotent producer |
//! | [`RedisZIncr`] | `ZINCRBY key by member` | exactly-once (increments and marker in one Lua script) |
//! | [`MariaDbInsert`] | batched parameterized INSERT (optionally additive upsert) | exactly-once (progress row in the same transaction) |
//! | [`Console`] | prints rows | none needed |
//! | [`MemorySink`] | keeps the last rows in memory, read back with `StreamingQuery::output` | skips a batch id it has seen |
//! | [`ForeachBatch`] | your closure with (batch id, rows) | yours: the closure gets `replay` to decide |

pub mod console;
pub mod foreach;
pub mod kafka;
pub mod mariadb;
pub mod memory;
pub mod redis;

pub use console::Console;
pub use foreach::ForeachBatch;
pub use kafka::KafkaSink;
pub use mariadb::{MariaDbInsert, Merge};
pub use memory::MemorySink;
pub use redis::RedisZIncr;

use crate::config::Settings;
use crate::error::Result;

/// What a sink learns about the batch it applies.
#[derive(Debug, Clone)]
pub struct BatchInfo {
    pub query: String,
    pub batch_id: u64,
    /// Processing time of the batch (engine milliseconds), the same on replay.
    pub batch_time_ms: i64,
    /// The batch was cut by an earlier run that crashed before committing it.
    pub replay: bool,
    /// The final flush on stop: no rows read; windows emit every open window.
    pub flush: bool,
    pub settings: Settings,
}

/// What a destination says of rows tried with [`Sink::probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// It takes them all.
    Accepted,
    /// It refuses the data of one of them, with this error.
    Refused(String),
}

/// A destination of micro-batches of rows of type `T`.
pub trait Sink<T>: Send {
    /// A name unique within the query (used for markers, progress rows and checkpoint state).
    fn name(&self) -> String;

    /// Called once when the query starts (connect, create tables, restore nothing yet).
    fn open(&mut self, _query: &str, _settings: &Settings) -> Result<()> {
        Ok(())
    }

    /// Called before the batch is written ahead to the checkpoint; the value is stored there and
    /// handed back to [`Sink::apply`] (also on replay).
    fn plan(&mut self, _batch: &BatchInfo) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }

    /// Rows of the batch this sink would always reject (a value too long for a column, a number
    /// out of range, an event time far in the future...), by index into `rows`, with the reason.
    /// Called on the batch's decoded rows before the write-ahead and again on replay, with the
    /// sink's state as it was at the batch's start, so it must depend only on the rows, the batch
    /// info and that state. The engine sends these records to the dead-letter topic and no sink
    /// applies them: a poison record never blocks the query. Behind a window, a numeric
    /// value must be refused by a range (accepting two totals accepts every total between them):
    /// the window asks only when a row's total leaves the range already accepted.
    fn check(&self, _batch: &BatchInfo, _rows: &[T]) -> Vec<(usize, String)> {
        Vec::new()
    }

    /// Tries `rows` against the destination and undoes every effect, for the engine's search of
    /// the rows a server refuses that [`Sink::check`] does not model (a CHECK constraint, a
    /// TIMESTAMP past 2038, an ENUM value, a duplicate key): `None` when the sink cannot try rows
    /// without keeping them (the engine cannot bisect its batches then), else whether the server
    /// accepts them all ([`Probe::Accepted`]) or refuses their data ([`Probe::Refused`] with the
    /// server's error). An error that is not about the rows' data (a server that is down, a table
    /// that is missing) is `Some(Err(..))`: no row is to blame for it.
    fn probe(&mut self, _batch: &BatchInfo, _rows: &[T]) -> Option<Result<Probe>> {
        None
    }

    /// Applies the batch; returns how many rows (or effects) it wrote, 0 if it skipped the batch.
    /// Must be safe to call again with the same batch (retry, replay).
    fn apply(&mut self, batch: &BatchInfo, rows: &[T], plan: &serde_json::Value) -> Result<u64>;

    /// State to save in the checkpoint after a committed batch.
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Restores the state saved by [`Sink::state`].
    fn restore(&mut self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }
}
