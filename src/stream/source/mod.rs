//! Sources: where a query's records come from, as reproducible offset ranges.
//!
//! A [`Source`] opens a [`SourceReader`] at the checkpoint's offsets; the engine asks the reader
//! for its end offsets, reads a batch up to them and commits the batch's end once every branch
//! applied it. A batch covers, per partition, the half-open range `start..end`; a batch replayed
//! after a crash re-reads exactly that range (`exact`), so a source must hand out the same
//! records for the same range. Two sources ship:
//!
//! - [`KafkaSource`]: topics of the broker (the course's);
//! - [`MemorySource`]: partitions held in memory that a test or a notebook appends to; its
//!   offsets are checkpointed like Kafka's (positions in each partition), so a query restarted on
//!   the same `MemorySource` value resumes where it committed.

pub mod kafka;
pub mod memory;

pub use kafka::KafkaSource;
pub use memory::MemorySource;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;
use crate::error::Result;

/// Where a query starts when its checkpoint has no offsets (checkpoint offsets always win).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// The first offset still in the topic.
    Earliest,
    /// Only records written after the query started (the course's chapter 4).
    #[default]
    Latest,
    /// The consumer group's committed offsets, else earliest.
    Committed,
}

/// Offsets per topic and partition.
pub type Offsets = BTreeMap<String, BTreeMap<i32, i64>>;

/// One record as read.
#[derive(Debug, Clone)]
pub struct Msg {
    /// The topic's name, shared by the records a reader reads (no copy per record).
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Offsets `from..to` of a partition that the broker removed (retention, deleted records) before
/// the query read them. With Kafka's `fail_on_data_loss(false)` the query skips them and the next
/// batch's [`crate::stream::Progress::data_loss`] names the range.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataLoss {
    pub topic: String,
    pub partition: i32,
    /// First offset lost (the query's position).
    pub from: i64,
    /// First offset still held (the partition's low watermark); `from..to` is lost.
    pub to: i64,
}

impl std::fmt::Display for DataLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}[{}] offsets {}..{} ({} records)",
            self.topic,
            self.partition,
            self.from,
            self.to,
            self.to - self.from
        )
    }
}

/// What the engine needs to know about a source's batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// At most this many records per micro-batch.
    pub max_records: usize,
    /// Larger values are dead letters.
    pub max_value_bytes: usize,
    /// Dead letters go to `<topic>.dlq` on the Kafka broker (else they are only counted).
    pub dead_letters: bool,
}

/// A replayable, checkpointable source of records.
pub trait Source: Send + Sync {
    /// What the source reads, for messages (`kafka topic visits`, `memory visits`).
    fn describe(&self) -> String;

    /// Batch size, value size and dead-letter policy.
    fn limits(&self) -> Limits;

    /// Opens a reader positioned at `checkpoint` (partitions the checkpoint does not name start
    /// where the source's starting rule says). `query` names the query in errors and groups.
    fn open(
        &self,
        settings: &Settings,
        query: &str,
        checkpoint: &Offsets,
    ) -> Result<Box<dyn SourceReader>>;
}

/// An open source: cuts batches and remembers the committed position.
pub trait SourceReader: Send {
    /// The next offset of every partition (the committed position of the query).
    fn position(&self) -> &Offsets;

    /// The end offsets of every partition now.
    fn end_offsets(&mut self) -> Result<Offsets>;

    /// Reads from the position up to `targets` (never beyond), at most `max` records, waiting at
    /// most `wait` for records the end offsets promised; `exact` (a replay) fails rather than
    /// return fewer records than the range holds. Returns the records and the end of the range
    /// they cover.
    fn read(
        &mut self,
        targets: &Offsets,
        max: usize,
        wait: Duration,
        exact: bool,
    ) -> Result<(Vec<Msg>, Offsets)>;

    /// The batch ending at `end` is committed: the next batch starts there.
    fn commit(&mut self, end: &Offsets);

    /// The ranges skipped as lost since the last call (a source that never loses data: none).
    fn take_data_loss(&mut self) -> Vec<DataLoss> {
        Vec::new()
    }
}

/// True when some partition's position is below its target.
pub(crate) fn is_behind(pos: &Offsets, targets: &Offsets) -> bool {
    pos.iter().any(|(t, ps)| {
        ps.iter()
            .any(|(p, o)| targets.get(t).and_then(|m| m.get(p)).is_some_and(|e| o < e))
    })
}

/// Fails when the committed position of a partition is beyond its end offset: the topic was
/// recreated under the query. The rule is to fail loudly with the fix (reset the query) rather
/// than guess: a recreated topic that already holds more records than the checkpoint's offset
/// cannot be told from the old one by offsets alone (Kafka's topic id is not exposed here).
pub(crate) fn check_not_behind(pos: &Offsets, ends: &Offsets, query: &str) -> Result<()> {
    for (t, ps) in pos {
        for (p, o) in ps {
            if let Some(e) = ends.get(t).and_then(|m| m.get(p)).filter(|e| o > *e) {
                return Err(kafka::recreated(query, t, *p, *o, *e));
            }
        }
    }
    Ok(())
}
