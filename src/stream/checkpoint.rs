//! The checkpoint of a query: one JSON file per query under `Settings.checkpoint_dir/<query>/`,
//! written atomically (temporary file, fsync, rename, fsync of the folder).
//!
//! Protocol for one batch (write-ahead):
//! 1. the batch is read and cut: `pending = {batch N, offsets start..end, batch time, sink plans}`
//!    is written **before** any sink runs;
//! 2. every sink applies batch N (each sink skips a batch it already applied);
//! 3. the commit writes `offsets = end`, `next_batch = N + 1`, the sinks' states (window state),
//!    and clears `pending`.
//!
//! After a crash between 1 and 3, a restart finds `pending` and replays batch N with the same id,
//! the same records and the same batch time before reading anything new. Checkpoint offsets take
//! precedence over the source's starting offsets.
//!
//! Where: `Settings.checkpoint_dir` is an absolute folder (see [`crate::config`]), the same for
//! every kernel and process of the user whatever their working directory, so one query has one
//! checkpoint; a query's status names its folder ([`crate::stream::Summary::checkpoint`]).
//! Beside each folder sits its lock file (`<query>.lock`, see [`crate::stream::lock`]).
//!
//! Starting afresh goes through [`reset`] (or [`reset_with`], which also clears the query's
//! outputs): it takes the query's lock, so it refuses while the query runs anywhere. Deleting the
//! folder by hand under a running query does not start it afresh: no second engine starts while
//! it runs, and the running engine writes its checkpoint again at its next commit (see
//! [`crate::stream::lock`]).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::stream::source::Offsets;

/// A batch cut but not yet committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingBatch {
    pub batch_id: u64,
    pub start: Offsets,
    pub end: Offsets,
    pub batch_time_ms: i64,
    /// A final flush (emits all open windows) rather than a read.
    #[serde(default)]
    pub flush: bool,
    /// What each sink recorded before applying (by sink name).
    #[serde(default)]
    pub plans: Vec<(String, serde_json::Value)>,
    /// The records whose rows no sink applies because a sink's `check` refused them when the
    /// batch was cut. A replay applies exactly this decision instead of checking again against
    /// limits that may have changed since (a widened column would keep a row the first run
    /// left out, and shift the Kafka sink's `bde-seq`). `None` in a checkpoint written before
    /// the field existed: the replay checks again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Vec<RecordPos>>,
    /// Records whose rows one branch leaves out because its server refused them (found by
    /// bisecting the batch after the retries), by branch (sink) name; recorded before the
    /// branch applies the rest, and applied again as is by a replay.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused_by: Vec<(String, Vec<RecordPos>)>,
}

/// Where a record is: topic, partition, offset.
pub type RecordPos = (String, i32, i64);

/// The whole checkpoint of a query.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    pub query: String,
    /// Id of the next batch.
    pub next_batch: u64,
    /// Committed source positions (next offset to read).
    pub offsets: Offsets,
    /// State per sink name (window state).
    #[serde(default)]
    pub states: Vec<(String, serde_json::Value)>,
    #[serde(default)]
    pub pending: Option<PendingBatch>,
    /// Identity of this checkpoint's lineage, made when the checkpoint is first written. Sinks
    /// key their applied-batch markers by `query@epoch`, so a new checkpoint (a reset, a fresh
    /// clone) starts with fresh markers instead of skipping batches an older lineage applied.
    #[serde(default)]
    pub epoch: String,
    /// Processing time of the last committed batch: batch times never go below it, even when
    /// the wall clock steps back (NTP) between two runs.
    #[serde(default)]
    pub last_batch_time_ms: i64,
}

/// A new lineage id: milliseconds since the epoch and 16 random bits, in hex.
pub fn new_epoch() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{ms:x}{:04x}", rand::random::<u16>())
}

