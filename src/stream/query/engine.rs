//! The engine: the micro-batch loop of one query, run on a blocking thread of the kit's runtime.
//!
//! One batch goes: **cut** (read up to the end offsets, at most `max_records`; every batch is
//! ordered by topic, partition and offset, so a replay sees the rows in the same order), **decode**
//! (undecodable values and rows a sink would always reject become dead letters), **write ahead**
//! (the batch's range, batch time, sink plans and the records the checks refused go to the
//! checkpoint's `pending`), **apply** (each sink, retried; sinks skip what they applied before),
//! **commit** (offsets, window state, `pending` cleared). A restart finds a pending batch and
//! replays it first, with the same id, records and batch time, and leaves out exactly the
//! records the first run refused (not what the checks say now: a column widened in between
//! would keep a row the first run left out). Named crash points ([`crate::stream::crashpoint`])
//! sit between the steps.
//!
//! Rows the server refuses: when a sink still fails a batch after its retries with an error
//! that is not a connection failure, the engine bisects the batch with [`Pipe::probe`] (rows tried
//! and rolled back): it grows a set the server accepts, halving every part it refuses down to
//! single rows, so a row that fails only beside another (a duplicate key within the batch) is
//! found too. Those rows are dead-lettered with the server's error and left out of that branch
//! only (the branches before it wrote them already); the positions go to `pending` before the
//! branch applies the rest, so a replay does the same. When bisecting cannot help (the sink
//! cannot try rows, the server accepts every row apart), the error says so and names the way
//! out: [`Query::dead_letter_refused_batches`](crate::stream::Query::dead_letter_refused_batches).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::stream::checkpoint::{self, Checkpoint, PendingBatch, RecordPos};
use crate::stream::clock::Clock;
use crate::stream::crashpoint;
use crate::stream::dataflow::Pipe;
use crate::stream::deadletter::{DeadLetter, DeadLetterWriter};
use crate::stream::lock::CheckpointLock;
use crate::stream::progress::{Progress, Status};
use crate::stream::query::builder::{Listener, Query};
use crate::stream::query::handle::Shared;
use crate::stream::query::outage;
use crate::stream::row::Row;
use crate::stream::sink::{BatchInfo, Probe};
use crate::stream::source::{self, Limits, Msg, Source, SourceReader};
use crate::stream::trigger::Trigger;

/// Times a sink is retried on one batch before the query fails.
const SINK_RETRIES: u64 = 3;
/// How long a replay may wait for the records of its recorded range.
const REPLAY_READ_WAIT: Duration = Duration::from_secs(60);
/// How long one read waits for records the end offsets promised.
const READ_WAIT: Duration = Duration::from_secs(5);

pub(super) struct Engine<T: Row> {
    name: String,
    /// `name@epoch`, what sinks key their markers by; set when the checkpoint is loaded.
    identity: String,
    source: Arc<dyn Source>,
    limits: Limits,
    /// The branches of the read (operators and sink each), called sinks here.
    sinks: Vec<Box<dyn Pipe<T>>>,
    trigger: Trigger,
    clock: Arc<dyn Clock>,
    cp_dir: PathBuf,
    settings: Settings,
    final_flush: bool,
    /// When bisecting cannot help, dead-letter the branch's rows of the batch and go on.
    dead_letter_refused: bool,
    deadline: Duration,
    /// How long a step is retried while a service does not answer (see [`outage`]).
    outage_retry: Duration,
    listener: Option<Listener>,
    shared: Arc<Shared>,
    /// Held for the engine's life: one engine per checkpoint.
    lock: CheckpointLock,
}

/// A batch's decoded rows and the records that became dead letters.
struct Decoded<T> {
    rows: Vec<T>,
    dead: Vec<DeadLetter>,
    /// The batch's records, in order (kept for dead letters of rows a server refuses).
    msgs: Vec<Msg>,
    /// The record of each row, by index into `msgs`.
    origin: Vec<usize>,
    /// The records whose rows a check refused (see `PendingBatch::refused`).
    refused: Vec<RecordPos>,
}

