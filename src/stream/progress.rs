//! What a running query reports: per-batch [`Progress`], the query [`Status`], and a
//! [`Summary`] of a run. Plain data: `show::stream` renders them (table + rows/s chart).

use std::fmt;

use crate::stream::clock::fmt_ms;
use crate::stream::source::DataLoss;

/// One batch, as it went.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub batch_id: u64,
    /// Processing time of the batch (engine milliseconds).
    pub batch_time_ms: i64,
    /// Records read (valid rows + dead letters).
    pub rows_in: u64,
    /// Records read per second of batch duration.
    pub rows_per_sec: f64,
    pub duration_ms: u64,
    /// Watermark after the batch (windowed sinks).
    pub watermark_ms: Option<i64>,
    /// Rows (effects) written by each sink, 0 when it skipped an already-applied batch.
    pub sink_rows: Vec<(String, u64)>,
    /// Milliseconds each sink took to apply the batch.
    pub sink_ms: Vec<(String, u64)>,
    /// Milliseconds spent reading the batch's records from Kafka (Spark's `getBatch`).
    pub read_ms: u64,
    /// Milliseconds spent decoding them into rows and checking them against the sinks.
    #[serde(default)]
    pub decode_ms: u64,
    /// Milliseconds spent writing the batch's plan ahead to the checkpoint (Spark's `walCommit`).
    #[serde(default)]
    pub write_ahead_ms: u64,
    /// Milliseconds spent sending dead letters.
    #[serde(default)]
    pub dead_letter_ms: u64,
    /// Milliseconds spent committing: offsets and window state to the checkpoint, offsets to Kafka.
    #[serde(default)]
    pub commit_ms: u64,
    pub dead_letters: u64,
    /// Late rows dropped in this batch.
    pub late_rows: u64,
    /// Replay of a batch cut before a crash.
    pub replay: bool,
    /// The final flush on stop.
    pub flush: bool,
    /// Offset ranges the broker removed before the query read them, skipped because the source
    /// accepts data loss (`KafkaSource::fail_on_data_loss(false)`); the batch starts after them.
    #[serde(default)]
    pub data_loss: Vec<DataLoss>,
}

impl Progress {
    /// Where the batch's time went, step by step, in milliseconds (Spark's `durationMs`): read,
    /// decode, write-ahead, each sink by name, dead letters, commit.
    pub fn steps(&self) -> Vec<(String, u64)> {
        let mut v = vec![
            ("read".to_string(), self.read_ms),
            ("decode".to_string(), self.decode_ms),
            ("write-ahead".to_string(), self.write_ahead_ms),
        ];
        v.extend(
            self.sink_ms
                .iter()
                .map(|(n, ms)| (format!("sink {n}"), *ms)),
        );
        v.push(("dead letters".to_string(), self.dead_letter_ms));
        v.push(("commit".to_string(), self.commit_ms));
        v
    }

    /// The one short line a bounded run prints per batch.
    pub fn line(&self) -> String {
        let sinks: Vec<String> = self
            .sink_rows
            .iter()
            .map(|(n, r)| format!("{n}={r}"))
            .collect();
        let mut s = format!(
            "batch {:>4}  rows {:>6}  {:>9.0} rows/s  {:>5} ms",
            self.batch_id, self.rows_in, self.rows_per_sec, self.duration_ms
        );
        if let Some(w) = self.watermark_ms {
            s.push_str(&format!("  watermark {}", fmt_ms(w)));
        }
        if self.dead_letters > 0 {
            s.push_str(&format!("  dead letters {}", self.dead_letters));
        }
        if self.late_rows > 0 {
            s.push_str(&format!("  late {}", self.late_rows));
        }
        for l in &self.data_loss {
            s.push_str(&format!("  LOST {l}"));
        }
        if self.replay {
            s.push_str("  (replayed)");
        }
        if self.flush {
            s.push_str("  (final flush)");
        }
        s.push_str(&format!("  [{}]", sinks.join(" ")));
        s
    }
}

/// Where a query is in its life.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    Starting,
    Running,
    /// Running, but waiting for a service that does not answer (Kafka, Redis or MariaDB): names
    /// the service, its address and the step, and when the query gives up (see
    /// `Query::outage_retry`).
    Retrying(String),
    /// Stop requested: finishing the batch in flight, committing, flushing.
    Stopping,
    Stopped,
    Failed(String),
}

impl Status {
    /// Stopped or failed.
    pub fn is_terminated(&self) -> bool {
        matches!(self, Status::Stopped | Status::Failed(_))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Failed(e) => write!(f, "failed: {e}"),
            Status::Retrying(e) => write!(f, "retrying: {e}"),
            other => write!(f, "{}", format!("{other:?}").to_lowercase()),
        }
    }
}

/// A query's status and recent batches, for a notebook cell.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub name: String,
    pub status: Status,
    /// The query's checkpoint folder (absolute; empty when unknown).
    #[serde(default)]
    pub checkpoint: std::path::PathBuf,
    pub batches: Vec<Progress>,
    pub total_rows: u64,
    pub total_dead_letters: u64,
    pub total_late: u64,
}

impl Summary {
    /// [`Progress::steps`] summed over the batches kept: where the query's time went.
    pub fn steps_total(&self) -> Vec<(String, u64)> {
        let mut total: Vec<(String, u64)> = Vec::new();
        for p in &self.batches {
            for (name, ms) in p.steps() {
                match total.iter_mut().find(|(n, _)| *n == name) {
                    Some(e) => e.1 += ms,
                    None => total.push((name, ms)),
                }
            }
        }
        total
    }
}

/// Batches kept in a published progress file.
pub const PUBLISHED_BATCHES: usize = 120;

/// What a running query publishes for other kernels and processes (a dashboard, a monitor
/// notebook): `<checkpoint dir>/progress.json`, rewritten atomically after every batch and on
/// every status change.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Published {
    /// The engine's process.
    pub pid: u32,
    /// When the file was written (milliseconds since the Unix epoch, UTC).
    pub written_ms: i64,
    /// Status, the last [`PUBLISHED_BATCHES`] batches and the totals since start.
    pub summary: Summary,
}

const PUBLISHED_FILE: &str = "progress.json";

/// Writes `published` to `<dir>/progress.json` (temporary file, then rename). Best effort: a
/// full disk must not stop the query, so errors are returned for the caller to ignore or log.
pub fn publish(dir: &std::path::Path, published: &Published) -> std::io::Result<()> {
    let tmp = dir.join("progress.json.tmp");
    let bytes = serde_json::to_vec(published).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, dir.join(PUBLISHED_FILE))
}

/// Reads what the query `query` under the checkpoint root `root` published last, `None` when it
/// never ran there. `Published::written_ms` tells how fresh it is; a query that ended says so in
/// its status (a killed process leaves `running` behind: compare `written_ms` with the trigger).
pub fn read_published(
    root: &std::path::Path,
    query: &str,
) -> crate::error::Result<Option<Published>> {
    let f = crate::stream::checkpoint::dir_for(root, query).join(PUBLISHED_FILE);
    match std::fs::read(&f) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            crate::error::Error::invalid(format!(
                "progress file {} is damaged ({e}); it is rewritten by the next batch",
                f.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::error::Error::file(f, e)),
    }
}
