//! The Kafka [`Source`]: topics, starting offsets, batch size, and the reader that cuts the stream
//! into exactly reproducible offset ranges.
//!
//! A batch covers, per partition, the half-open offset range `start..end`. The engine writes that
//! range to the checkpoint before any sink runs, and a batch replayed after a crash re-reads
//! exactly the same range (see [`crate::stream::checkpoint`]). Partitions are assigned, not
//! subscribed: a query owns its partitions, or, with [`KafkaSource::member`], a fixed share of
//! them, so that several processes in one consumer group split a topic without rebalances that
//! would break exactly-once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Settings;
use crate::error::{Error, Result, Service};
use crate::io::kafka;
use crate::stream::source::{DataLoss, Limits, Msg, Offsets, Source, SourceReader, Start};

/// A Kafka source of one or more topics.
#[derive(Debug, Clone)]
pub struct KafkaSource {
    pub(crate) topics: Vec<String>,
    pub(crate) start: Start,
    pub(crate) max_records: usize,
    pub(crate) max_value_bytes: usize,
    pub(crate) group: Option<String>,
    pub(crate) member: (u32, u32),
    pub(crate) dead_letters: bool,
    pub(crate) fail_on_data_loss: bool,
}

impl KafkaSource {
    /// Reads `topic` (more with [`KafkaSource::topic`]), from the latest offsets, 10 000 records per batch at most.
    pub fn new(topic: &str) -> KafkaSource {
        KafkaSource {
            topics: vec![topic.to_string()],
            start: Start::Latest,
            max_records: 10_000,
            max_value_bytes: 1 << 20,
            group: None,
            member: (0, 1),
            dead_letters: true,
            fail_on_data_loss: true,
        }
    }
    /// Adds another topic.
    pub fn topic(mut self, topic: &str) -> KafkaSource {
        self.topics.push(topic.to_string());
        self
    }
    /// Starting offsets when no checkpoint exists.
    pub fn starting(mut self, start: Start) -> KafkaSource {
        self.start = start;
        self
    }
    /// At most `n` records per micro-batch (Spark's `maxOffsetsPerTrigger`).
    pub fn max_records(mut self, n: usize) -> KafkaSource {
        self.max_records = n.max(1);
        self
    }
    /// Values larger than this are dead-lettered (default 1 MiB).
    pub fn max_value_bytes(mut self, n: usize) -> KafkaSource {
        self.max_value_bytes = n;
        self
    }
    /// Consumer group for committed offsets (default `bde-stream-<query name>`).
    pub fn group(mut self, group: &str) -> KafkaSource {
        self.group = Some(group.to_string());
        self
    }
    /// Scale-out: this process is member `index` of `count` and reads partitions `p` with
    /// `p % count == index`. Give each member its own query name (checkpoint and sink markers).
    pub fn member(mut self, index: u32, count: u32) -> KafkaSource {
        self.member = (index, count.max(1));
        self
    }
    /// Send undecodable records to `<topic>.dlq` (default on); off: only count them.
    pub fn dead_letters(mut self, on: bool) -> KafkaSource {
        self.dead_letters = on;
        self
    }
    /// What to do when records the query has not read yet were removed from the broker
    /// (retention, deleted records), Spark's `failOnDataLoss`. On (the default): the query stops
    /// with an error naming topic, partition and the lost range. Off: it skips them, goes on at
    /// the first offset still held, and the next batch's `Progress::data_loss` names the range.
    /// Checked when the query starts and at every batch (against the partition's low watermark).
    pub fn fail_on_data_loss(mut self, on: bool) -> KafkaSource {
        self.fail_on_data_loss = on;
        self
    }
}

pub(crate) fn data_lost(query: &str, loss: &DataLoss) -> Error {
    Error::invalid(format!(
        "query '{query}' lost data: {loss} of topic {} partition {} were removed from the broker \
         (retention or deleted records) before the query read them, so the query stops rather than \
         skip them. Fix: accept the loss with `KafkaSource::fail_on_data_loss(false)` (the query goes \
         on at offset {} and its progress names the skipped range), or reset the query \
         (`stream::checkpoint::reset`) to start afresh",
        loss.topic, loss.partition, loss.to
    ))
}