/// Where a record is.
fn pos_of(m: &Msg) -> RecordPos {
    (m.topic.to_string(), m.partition, m.offset)
}

/// The state one run of the loop carries.
struct RunState {
    cp: Checkpoint,
    reader: Box<dyn SourceReader>,
    dlq: DeadLetterWriter,
}

impl<T: Row> Engine<T> {
    pub(super) fn new(
        q: Query,
        source: Arc<dyn Source>,
        sinks: Vec<Box<dyn Pipe<T>>>,
        cp_dir: PathBuf,
        shared: Arc<Shared>,
        lock: CheckpointLock,
    ) -> Engine<T> {
        Engine {
            identity: q.name.clone(),
            name: q.name,
            limits: source.limits(),
            source,
            sinks,
            trigger: q.trigger,
            clock: q.clock,
            cp_dir,
            // `Query::start` refuses a query without settings
            settings: q.settings.unwrap_or_default(),
            final_flush: q.final_flush,
            dead_letter_refused: q.dead_letter_refused,
            deadline: q.deadline,
            outage_retry: q.outage_retry,
            listener: q.listener,
            shared,
            lock,
        }
    }

    /// Writes the checkpoint, after checking that the engine still holds the lock at its path
    /// ([`CheckpointLock::check`]). A checkpoint folder removed under the running query (the
    /// lock beside it still held) is written again, whole, from the engine's state, and said so.
    fn save(&self, cp: &Checkpoint) -> Result<()> {
        self.lock.check()?;
        if !self.cp_dir.is_dir() {
            eprintln!(
                "query {}: its checkpoint {} was removed while it ran; written again from the running query (to start afresh, stop it and call `stream::checkpoint::reset`)",
                self.name,
                self.cp_dir.display()
            );
        }
        cp.save(&self.cp_dir)
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    /// Loads the checkpoint, opens the sinks and the reader, replays a pending batch.
    fn open(&mut self) -> Result<RunState> {
        let mut cp = Checkpoint::load(&self.cp_dir, &self.name)?;
        if cp.epoch.is_empty() {
            cp.epoch = checkpoint::new_epoch();
            self.save(&cp)?;
        }
        // Sinks know the query by name and checkpoint lineage (see `Checkpoint::epoch`).
        self.identity = format!("{}@{}", self.name, cp.epoch);
        for s in self.sinks.iter_mut() {
            s.open(&self.identity, &self.settings)?;
            if let Some(st) = cp.state_of(&s.name()) {
                s.restore(st)?;
            }
        }
        let reader = self.source.open(&self.settings, &self.name, &cp.offsets)?;
        if cp.offsets != *reader.position() && cp.pending.is_none() {
            // Pin the resolved starting offsets, so a restart does not move to a newer "latest".
            cp.offsets = reader.position().clone();
            self.save(&cp)?;
        }
        let mut st = RunState {
            cp,
            reader,
            dlq: DeadLetterWriter::new(),
        };
        self.shared.set_status(Status::Running);
        if let Some(p) = st.cp.pending.clone() {
            let started = Instant::now();
            let msgs = if p.flush {
                Vec::new()
            } else {
                let reader = &mut st.reader;
                outage::ride_out(&self.shared, self.outage_retry, "replay's read", || {
                    reader.read(&p.end, usize::MAX, REPLAY_READ_WAIT, true)
                })?
                .0
            };
            let read_ms = started.elapsed().as_millis() as u64;
            self.run_batch(&mut st, p, msgs, true, started, read_ms)?;
        }
        Ok(st)
    }

    pub(super) fn run(mut self) -> Result<()> {
        // Beats on its own thread until the run ends (a stop, a bounded run's end or an error).
        let _alive = checkpoint::Heartbeat::start(&self.cp_dir);
        let mut st = self.open()?;
        let bounded = !matches!(self.trigger, Trigger::Every(_));
        let run_deadline = Instant::now() + self.deadline;
        let fixed_targets = match self.trigger {
            Trigger::AvailableNow => Some(st.reader.end_offsets()?),
            _ => None,
        };
        let interval = match self.trigger {
            Trigger::Every(d) => d,
            _ => Duration::ZERO,
        };
        let mut last_start: Option<Instant> = None;
        while !self.stopping() {
            // an idle query notices a lost lock too, not only at its next write
            self.lock.check()?;
            if let Some(ls) = last_start {
                let due = ls + interval;
                while Instant::now() < due && !self.stopping() {
                    std::thread::sleep((due - Instant::now()).min(Duration::from_millis(20)));
                }
                if self.stopping() {
                    break;
                }
            }
            last_start = Some(Instant::now());
            let targets = match &fixed_targets {
                Some(t) => t.clone(),
                None => {
                    let reader = &mut st.reader;
                    outage::ride_out(&self.shared, self.outage_retry, "read end offsets", || {
                        reader.end_offsets()
                    })?
                }
            };
            source::check_not_behind(st.reader.position(), &targets, &self.name)?;
            let behind = source::is_behind(st.reader.position(), &targets);
            let now = self.clock.now_ms();
            let wants_empty = self.sinks.iter().any(|s| s.wants_empty_batch(now));
            if !behind && !wants_empty {
                if bounded {
                    break;
                }
                if interval.is_zero() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
            if bounded && Instant::now() >= run_deadline {
                return Err(Error::Timeout {
                    what: format!("query '{}' to reach the end offsets {targets:?} (at {:?})", self.name, st.reader.position()),
                    after: self.deadline,
                    hint: "the broker did not return the records its end offsets promise; raise `.deadline(..)` or check the topic".into(),
                });
            }
            // Processing time never goes backwards, across runs too (see `Checkpoint::last_batch_time_ms`).
            let batch_time = self.clock.now_ms().max(st.cp.last_batch_time_ms);
            let started = Instant::now();
            let reader = &mut st.reader;
            let max = self.limits.max_records;
            let (msgs, end) =
                outage::ride_out(&self.shared, self.outage_retry, "read records", || {
                    reader.read(&targets, max, READ_WAIT, false)
                })?;
            let read_ms = started.elapsed().as_millis() as u64;
            if msgs.is_empty() && !wants_empty {
                if end != *st.reader.position() {
                    // only gaps (transaction markers, compacted offsets): move past them
                    st.cp.offsets = end.clone();
                    self.save(&st.cp)?;
                    st.reader.commit(&end);
                }
                continue;
            }
            let pending = PendingBatch {
                batch_id: st.cp.next_batch,
                start: st.reader.position().clone(),
                end,
                batch_time_ms: batch_time,
                flush: false,
                plans: Vec::new(),
                refused: None,
                refused_by: Vec::new(),
            };
            self.run_batch(&mut st, pending, msgs, false, started, read_ms)?;
            if self.trigger == Trigger::Once {
                break;
            }
        }
        if self.final_flush && self.sinks.iter().any(|s| !s.state().is_null()) {
            let pending = PendingBatch {
                batch_id: st.cp.next_batch,
                start: st.reader.position().clone(),
                end: st.reader.position().clone(),
                batch_time_ms: self.clock.now_ms().max(st.cp.last_batch_time_ms),
                flush: true,
                plans: Vec::new(),
                refused: None,
                refused_by: Vec::new(),
            };
            self.run_batch(&mut st, pending, Vec::new(), false, Instant::now(), 0)?;
        }
        Ok(())
    }

    /// Decodes the records (ordered by topic, partition, offset) and drops the rows a sink would
    /// always reject; both become dead letters with their reason. With `decided` (a replay), the
    /// rows dropped are exactly those records, whatever the checks say now.
    fn decode(
        &self,
        info: &BatchInfo,
        mut msgs: Vec<Msg>,
        decided: Option<&[RecordPos]>,
    ) -> Decoded<T> {
        msgs.sort_by(|a, b| {
            (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset))
        });
        let decoded = decode_all::<T>(&msgs, self.limits.max_value_bytes);
        let mut rows: Vec<T> = Vec::with_capacity(msgs.len());
        let mut origin: Vec<usize> = Vec::with_capacity(msgs.len());
        let mut dead: Vec<DeadLetter> = Vec::new();
        for (i, d) in decoded.into_iter().enumerate() {
            match d {
                Ok(r) => {
                    rows.push(r);
                    origin.push(i);
                }
                Err(reason) => dead.push(DeadLetter::new(
                    &self.name,
                    info.batch_id,
                    &msgs[i],
                    &reason,
                )),
            }
        }
        let mut rejected: Vec<(usize, String)> = match decided {
            None => self.check_all(info, &rows),
            Some(decided) => {
                let set: std::collections::HashSet<(&str, i32, i64)> = decided
                    .iter()
                    .map(|(t, p, o)| (t.as_str(), *p, *o))
                    .collect();
                let marked: Vec<usize> = (0..rows.len())
                    .filter(|i| {
                        let m = &msgs[origin[*i]];
                        set.contains(&(&*m.topic, m.partition, m.offset))
                    })
                    .collect();
                if marked.is_empty() {
                    Vec::new()
                } else {
                    // the reasons the checks give now, where they still refuse the row
                    let now = self.check_all(info, &rows);
                    marked
                        .into_iter()
                        .flat_map(|i| {
                            let why: Vec<(usize, String)> =
                                now.iter().filter(|(j, _)| *j == i).cloned().collect();
                            if why.is_empty() {
                                vec![(i, "a sink's check refused it when the batch was first cut; the replay keeps that decision".to_string())]
                            } else {
                                why
                            }
                        })
                        .collect()
                }
            }
        };
        if rejected.is_empty() {
            return Decoded {
                rows,
                dead,
                msgs,
                origin,
                refused: Vec::new(),
            };
        }
        rejected.sort_by_key(|(i, _)| *i);
        let mut keep = Vec::with_capacity(rows.len());
        let mut keep_origin = Vec::with_capacity(rows.len());
        let mut refused = Vec::new();
        let mut reasons = rejected.into_iter().peekable();
        for (i, row) in rows.into_iter().enumerate() {
            let mut why: Vec<String> = Vec::new();
            while let Some((_, r)) = reasons.next_if(|(j, _)| *j == i) {
                why.push(r);
            }
            if why.is_empty() {
                keep.push(row);
                keep_origin.push(origin[i]);
            } else {
                let m = &msgs[origin[i]];
                refused.push(pos_of(m));
                dead.push(DeadLetter::new(
                    &self.name,
                    info.batch_id,
                    m,
                    &why.join("; "),
                ));
            }
        }
        Decoded {
            rows: keep,
            dead,
            msgs,
            origin: keep_origin,
            refused,
        }
    }

    /// Every branch's refusals of `rows` (panics isolated per row), by row index.
    fn check_all(&self, info: &BatchInfo, rows: &[T]) -> Vec<(usize, String)> {
        self.sinks
            .iter()
            .flat_map(|s| {
                let name = s.name();
                check_isolated(s.as_ref(), info, rows)
                    .into_iter()
                    .map(move |(i, why)| match why {
                        Refusal::Sink(why) => (i, format!("sink {name} rejects it: {why}")),
                        Refusal::Panic(why) => (
                            i,
                            format!("the code of branch {name} panicked on it: {why}"),
                        ),
                    })
            })
            .collect()
    }

    /// Applies one sink to the batch, retrying a failed attempt as a replay (it may have written
    /// part): [`SINK_RETRIES`] times for an error, for up to `outage_retry` while the sink's
    /// service does not answer (see [`outage`]).
    fn apply_sink(
        &mut self,
        k: usize,
        info: &BatchInfo,
        rows: &[T],
        plan: &serde_json::Value,
    ) -> Result<u64> {
        let mut info = info.clone();
        let query = &self.name;
        let sink = &mut self.sinks[k];
        let step = format!("sink {}, batch {}", sink.name(), info.batch_id);
        outage::ride_out(&self.shared, self.outage_retry, &step, || {
            let mut attempt = 0;
            loop {
                let r = sink.apply(&info, rows, plan);
                if r.is_err() {
                    info.replay = true; // a retry may follow a partial write
                }
                match r {
                    Ok(n) => return Ok(n),
                    Err(e) if attempt < SINK_RETRIES && !outage::is_outage(&e) => {
                        attempt += 1;
                        eprintln!(
                            "query {query}: {step} failed ({e}); retry {attempt}/{SINK_RETRIES}"
                        );
                        std::thread::sleep(Duration::from_millis(500 * attempt));
                    }
                    Err(e) => return Err(e),
                }
            }
        })
    }

    /// Applies branch `k` to the batch's `rows` without the records `p.refused_by` leaves out of
    /// it; when the sink still fails after its retries, finds the rows its server refuses (see
    /// the module docs), records and dead-letters them, and applies the rest. Returns what the
    /// sink wrote and how many rows this step dead-lettered.
    #[allow(clippy::too_many_arguments)]
    fn apply_branch(
        &mut self,
        st: &mut RunState,
        p: &mut PendingBatch,
        k: usize,
        info: &BatchInfo,
        rows: &[T],
        msgs: &[Msg],
        origin: &[usize],
        plan: &serde_json::Value,
    ) -> Result<(u64, u64)> {
        let name = self.sinks[k].name();
        let left_out: std::collections::HashSet<&RecordPos> = p
            .refused_by
            .iter()
            .filter(|(n, _)| *n == name)
            .flat_map(|(_, v)| v.iter())
            .collect();
        // this branch's rows, by index into `rows`
        let mine: Vec<usize> = if left_out.is_empty() {
            (0..rows.len()).collect()
        } else {
            (0..rows.len())
                .filter(|i| !left_out.contains(&pos_of(&msgs[origin[*i]])))
                .collect()
        };
        let own: Option<Vec<T>> =
            (mine.len() < rows.len()).then(|| mine.iter().map(|i| rows[*i].clone()).collect());
        let batch_rows = own.as_deref().unwrap_or(rows);
        let err = match self.apply_sink(k, info, batch_rows, plan) {
            Ok(n) => return Ok((n, 0)),
            Err(e) => e,
        };
        let (found, kept) = match self.bisect(k, info, batch_rows, err)? {
            Bisected::Rows(found) => {
                let kept: Vec<usize> = (0..batch_rows.len())
                    .filter(|i| found.binary_search_by_key(i, |(j, _)| *j).is_err())
                    .collect();
                (found, kept)
            }
            Bisected::CannotHelp(e) => {
                let why = e.to_string();
                let all = (0..batch_rows.len()).map(|i| (i, why.clone())).collect();
                (all, Vec::new())
            }
        };
        let mut positions = Vec::with_capacity(found.len());
        let mut letters = Vec::with_capacity(found.len());
        for (i, why) in &found {
            let m = &msgs[origin[mine[*i]]];
            positions.push(pos_of(m));
            letters.push(DeadLetter::new(
                &self.name,
                info.batch_id,
                m,
                &format!("sink {name} refused it: {why}"),
            ));
        }
        eprintln!(
            "query {}: sink {name} refuses {} row(s) of batch {}; they go to the dead-letter topic",
            self.name,
            found.len(),
            info.batch_id
        );
        // recorded before anything else happens, so a replay leaves out the same rows
        match p.refused_by.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.extend(positions),
            None => p.refused_by.push((name.clone(), positions)),
        }
        st.cp.pending = Some(p.clone());
        st.cp.save(&self.cp_dir)?;
        if self.limits.dead_letters {
            st.dlq.send(&self.settings, &letters)?;
        }
        if kept.is_empty() {
            return Ok((0, letters.len() as u64));
        }
        let rest: Vec<T> = kept.iter().map(|i| batch_rows[*i].clone()).collect();
        let mut again = info.clone();
        again.replay = true;
        match self.apply_sink(k, &again, &rest, plan) {
            Ok(n) => Ok((n, letters.len() as u64)),
            Err(e) => Err(self.cannot_help(
                k,
                e,
                &format!(
                    "it still fails after leaving out the {} row(s) its server refuses",
                    found.len()
                ),
            )),
        }
    }

