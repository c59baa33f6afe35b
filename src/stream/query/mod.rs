//! Queries: the builder a notebook cell writes ([`Query`]), the engine loop that runs in the
//! background on the kit's runtime, the handle that watches it ([`StreamingQuery`]), and the
//! registry of this process's queries by name.
//!
//! ```no_run
//! use bde_kit::course::visit::Visit;
//! use bde_kit::stream::{sink, KafkaSource, Query, Start, Stream, Trigger};
//! use std::time::Duration;
//! # fn main() -> bde_kit::Result<()> {
//! let visits = Stream::<Visit>::read(
//!     KafkaSource::new("spark.streaming.website.visits").starting(Start::Latest),
//! );
//! let carts = visits
//!     .filter(|v| v.last_action == "ShoppingCart")
//!     .write(sink::KafkaSink::new("spark.streaming.carts.abandoned", Visit::csv_line));
//! let q = Query::new("website-analytics")
//!     .trigger(Trigger::every(Duration::from_secs(1)))
//!     .start([carts])?;
//! q.for_duration(Duration::from_secs(30))?; // one line per batch, then returns
//! q.stop()?;
//! # Ok(()) }
//! ```
//!
//! - [`builder`]: the query's name and trigger; `start(branches)` takes the
//!   checkpoint's lock (one engine per checkpoint, see [`crate::stream::lock`]) and spawns the engine;
//! - `engine`: the micro-batch loop (cut, write ahead, apply, commit) and the replay of a batch
//!   an earlier run left pending;
//! - [`handle`]: status, progress, bounded watches, stop; the progress is also published to the
//!   checkpoint folder for other kernels ([`crate::stream::progress::read_published`]);
//! - `outage`: a step that finds Kafka, Redis or MariaDB not answering is retried with a
//!   growing pause for a bounded time ([`Query::outage_retry`]), the status naming the service;
//! - [`registry`]: the queries of this process by name.

pub mod builder;
mod engine;
pub mod handle;
mod outage;
pub mod registry;

pub use builder::Query;
pub use handle::StreamingQuery;
pub use outage::OUTAGE_RETRY;
pub use registry::{active, get, stop, stop_all};

use crate::config::Settings;
use crate::error::Result;
use crate::stream::checkpoint::{self, Checkpoint};
use crate::stream::source::Offsets;

/// Offsets of a query's checkpoint (for tests and notebooks).
pub fn checkpoint_offsets(settings: &Settings, query: &str) -> Result<Offsets> {
    Ok(Checkpoint::load(&checkpoint::dir_for(&settings.checkpoint_dir, query), query)?.offsets)
}