/// The folder of a query's checkpoint: the name itself when it is a safe folder name, else the
/// name with unsafe characters replaced and a hash of the exact name appended, so two names that
/// read the same once sanitised (`a/b`, `a:b`) never share a checkpoint.
pub fn dir_for(root: &Path, query: &str) -> PathBuf {
    let safe: String = query
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe == query && !query.is_empty() && !query.starts_with('.') {
        return root.join(safe);
    }
    root.join(format!("{safe}-{:016x}", fnv1a(query.as_bytes())))
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust versions (folder names must).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn file(dir: &Path) -> PathBuf {
    dir.join("checkpoint.json")
}

impl Checkpoint {
    /// Loads the checkpoint in `dir`, or an empty one when there is none.
    pub fn load(dir: &Path, query: &str) -> Result<Checkpoint> {
        let f = file(dir);
        match fs::read(&f) {
            Ok(bytes) => {
                let cp: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::invalid(format!(
                        "checkpoint {} is damaged ({e}); to start over, reset it: `stream::checkpoint::reset(root, \"{query}\")`",
                        f.display()
                    ))
                })?;
                if cp.query != query {
                    return Err(Error::invalid(format!(
                        "checkpoint {} belongs to query '{}', not '{query}'; give the query its own checkpoint folder",
                        f.display(),
                        cp.query
                    )));
                }
                Ok(cp)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Checkpoint {
                query: query.into(),
                ..Default::default()
            }),
            Err(e) => Err(Error::file(f, e)),
        }
    }

    /// Writes the checkpoint atomically: temp file + fsync + rename + fsync of the folder. Only
    /// the lock's holder saves, so a folder removed under it (a user deleting the checkpoint of a
    /// running query) is made again and the write starts over, a few times at most.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::invalid(format!("checkpoint encoding: {e}")))?;
        let mut attempt = 0;
        loop {
            match write_atomically(dir, &bytes) {
                Err((_, e)) if e.kind() == std::io::ErrorKind::NotFound && attempt < 3 => {
                    attempt += 1;
                }
                Err((path, e)) => return Err(Error::file(&path, e)),
                Ok(()) => return Ok(()),
            }
        }
    }

    /// The state recorded for a sink.
    pub fn state_of(&self, sink: &str) -> Option<&serde_json::Value> {
        self.states.iter().find(|(n, _)| n == sink).map(|(_, v)| v)
    }
}