/// The position to read `topic[partition]` from, given the query's position `at` and the
/// partition's low watermark `lo`: `at` when the broker still holds it; else the loss is an error
/// (`fail`) or recorded in `lost` and reading goes on at `lo`.
fn past_loss(
    query: &str,
    fail: bool,
    lost: &mut Vec<DataLoss>,
    (topic, partition): (&str, i32),
    at: i64,
    lo: i64,
) -> Result<i64> {
    if at >= lo {
        return Ok(at);
    }
    let loss = DataLoss {
        topic: topic.to_string(),
        partition,
        from: at,
        to: lo,
    };
    if fail {
        return Err(data_lost(query, &loss));
    }
    eprintln!("query {query}: data lost, skipped {loss} (fail_on_data_loss is off)");
    lost.push(loss);
    Ok(lo)
}

pub(crate) fn recreated(query: &str, topic: &str, partition: i32, at: i64, end: i64) -> Error {
    Error::invalid(format!(
        "query '{query}' stopped at offset {at} of {topic}[{partition}], but that partition now ends at {end}: \
         the topic was deleted and recreated (or the broker's data wiped). Its new records would be skipped \
         silently, so the query does not start. Fix: reset the query (`stream::checkpoint::reset(&root, \"{query}\")`, \
         or the notebook's reset flag) to read the new topic from its start"
    ))
}

impl Source for KafkaSource {
    fn describe(&self) -> String {
        format!("kafka topic {}", self.topics.join(", "))
    }

    fn limits(&self) -> Limits {
        Limits {
            max_records: self.max_records,
            max_value_bytes: self.max_value_bytes,
            dead_letters: self.dead_letters,
        }
    }

    fn open(
        &self,
        settings: &Settings,
        query: &str,
        checkpoint: &Offsets,
    ) -> Result<Box<dyn SourceReader>> {
        let group = self
            .group
            .clone()
            .unwrap_or_else(|| format!("bde-stream-{query}"));
        Ok(Box::new(Reader::open(
            settings, self, &group, checkpoint, query,
        )?))
    }
}

impl SourceReader for Reader {
    fn position(&self) -> &Offsets {
        &self.next
    }

    fn end_offsets(&mut self) -> Result<Offsets> {
        Reader::end_offsets(self)
    }

    fn read(
        &mut self,
        targets: &Offsets,
        max: usize,
        wait: Duration,
        exact: bool,
    ) -> Result<(Vec<Msg>, Offsets)> {
        let r = Reader::read(self, targets, max, wait, exact);
        if r.is_err() {
            // Records popped from the buffer or the consumer are gone with the error: go back to
            // the committed position, so a retry reads the same records again.
            self.assign()?;
        }
        r
    }

    fn commit(&mut self, end: &Offsets) {
        Reader::commit(self, end)
    }

    fn take_data_loss(&mut self) -> Vec<DataLoss> {
        std::mem::take(&mut self.lost)
    }
}

/// The shared name of topic `t` among `names` (added on the topic's first record).
fn shared_name(names: &mut Vec<Arc<str>>, t: &str) -> Arc<str> {
    if let Some(name) = names.iter().find(|n| ***n == *t) {
        return name.clone();
    }
    let name: Arc<str> = Arc::from(t);
    names.push(name.clone());
    name
}

/// How often a running query looks for partitions added to its topics.
const PARTITION_CHECK: Duration = Duration::from_secs(2);

/// The reader behind a running query.
pub(crate) struct Reader {
    settings: Settings,
    consumer: BaseConsumer,
    /// Topics and member share, to follow partitions added while the query runs.
    topics: Vec<String>,
    member: (u32, u32),
    last_partition_check: Instant,
    /// Next offset to hand out, per partition (the committed position of the query).
    pub next: Offsets,
    buffered: HashMap<(String, i32), VecDeque<Msg>>,
    /// The query's name, for errors.
    query: String,
    /// Stop on data loss (else skip it and record it in `lost`).
    fail_on_data_loss: bool,
    /// Ranges skipped as lost, not yet reported in a batch's progress.
    lost: Vec<DataLoss>,
    /// The names of the topics read, each shared by its records ([`Msg::topic`]).
    topic_names: Vec<Arc<str>>,
}