    /// The error for a batch that bisecting cannot help with, naming the way out.
    fn cannot_help(&self, k: usize, err: Error, why: &str) -> Error {
        let way_out = format!(
            "bisecting the batch cannot help: {why}. The query fails on this batch at every restart until sink {} takes it: fix the destination or the data, or start the query with `.dead_letter_refused_batches(true)`, which sends the branch's rows of such a batch to the dead-letter topic and goes on",
            self.sinks[k].name()
        );
        match err {
            Error::Service {
                service,
                address,
                action,
                detail,
            } => Error::Service {
                service,
                address,
                action,
                detail: format!("{detail}; {way_out}"),
            },
            Error::Invalid(m) => Error::Invalid(format!("{m}; {way_out}")),
            Error::Timeout { what, after, hint } => Error::Timeout {
                what,
                after,
                hint: format!("{hint}; {way_out}"),
            },
            other => Error::Task(format!("{other}; {way_out}")),
        }
    }

    /// After sink `k` failed `rows` with `err` on every retry: the rows its server refuses
    /// (indexes into `rows`, ascending, with the server's error), found by trying parts of the
    /// batch in order ([`Pipe::probe`], rolled back). An accepted set grows part by part; a
    /// refused part is halved until single rows, so a row refused only beside an earlier one (a
    /// duplicate key within the batch) is found too. A connection failure, a failure that is not
    /// about the rows (a missing table) or a server that takes the whole batch when tried again
    /// is returned as the error: no row is to blame. With `dead_letter_refused` set, a batch the
    /// bisecting cannot help with is [`Bisected::CannotHelp`]; else that is the error.
    fn bisect(&mut self, k: usize, info: &BatchInfo, rows: &[T], err: Error) -> Result<Bisected> {
        if outage::is_outage(&err) {
            return Err(err);
        }
        let probe = |pipe: &mut Box<dyn Pipe<T>>, idx: &[usize]| {
            let part: Vec<T> = idx.iter().map(|i| rows[*i].clone()).collect();
            pipe.probe(info, &part)
        };
        let all: Vec<usize> = (0..rows.len()).collect();
        let help_or_fail = |this: &Self, err: Error, why: &str| {
            let e = this.cannot_help(k, err, why);
            if this.dead_letter_refused {
                Ok(Bisected::CannotHelp(e))
            } else {
                Err(e)
            }
        };
        match probe(&mut self.sinks[k], &all) {
            None => {
                return help_or_fail(self, err, "the sink cannot try rows without keeping them")
            }
            Some(Err(_)) | Some(Ok(Probe::Accepted)) => return Err(err),
            Some(Ok(Probe::Refused(_))) => {}
        }
        eprintln!(
            "query {}: sink {} refuses batch {}: bisecting its {} rows",
            self.name,
            self.sinks[k].name(),
            info.batch_id,
            rows.len()
        );
        let mut accepted: Vec<usize> = Vec::with_capacity(rows.len());
        let mut refused: Vec<(usize, String)> = Vec::new();
        let (a, b) = all.split_at(all.len() / 2);
        let mut todo: Vec<Vec<usize>> = vec![b.to_vec(), a.to_vec()];
        while let Some(part) = todo.pop() {
            if part.is_empty() {
                continue;
            }
            let mut trial = accepted.clone();
            trial.extend_from_slice(&part);
            match probe(&mut self.sinks[k], &trial) {
                Some(Ok(Probe::Accepted)) => accepted = trial,
                Some(Ok(Probe::Refused(why))) if part.len() == 1 => refused.push((part[0], why)),
                Some(Ok(Probe::Refused(_))) => {
                    let (a, b) = part.split_at(part.len() / 2);
                    todo.push(b.to_vec());
                    todo.push(a.to_vec());
                }
                Some(Err(e)) => return Err(e),
                None => return Err(err),
            }
        }
        Ok(Bisected::Rows(refused))
    }