/// One attempt of [`Checkpoint::save`]; an error comes with the path it concerns.
fn write_atomically(
    dir: &Path,
    bytes: &[u8],
) -> std::result::Result<(), (PathBuf, std::io::Error)> {
    fn at(p: &Path) -> impl FnOnce(std::io::Error) -> (PathBuf, std::io::Error) + '_ {
        move |e| (p.to_path_buf(), e)
    }
    fs::create_dir_all(dir).map_err(at(dir))?;
    let tmp = dir.join("checkpoint.json.tmp");
    {
        let mut f = fs::File::create(&tmp).map_err(at(&tmp))?;
        f.write_all(bytes).map_err(at(&tmp))?;
        f.sync_all().map_err(at(&tmp))?;
    }
    let target = file(dir);
    fs::rename(&tmp, &target).map_err(at(&target))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Marks the query alive once: writes `<dir>/heartbeat`, so other processes (another notebook
/// kernel) can tell a running query from a stopped one ([`is_alive`]). Best effort, and never
/// makes the folder: only the lock's holder writes a removed folder again (with the whole
/// checkpoint, see [`crate::stream::lock`]). A running query keeps a [`Heartbeat`], which beats
/// on its own thread.
pub fn heartbeat(dir: &Path) {
    let _ = fs::write(dir.join("heartbeat"), format!("{}\n", std::process::id()));
}

/// Removes the heartbeat when the query ends (after its final flush).
pub fn heartbeat_stop(dir: &Path) {
    let _ = fs::remove_file(dir.join("heartbeat"));
}

/// How often a [`Heartbeat`] rewrites its file.
pub const BEAT: std::time::Duration = std::time::Duration::from_secs(1);

/// How old a heartbeat may be before other processes take its query for dead (see [`is_alive`]).
/// A query that ends removes its heartbeat at once; this only covers a process that died. Ten
/// beats of margin: the beat thread may starve while kernels compile beside it (three at once in
/// the course's chapter-4 replay on 2 cores).
pub const ALIVE_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The heartbeat of a running query: a thread that rewrites `<dir>/heartbeat` every [`BEAT`]
/// until the value is dropped, which removes the file. It beats while a long batch runs (a loop
/// that beat only between batches looked dead to another kernel while a slow batch ran), and a
/// query that ends, by a stop or an error, stops beating at once. A process that dies leaves a
/// file that only grows old.
#[derive(Debug)]
pub struct Heartbeat {
    dir: PathBuf,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    /// Starts beating in `dir` (one beat now, then every [`BEAT`]).
    pub fn start(dir: &Path) -> Heartbeat {
        Heartbeat::every(dir, BEAT)
    }

    /// Starts beating in `dir` every `interval`.
    pub fn every(dir: &Path, interval: std::time::Duration) -> Heartbeat {
        heartbeat(dir);
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let beat_dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("bde-heartbeat".into())
            .spawn(move || {
                // Disconnected (the Heartbeat was dropped) ends the loop at once.
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(interval)
                {
                    heartbeat(&beat_dir);
                }
            })
            .ok();
        Heartbeat {
            dir: dir.to_path_buf(),
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        heartbeat_stop(&self.dir);
    }
}

/// True when the query in `dir` beat within `within` (see [`Heartbeat`]).
pub fn is_alive(dir: &Path, within: std::time::Duration) -> bool {
    fs::metadata(dir.join("heartbeat"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < within)
}

/// Deletes the checkpoint of `query` under the checkpoint root `root` (usually
/// `settings.checkpoint_dir`): the query starts afresh at its next start, with a new
/// lineage (sink markers start over). Missing is fine. Fails with [`Error::CheckpointLocked`]
/// while the query runs (here or in another process). This is the way to start a query afresh:
/// a folder deleted by hand under a running query is written again by that query.
pub fn reset(root: &Path, query: &str) -> Result<()> {
    reset_with(root, query, || Ok(()))
}

/// Resets a query's outputs and its checkpoint together: takes the checkpoint's lock (failing
/// with [`Error::CheckpointLocked`] while the query runs anywhere), runs `outputs` (delete a
/// Redis key, truncate a table) and then deletes the checkpoint, all under the lock, so no
/// instance of the query can start in between and count into outputs about to be deleted.
pub fn reset_with(root: &Path, query: &str, outputs: impl FnOnce() -> Result<()>) -> Result<()> {
    let d = dir_for(root, query);
    let lock = crate::stream::lock::CheckpointLock::acquire(&d, query)?;
    outputs()?;
    let r = fs::remove_dir_all(&d);
    drop(lock);
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::file(d, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_and_load_round_trip_atomically() {
        let root = std::env::temp_dir().join(format!("bde_cp_test_{}", std::process::id()));
        let dir = dir_for(&root, "my query/1");
        assert!(
            dir.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("my_query_1-")),
            "{}",
            dir.display()
        );
        assert_eq!(dir_for(&root, "plain-name.1"), root.join("plain-name.1"));
        assert_ne!(
            dir_for(&root, "a/b"),
            dir_for(&root, "a:b"),
            "names equal once sanitised get their own folders"
        );
        let empty = Checkpoint::load(&dir, "q").expect("empty");
        assert_eq!(empty.next_batch, 0);
        let mut cp = Checkpoint {
            query: "q".into(),
            next_batch: 7,
            ..Default::default()
        };
        cp.offsets.entry("t".into()).or_default().insert(0, 42);
        cp.pending = Some(PendingBatch {
            batch_id: 7,
            start: cp.offsets.clone(),
            end: cp.offsets.clone(),
            batch_time_ms: 5,
            flush: false,
            plans: vec![],
            refused: Some(vec![("t".into(), 0, 41)]),
            refused_by: vec![("sink".into(), vec![("t".into(), 0, 40)])],
        });
        cp.save(&dir).expect("save");
        assert!(!dir.join("checkpoint.json.tmp").exists());
        assert_eq!(Checkpoint::load(&dir, "q").expect("load"), cp);
        let other =
            Checkpoint::load(&dir, "another query").expect_err("a checkpoint of another query");
        assert!(
            other.to_string().contains("belongs to query 'q'"),
            "{other}"
        );
        reset(&root, "my query/1").expect("reset");
        assert_eq!(
            Checkpoint::load(&dir, "q").expect("empty again").next_batch,
            0
        );
        let _ = fs::remove_dir_all(&root);
    }

    /// The heartbeat comes back after its file is removed (it beats on its own, without the
    /// query's loop), and is gone, for good, once the Heartbeat is dropped.
    #[test]
    fn a_heartbeat_beats_on_its_own_until_dropped() {
        let dir = std::env::temp_dir().join(format!("bde_heartbeat_{}", std::process::id()));
        let alive = || is_alive(&dir, std::time::Duration::from_secs(60));
        fs::create_dir_all(&dir).expect("folder");
        let beat = Heartbeat::every(&dir, std::time::Duration::from_millis(5));
        assert!(alive(), "the first beat is written at start");
        heartbeat_stop(&dir);
        let t0 = std::time::Instant::now();
        while !alive() && t0.elapsed() < std::time::Duration::from_secs(30) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(alive(), "the heartbeat thread rewrote the file");
        drop(beat);
        assert!(!alive(), "dropping the Heartbeat removes the file");
        std::thread::sleep(std::time::Duration::from_millis(30));
        assert!(!alive(), "and nothing beats after the drop");
        let _ = fs::remove_dir_all(&dir);
    }
}
