//! The micro-batch streaming engine (chapters 4 and 6): sources, typed streams of operators,
//! windows with watermarks, exactly-once sinks, checkpoints and query handles for notebooks.
//!
//! The Rust counterpart of Spark Structured Streaming for this course:
//!
//! - [`source`] — the [`Source`] trait: [`KafkaSource`] (topics, starting offsets ([`Start`]),
//!   records per batch, dead letters) and [`MemorySource`] (tests and teaching);
//! - [`Row`] — how a record value becomes a typed row (a serde struct declared where it is used, `String` for chapter 6);
//! - [`Stream`] ([`dataflow`]) — the operators: `filter`, `map`, `with_watermark` /
//!   `with_event_time`, `window(...).agg(...)`; each use ending in a sink is a [`Branch`];
//! - [`sink`] — Kafka, Redis `ZINCRBY`, MariaDB, memory, console, `foreach_batch`;
//! - [`Trigger`] — every interval, once, available-now;
//! - [`Query`] → [`StreamingQuery`] — start the branches of one read in the background, watch
//!   with bounded runs, stop;
//! - [`checkpoint`] — offsets and operator state per query, write-ahead, atomic.
//!
//! # Delivery guarantees
//!
//! A batch is cut (offsets `start..end`, batch time, sink plans, the records a check refused),
//! ordered by topic, partition and offset, and written ahead to the
//! checkpoint before any sink runs; after every sink applied it, the checkpoint commits. A batch
//! replayed after a crash has the same id, records and batch time, and every sink skips what it
//! already applied: Redis (the increments and the marker in one Lua script) and MariaDB (transaction +
//! `bde_sink_progress` row) are exactly-once; the Kafka sink is exactly-once for a single writer
//! per output topic through a replay check on record headers (idempotent producer), at-least-once
//! otherwise. Kafka transactions are not used: the local broker does support them
//! (`tests/stream_kafka_txn.rs`: committed records visible, aborted ones hidden under
//! `read_committed`), but a transaction alone would still duplicate a batch whose commit landed
//! just before a crash, and the header replay check covers that without them. Dead letters are
//! at-least-once. Rows a server refuses that no check models are found by bisecting the batch
//! after the sink's retries (see [`query`]'s engine) and dead-lettered with the server's error.
//!
//! # Scale-out
//!
//! Several processes share a topic with [`KafkaSource::member`] (a fixed share of the partitions,
//! one consumer group, a query name per member). Redis `ZINCRBY` and the additive MariaDB upsert
//! on `(window, key)` make their effects add up.

pub mod checkpoint;
pub mod clock;
pub mod crashpoint;
pub mod dataflow;
pub mod deadletter;
pub mod lock;
pub mod progress;
pub mod query;
pub mod row;
pub mod sink;
pub mod source;
pub mod trigger;
pub mod window;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dataflow::{sum, Agg, Branch, Stream, Timed, Window, Windowing};
pub use deadletter::DeadLetter;
pub use progress::{Progress, Status, Summary};
pub use query::{active, get, stop, stop_all, Query, StreamingQuery};
pub use row::{decode_json, Row};
pub use sink::{BatchInfo, Probe, Sink};
pub use source::{DataLoss, KafkaSource, MemorySource, Source, Start};
pub use trigger::Trigger;
pub use window::{AggValue, Mode, WindowRow};