    /// Runs one batch whose records were read in `read_ms` (the batch started at `started`).
    fn run_batch(
        &mut self,
        st: &mut RunState,
        mut p: PendingBatch,
        msgs: Vec<Msg>,
        replay: bool,
        started: Instant,
        read_ms: u64,
    ) -> Result<()> {
        let rows_in = msgs.len() as u64;
        let data_loss = st.reader.take_data_loss();
        let info = BatchInfo {
            query: self.identity.clone(),
            batch_id: p.batch_id,
            batch_time_ms: p.batch_time_ms,
            replay,
            flush: p.flush,
            settings: self.settings.clone(),
        };
        let step = Instant::now();
        let decided = if replay { p.refused.clone() } else { None };
        let Decoded {
            rows,
            dead,
            msgs,
            origin,
            refused,
        } = self.decode(&info, msgs, decided.as_deref());
        let decode_ms = step.elapsed().as_millis() as u64;
        let step = Instant::now();
        if !replay {
            p.refused = Some(refused);
            p.refused_by = Vec::new();
            p.plans = Vec::new();
            for s in self.sinks.iter_mut() {
                let what = format!("plan of sink {}, batch {}", s.name(), p.batch_id);
                let plan =
                    outage::ride_out(&self.shared, self.outage_retry, &what, || s.plan(&info))?;
                p.plans.push((s.name(), plan));
            }
            st.cp.pending = Some(p.clone());
            self.save(&st.cp)?;
        }
        let write_ahead_ms = step.elapsed().as_millis() as u64;
        crashpoint::hit("after-write-ahead", p.batch_id);
        let step = Instant::now();
        if self.limits.dead_letters {
            let (dlq, settings) = (&mut st.dlq, &self.settings);
            let what = format!("send dead letters of batch {}", p.batch_id);
            outage::ride_out(&self.shared, self.outage_retry, &what, || {
                dlq.send(settings, &dead)
            })?;
        }
        let dead_letter_ms = step.elapsed().as_millis() as u64;
        let mut dead_letters = dead.len() as u64;
        let late_before: u64 = self.sinks.iter().map(|s| s.late_rows()).sum();
        let mut sink_rows = Vec::new();
        let mut sink_ms = Vec::new();
        for k in 0..self.sinks.len() {
            let name = self.sinks[k].name();
            let plan = p
                .plans
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let ts = Instant::now();
            let (n, letters) =
                self.apply_branch(st, &mut p, k, &info, &rows, &msgs, &origin, &plan)?;
            dead_letters += letters;
            sink_ms.push((name.clone(), ts.elapsed().as_millis() as u64));
            sink_rows.push((name, n));
            if k == 0 {
                crashpoint::hit("between-sinks", p.batch_id);
            }
        }
        crashpoint::hit("before-commit", p.batch_id);
        let late: u64 = self
            .sinks
            .iter()
            .map(|s| s.late_rows())
            .sum::<u64>()
            .saturating_sub(late_before);
        let step = Instant::now();
        st.cp.offsets = p.end.clone();
        st.cp.next_batch = p.batch_id + 1;
        st.cp.last_batch_time_ms = st.cp.last_batch_time_ms.max(p.batch_time_ms);
        st.cp.states = self
            .sinks
            .iter()
            .map(|s| (s.name(), s.state()))
            .filter(|(_, v)| !v.is_null())
            .collect();
        st.cp.pending = None;
        self.save(&st.cp)?;
        st.reader.commit(&p.end);
        let commit_ms = step.elapsed().as_millis() as u64;
        let dur = started.elapsed();
        let progress = Progress {
            batch_id: p.batch_id,
            batch_time_ms: p.batch_time_ms,
            rows_in,
            rows_per_sec: if dur.as_secs_f64() > 0.0 {
                rows_in as f64 / dur.as_secs_f64()
            } else {
                0.0
            },
            duration_ms: dur.as_millis() as u64,
            watermark_ms: self.sinks.iter().find_map(|s| s.watermark()),
            sink_rows,
            sink_ms,
            read_ms,
            decode_ms,
            write_ahead_ms,
            dead_letter_ms,
            commit_ms,
            dead_letters,
            late_rows: late,
            replay,
            flush: p.flush,
            data_loss,
        };
        if let Some(l) = &self.listener {
            l(&progress);
        }
        self.shared.push(progress);
        Ok(())
    }
}