fn kerr(settings: &Settings, action: &str, e: impl std::fmt::Display) -> Error {
    Error::service(Service::Kafka, &settings.kafka, action, e)
}

impl Reader {
    /// Resolves partitions and starting offsets (checkpoint first) and assigns them. Fails when
    /// the checkpoint is ahead of a partition's end (the topic was deleted and recreated, or the
    /// broker's data wiped): see [`check_not_behind`].
    pub fn open(
        settings: &Settings,
        src: &KafkaSource,
        group: &str,
        checkpoint: &Offsets,
        query: &str,
    ) -> Result<Reader> {
        let consumer: BaseConsumer = kafka::client_config(settings)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "50")
            .set("receive.message.max.bytes", "1000000000")
            // The local broker (noida-db) may answer a fetch with the whole backlog regardless of
            // fetch.max.bytes; accept large responses instead of failing with BadMessage.
            .set("fetch.max.bytes", "8388608")
            .create()
            .map_err(|e| kerr(settings, "create a consumer", e))?;
        let mut next: Offsets = BTreeMap::new();
        let mut lost = Vec::new();
        for topic in &src.topics {
            let marks = kafka::watermarks(settings, topic)?;
            let mine: Vec<(i32, i64, i64)> = marks
                .into_iter()
                .filter(|(p, _, _)| (*p as u32) % src.member.1 == src.member.0)
                .collect();
            let committed = if src.start == Start::Committed {
                let mut tpl = TopicPartitionList::new();
                for (p, _, _) in &mine {
                    tpl.add_partition(topic, *p);
                }
                let c = consumer
                    .committed_offsets(tpl, kafka::REQUEST_TIMEOUT)
                    .map_err(|e| kerr(settings, "read committed offsets", e))?;
                c.elements()
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some((e.partition(), o)),
                        _ => None,
                    })
                    .collect::<HashMap<i32, i64>>()
            } else {
                HashMap::new()
            };
            let cp = checkpoint.get(topic);
            let entry = next.entry(topic.clone()).or_default();
            for (p, lo, hi) in mine {
                let from_cp = cp.and_then(|m| m.get(&p)).copied();
                if let Some(o) = from_cp.filter(|o| *o > hi) {
                    return Err(recreated(query, topic, p, o, hi));
                }
                // A partition the checkpoint does not know, of a topic it knows, was added while
                // the query was stopped: all of it is new, so it is read from its beginning.
                let added = from_cp.is_none() && cp.is_some_and(|m| !m.is_empty());
                let start = match (from_cp, src.start) {
                    (Some(o), _) => {
                        past_loss(query, src.fail_on_data_loss, &mut lost, (topic, p), o, lo)?
                    }
                    (None, _) if added => lo,
                    (None, Start::Earliest) => lo,
                    (None, Start::Latest) => hi,
                    (None, Start::Committed) => committed.get(&p).copied().unwrap_or(lo),
                };
                entry.insert(p, start.max(lo));
            }
        }
        let mut r = Reader {
            settings: settings.clone(),
            consumer,
            topics: src.topics.clone(),
            member: src.member,
            last_partition_check: Instant::now(),
            next,
            buffered: HashMap::new(),
            query: query.to_string(),
            fail_on_data_loss: src.fail_on_data_loss,
            lost,
            topic_names: Vec::new(),
        };
        r.assign()?;
        Ok(r)
    }

    fn assign(&mut self) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for (t, parts) in &self.next {
            for (p, o) in parts {
                tpl.add_partition_offset(t, *p, Offset::Offset(*o))
                    .map_err(|e| kerr(&self.settings, "assign partitions", e))?;
            }
        }
        self.buffered.clear();
        self.consumer
            .assign(&tpl)
            .map_err(|e| kerr(&self.settings, "assign partitions", e))
    }

    /// Adds the partitions created on the topics since the last look (at most every
    /// [`PARTITION_CHECK`]), from their beginning: everything in them is newer than the query.
    fn follow_new_partitions(&mut self) -> Result<()> {
        if self.last_partition_check.elapsed() < PARTITION_CHECK {
            return Ok(());
        }
        self.last_partition_check = Instant::now();
        let mut added = false;
        for topic in self.topics.clone() {
            let known = self.next.get(&topic).cloned().unwrap_or_default();
            let ids = kafka::partitions_via(self.consumer.client(), &self.settings, &topic)?;
            for p in ids {
                if known.contains_key(&p) || (p as u32) % self.member.1 != self.member.0 {
                    continue;
                }
                let (lo, _) = self
                    .consumer
                    .fetch_watermarks(&topic, p, kafka::REQUEST_TIMEOUT)
                    .map_err(|e| kerr(&self.settings, "read offsets of a new partition", e))?;
                self.next.entry(topic.clone()).or_default().insert(p, lo);
                added = true;
            }
        }
        if added {
            self.assign()?;
        }
        Ok(())
    }

    /// High watermarks of the assigned partitions now (after following added partitions). A
    /// position below a partition's low watermark is data loss (see
    /// [`KafkaSource::fail_on_data_loss`]): an error, or the position moves up to it.
    pub fn end_offsets(&mut self) -> Result<Offsets> {
        self.follow_new_partitions()?;
        let mut out: Offsets = BTreeMap::new();
        let mut moved = false;
        for (t, parts) in self.next.iter_mut() {
            for (p, at) in parts.iter_mut() {
                let (lo, hi) = self
                    .consumer
                    .fetch_watermarks(t, *p, kafka::REQUEST_TIMEOUT)
                    .map_err(|e| {
                        Error::down(
                            Service::Kafka,
                            &self.settings.kafka,
                            format!("read end offsets of {t}: {e}"),
                        )
                    })?;
                let from = past_loss(
                    &self.query,
                    self.fail_on_data_loss,
                    &mut self.lost,
                    (t, *p),
                    *at,
                    lo,
                )?;
                moved |= from != *at;
                *at = from;
                out.entry(t.clone()).or_default().insert(*p, hi);
            }
        }
        if moved {
            self.assign()?;
        }
        Ok(out)
    }

    fn pop_buffered(&mut self, t: &str, p: i32) -> Option<Msg> {
        self.buffered
            .get_mut(&(t.to_string(), p))
            .and_then(|q| q.pop_front())
    }

    /// Reads the next batch: from `next` up to `targets` (never beyond), at most `max` records,
    /// waiting at most `wait` for records the end offsets promised. Returns the records and the
    /// end offsets the batch covers.
    pub fn read(
        &mut self,
        targets: &Offsets,
        max: usize,
        wait: Duration,
        exact: bool,
    ) -> Result<(Vec<Msg>, Offsets)> {
        let mut pos = self.next.clone();
        // the records the targets promise, at most `max`: one allocation for the batch
        let promised: i64 = pos
            .iter()
            .flat_map(|(t, ps)| {
                ps.iter().map(move |(p, o)| {
                    targets
                        .get(t)
                        .and_then(|m| m.get(p))
                        .map_or(0, |e| (e - o).max(0))
                })
            })
            .sum();
        let mut out = Vec::with_capacity(usize::try_from(promised).unwrap_or(0).min(max));
        let behind = |pos: &Offsets| -> bool {
            pos.iter().any(|(t, ps)| {
                ps.iter()
                    .any(|(p, o)| targets.get(t).and_then(|m| m.get(p)).is_some_and(|e| o < e))
            })
        };
        // buffered records first
        let keys: Vec<(String, i32)> = self.buffered.keys().cloned().collect();
        for (t, p) in keys {
            while out.len() < max {
                let target = targets
                    .get(&t)
                    .and_then(|m| m.get(&p))
                    .copied()
                    .unwrap_or(0);
                let cur = pos.get(&t).and_then(|m| m.get(&p)).copied().unwrap_or(0);
                if cur >= target {
                    break;
                }
                match self.pop_buffered(&t, p) {
                    Some(m) if m.offset < cur => continue,
                    Some(m) => {
                        pos.entry(t.clone()).or_default().insert(p, m.offset + 1);
                        out.push(m);
                    }
                    None => break,
                }
            }
        }
        let deadline = Instant::now() + wait;
        let mut errors = 0;
        while out.len() < max && behind(&pos) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() && !exact && out.is_empty() {
                // Nothing came: the rest of the range may be gaps (transaction markers, compacted
                // offsets). The consumer's position, not a record count, says how far it got.
                self.follow_position(&mut pos, targets);
            }
            if left.is_zero() {
                if exact {
                    return Err(Error::Timeout {
                        what: "the records of the batch being replayed".into(),
                        after: wait,
                        hint: format!("the broker at {} did not return offsets it reported; were records deleted?", self.settings.kafka),
                    });
                }
                break;
            }
            let Some(m) = self.consumer.poll(left.min(Duration::from_millis(100))) else {
                continue;
            };
            let m = match m {
                Ok(m) => {
                    errors = 0;
                    m
                }
                Err(e) if errors < 5 => {
                    // transient (leader change, a broker restart): librdkafka retries the fetch
                    errors += 1;
                    eprintln!("stream source: {e} (retrying)");
                    continue;
                }
                Err(e) => {
                    return Err(Error::down(
                        Service::Kafka,
                        &self.settings.kafka,
                        format!("read records: {e}"),
                    ))
                }
            };
            let msg = Msg {
                topic: shared_name(&mut self.topic_names, m.topic()),
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
            };
            let cur = pos
                .get(&*msg.topic)
                .and_then(|x| x.get(&msg.partition))
                .copied();
            let target = targets
                .get(&*msg.topic)
                .and_then(|x| x.get(&msg.partition))
                .copied();
            match (cur, target) {
                (Some(c), _) if msg.offset < c => {}
                (Some(c), Some(t)) if c < t && msg.offset < t => {
                    // offsets may jump (compaction, transaction markers): the position follows
                    if let Some(at) = pos
                        .get_mut(&*msg.topic)
                        .and_then(|x| x.get_mut(&msg.partition))
                    {
                        *at = msg.offset + 1;
                    }
                    out.push(msg);
                }
                _ => {
                    self.buffered
                        .entry((msg.topic.to_string(), msg.partition))
                        .or_default()
                        .push_back(msg);
                }
            }
        }
        // A replayed batch ends exactly at its recorded targets (gaps such as markers included).
        if exact {
            for (t, ps) in targets {
                for (p, e) in ps {
                    if let Some(c) = pos.get_mut(t).and_then(|m| m.get_mut(p)) {
                        *c = (*c).max(*e);
                    }
                }
            }
        }
        Ok((out, pos))
    }

    /// Moves `pos` up to the consumer's fetch position (capped at `targets`) for partitions with
    /// nothing buffered: everything below that position was consumed or was a gap.
    fn follow_position(&mut self, pos: &mut Offsets, targets: &Offsets) {
        let Ok(tpl) = self.consumer.position() else {
            return;
        };
        for e in tpl.elements() {
            let Offset::Offset(at) = e.offset() else {
                continue;
            };
            let key = (e.topic().to_string(), e.partition());
            if self.buffered.get(&key).is_some_and(|q| !q.is_empty()) {
                continue;
            }
            let target = targets
                .get(e.topic())
                .and_then(|m| m.get(&e.partition()))
                .copied();
            if let (Some(cur), Some(t)) = (
                pos.get_mut(e.topic())
                    .and_then(|m| m.get_mut(&e.partition())),
                target,
            ) {
                *cur = (*cur).max(at.min(t));
            }
        }
    }

    /// Marks a batch as done: the next batch starts at `end`; commits the offsets to the group.
    pub fn commit(&mut self, end: &Offsets) {
        self.next = end.clone();
        let mut tpl = TopicPartitionList::new();
        for (t, ps) in end {
            for (p, o) in ps {
                let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
            }
        }
        // Informational (Start::Committed, lag tools); the checkpoint is the source of truth.
        let _ = self.consumer.commit(&tpl, CommitMode::Async);
    }
}