/// What bisecting a refused batch found.
enum Bisected {
    /// The rows the server refuses (indexes, ascending, with its error).
    Rows(Vec<(usize, String)>),
    /// Bisecting cannot help and the query dead-letters the branch's rows of the batch: why.
    CannotHelp(Error),
}

/// Why a branch refuses a row.
enum Refusal {
    /// Its sink (or an operator) would always reject it.
    Sink(String),
    /// Code of the branch (an operator's or the sink's closure) panicked on it.
    Panic(String),
}

/// The text of a panic's payload.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// A branch's check of the batch with panics isolated per row: when the check panics, each row
/// is checked alone, the rows whose check panics are refused with the panic's message, and the
/// others are checked together again (a panic that only a combination of rows causes refuses
/// those rows too). The check runs every closure of the branch's operators and of the kit's
/// sinks, so a row that passes it does not panic when the batch is applied.
fn check_isolated<T: Row>(
    pipe: &dyn Pipe<T>,
    info: &BatchInfo,
    rows: &[T],
) -> Vec<(usize, Refusal)> {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let whole = catch_unwind(AssertUnwindSafe(|| pipe.check(info, rows)));
    if let Ok(r) = whole {
        return r.into_iter().map(|(i, w)| (i, Refusal::Sink(w))).collect();
    }
    let mut out = Vec::new();
    let mut fine = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        match catch_unwind(AssertUnwindSafe(|| {
            pipe.check(info, std::slice::from_ref(row))
        })) {
            Ok(_) => fine.push(i),
            Err(p) => out.push((i, Refusal::Panic(panic_text(p.as_ref())))),
        }
    }
    let rest: Vec<T> = fine.iter().map(|i| rows[*i].clone()).collect();
    match catch_unwind(AssertUnwindSafe(|| pipe.check(info, &rest))) {
        Ok(r) => out.extend(r.into_iter().map(|(j, w)| (fine[j], Refusal::Sink(w)))),
        Err(p) => {
            let why = panic_text(p.as_ref());
            out.extend(fine.into_iter().map(|i| {
                (
                    i,
                    Refusal::Panic(format!("{why} (with other rows of the batch)")),
                )
            }))
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out
}

/// Records below this many are decoded on the engine's thread alone.
const PARALLEL_DECODE_FROM: usize = 4_096;

/// Decodes every record's value (in order), on as many threads as the machine has cores for a
/// large batch: JSON decoding is the engine's largest per-record cost after the read itself.
fn decode_all<T: Row>(msgs: &[Msg], max_value_bytes: usize) -> Vec<std::result::Result<T, String>> {
    let one = |m: &Msg| match &m.value {
        None => Err("null value".to_string()),
        Some(v) if v.len() > max_value_bytes => Err(format!(
            "value of {} bytes exceeds the limit of {max_value_bytes} bytes",
            v.len()
        )),
        Some(v) => std::panic::catch_unwind(|| T::decode(v)).unwrap_or_else(|p| {
            Err(format!(
                "the row type's decode panicked: {}",
                panic_text(p.as_ref())
            ))
        }),
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || msgs.len() < PARALLEL_DECODE_FROM {
        return msgs.iter().map(one).collect();
    }
    let chunk = msgs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = msgs
            .chunks(chunk)
            .map(|c| {
                (
                    c.len(),
                    scope.spawn(move || c.iter().map(one).collect::<Vec<_>>()),
                )
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|(n, h)| {
                h.join()
                    .unwrap_or_else(|_| vec![Err("the row type's decode panicked".to_string()); n])
            })
            .collect()
    })
}
