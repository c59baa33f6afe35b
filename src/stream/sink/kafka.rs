//! Kafka sink: one record per row (CSV, JSON or any text), optional key.
//!
//! Guarantee: **exactly-once for a single writer per output topic, at-least-once otherwise.**
//! The producer is idempotent (no duplicates from its own retries). Every record carries headers
//! `bde-query`, `bde-batch` and `bde-seq` (its index in the batch). Before a batch is written
//! ahead, the sink records the output topic's end offsets in the checkpoint (its plan); when that
//! batch is replayed after a crash, the sink reads the topic from those offsets and sends only the
//! records whose `(query, batch, seq)` is not there yet. Readers that need the guarantee under
//! several writers dedupe on those headers. A sink given rows without replay information (a new
//! query name, a foreign writer) is at-least-once. Kafka transactions are not used (see
//! [`crate::stream`]); the crash test `tests/stream_crash.rs` checks every cart arrives once.
//!
//! `bde-seq` is the row's index among the rows the sink writes, in the batch's order. The engine
//! orders every batch by (topic, partition, offset) and removes the rows some sink's `check`
//! refused the same way in the first run and in a replay (the replay applies the refused
//! positions the write-ahead recorded, not the checks again), so a seq names the same row in both.
//!
//! - **No send outstanding after an error**: when one record cannot be handed to the producer or
//!   is not delivered, the sink still waits for every other record of the batch it handed over
//!   before it returns the error; a retry (or replay) then sees exactly what reached the topic.
//! - **The replay scan ends on position**, not on a count of messages: a partition is done when
//!   the reader's position reaches the end offset read at the scan's start (or the reader hits the
//!   partition's end), so transaction markers and aborted records of another writer, which take
//!   offsets but are never delivered, cannot make it wait for messages that will never come.
//! - **Poison rows**: [`Sink::check`] names every row whose record (value, key and headers) would
//!   be larger than [`KafkaSink::max_record_bytes`] (default [`MAX_RECORD_BYTES`], the producer's
//!   `message.max.bytes`, less [`RECORD_HEADROOM`] for the record's framing): the producer would
//!   refuse it on every retry, so it goes to the dead-letter topic instead.
//! - Crash point `kafka-send` (see [`crate::stream::crashpoint`]): after the first half of the
//!   batch's records (rounded down, so possibly none) were handed to the producer; it fires on
//!   every applied batch, with or without records for this sink. Through the one hook
//!   [`crashpoint::hit_settled`]: when `BDE_CRASH_AT` names that step and batch, the first half
//!   is delivered before the abort, so the crash leaves a partial batch in the topic for the
//!   replay to complete; otherwise the sink holds no test switch of its own.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::config::Settings;
use crate::error::{Error, Result, Service};
use crate::io::kafka as kio;
use crate::runtime;
use crate::stream::crashpoint;
use crate::stream::sink::{BatchInfo, Sink};

type TextFn<T> = Box<dyn Fn(&T) -> String + Send + Sync>;
/// Writes a row's text into a buffer (which the sink clears first and reuses row after row).
type WriteFn<T> = Box<dyn Fn(&T, &mut String) + Send + Sync>;

/// librdkafka's default `message.max.bytes`, which the kit's producer keeps: the largest record
/// (value, key and headers) the producer accepts.
pub const MAX_RECORD_BYTES: usize = 1_000_000;

/// Bytes kept free under the limit for a record's framing (lengths, timestamps, attributes).
pub const RECORD_HEADROOM: usize = 512;

/// Writes rows as text records to a topic.
pub struct KafkaSink<T> {
    topic: String,
    name: String,
    format: WriteFn<T>,
    key: Option<TextFn<T>>,
    producer: Option<FutureProducer>,
    query: String,
    max_record_bytes: usize,
}

impl<T> KafkaSink<T> {
    /// Writes `format(row)` to `topic` with no key.
    pub fn new(topic: &str, format: impl Fn(&T) -> String + Send + Sync + 'static) -> KafkaSink<T> {
        KafkaSink::writing(topic, move |r: &T, out: &mut String| *out = format(r))
    }
    /// Writes the text `write(row, buffer)` puts into the buffer (cleared before each row) to
    /// `topic` with no key: the sink reuses one buffer, so a row's text costs no allocation
    /// (`Visit::write_csv_line`).
    pub fn writing(
        topic: &str,
        write: impl Fn(&T, &mut String) + Send + Sync + 'static,
    ) -> KafkaSink<T> {
        KafkaSink {
            topic: topic.into(),
            name: format!("kafka:{topic}"),
            format: Box::new(write),
            key: None,
            producer: None,
            query: String::new(),
            max_record_bytes: MAX_RECORD_BYTES,
        }
    }
    /// Each row as JSON.
    pub fn json(topic: &str) -> KafkaSink<T>
    where
        T: Serialize,
    {
        KafkaSink::new(topic, |r: &T| serde_json::to_string(r).unwrap_or_default())
    }
    /// Record key from the row.
    pub fn key(mut self, key: impl Fn(&T) -> String + Send + Sync + 'static) -> KafkaSink<T> {
        self.key = Some(Box::new(key));
        self
    }
    /// The largest record (value, key, headers) the sink writes; larger ones are dead letters.
    /// At most [`MAX_RECORD_BYTES`] (the producer's limit); lower it for a broker or topic with a
    /// smaller `max.message.bytes`.
    pub fn max_record_bytes(mut self, n: usize) -> KafkaSink<T> {
        self.max_record_bytes = n.min(MAX_RECORD_BYTES);
        self
    }
}

fn header<'a>(m: &'a rdkafka::message::BorrowedMessage<'_>, key: &str) -> Option<&'a [u8]> {
    m.headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
}

/// Output-topic end offsets, as recorded in a plan.
type Plan = BTreeMap<i32, i64>;

impl<T> KafkaSink<T> {
    fn end_offsets(&self, settings: &Settings) -> Result<Plan> {
        let marks = match &self.producer {
            // the producer's own connection: no new client per batch
            Some(p) => kio::watermarks_via(p.client(), settings, &self.topic)?,
            None => kio::watermarks(settings, &self.topic)?,
        };
        Ok(marks.into_iter().map(|(p, _, hi)| (p, hi)).collect())
    }

    /// The `bde-seq` of records of (query, batch) already in the topic after `from`.
    ///
    /// Reads every partition from its planned offset until the reader's position reaches the end
    /// offset read at the start (or the partition's end): offsets taken by transaction markers or
    /// aborted records are passed over by position, never waited for as messages.
    fn already_written(
        &self,
        settings: &Settings,
        batch_id: u64,
        from: &Plan,
    ) -> Result<HashSet<u64>> {
        let now = self.end_offsets(settings)?;
        let addr = &settings.kafka;
        let consumer: BaseConsumer = kio::client_config(settings)
            .set(
                "group.id",
                format!("bde-replay-check-{}", std::process::id()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_uncommitted")
            .create()
            .map_err(|e| Error::service(Service::Kafka, addr, "create a consumer", e))?;
        let mut tpl = TopicPartitionList::new();
        // partition -> end offset still to reach
        let mut open: BTreeMap<i32, i64> = BTreeMap::new();
        for (p, hi) in &now {
            let lo = from.get(p).copied().unwrap_or(0);
            if *hi > lo {
                tpl.add_partition_offset(&self.topic, *p, Offset::Offset(lo))
                    .map_err(|e| Error::service(Service::Kafka, addr, "assign", e))?;
                open.insert(*p, *hi);
            }
        }
        let mut seen = HashSet::new();
        if open.is_empty() {
            return Ok(seen);
        }
        consumer
            .assign(&tpl)
            .map_err(|e| Error::service(Service::Kafka, addr, "assign", e))?;
        let limit = Duration::from_secs(60);
        let deadline = Instant::now() + limit;
        let batch = batch_id.to_string();
        while !open.is_empty() {
            if Instant::now() > deadline {
                return Err(Error::Timeout {
                    what: format!("the replay check of {} (partitions {:?} not read to their end offsets)", self.topic, open),
                    after: limit,
                    hint: "the broker is slow or unreachable; the batch stays pending and is checked again on the next start".into(),
                });
            }
            match consumer.poll(Duration::from_millis(200)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    open.remove(&p);
                }
                Some(Err(e)) => return Err(kio::error_at(addr, "read for the replay check", &e)),
                Some(Ok(m)) => {
                    let end = now.get(&m.partition()).copied().unwrap_or(0);
                    if m.offset() < end
                        && header(&m, "bde-query") == Some(self.query.as_bytes())
                        && header(&m, "bde-batch") == Some(batch.as_bytes())
                    {
                        if let Some(seq) = header(&m, "bde-seq")
                            .and_then(|v| std::str::from_utf8(v).ok())
                            .and_then(|v| v.parse().ok())
                        {
                            seen.insert(seq);
                        }
                    }
                    if m.offset() + 1 >= end {
                        open.remove(&m.partition());
                    }
                }
            }
            // the position passes markers that are never delivered as messages
            if let Ok(pos) = consumer.position() {
                for e in pos.elements() {
                    if let (Offset::Offset(o), Some(end)) =
                        (e.offset(), open.get(&e.partition()).copied())
                    {
                        if o >= end {
                            open.remove(&e.partition());
                        }
                    }
                }
            }
        }
        Ok(seen)
    }

    /// Puts the text of `row` into `buf` (cleared first).
    fn render(&self, row: &T, buf: &mut String) {
        buf.clear();
        (self.format)(row, buf);
    }

    /// Bytes the record of `value` and `key` takes under this sink's limit (with headers).
    fn record_bytes(&self, value: &str, key: Option<&str>) -> usize {
        // bde-query, bde-batch (≤ 20 digits), bde-seq (≤ 20 digits)
        let headers =
            "bde-query".len() + self.query.len() + "bde-batch".len() + 20 + "bde-seq".len() + 20;
        value.len() + key.map_or(0, str::len) + headers + RECORD_HEADROOM
    }
}

impl<T: Send> Sink<T> for KafkaSink<T> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn open(&mut self, query: &str, settings: &Settings) -> Result<()> {
        self.query = query.into();
        kio::create_topics(settings, &[&self.topic], 1)?;
        self.producer = Some(kio::producer(settings)?);
        Ok(())
    }

    fn check(&self, _batch: &BatchInfo, rows: &[T]) -> Vec<(usize, String)> {
        let mut value = String::new();
        rows.iter()
            .enumerate()
            .filter_map(|(i, r)| {
                self.render(r, &mut value);
                let key = self.key.as_ref().map(|k| k(r));
                let n = self.record_bytes(&value, key.as_deref());
                (n > self.max_record_bytes).then(|| {
                    (i, format!("the record for {} would take {n} bytes (value {} bytes), over the producer's limit of {} bytes", self.topic, value.len(), self.max_record_bytes))
                })
            })
            .collect()
    }

    fn plan(&mut self, batch: &BatchInfo) -> Result<serde_json::Value> {
        let plan = self.end_offsets(&batch.settings)?;
        serde_json::to_value(plan).map_err(|e| Error::invalid(format!("plan: {e}")))
    }

    fn apply(&mut self, batch: &BatchInfo, rows: &[T], plan: &serde_json::Value) -> Result<u64> {
        let s = &batch.settings;
        let skip = if batch.replay {
            let from: Plan = serde_json::from_value(plan.clone()).unwrap_or_default();
            self.already_written(s, batch.batch_id, &from)?
        } else {
            HashSet::new()
        };
        let Some(producer) = self.producer.clone() else {
            return Err(Error::Task("kafka sink not opened".into()));
        };
        let batch_text = batch.batch_id.to_string();
        let selected: Vec<(usize, &T)> = rows
            .iter()
            .enumerate()
            .filter(|(seq, _)| !skip.contains(&(*seq as u64)))
            .collect();
        let half = selected.len() / 2;
        if selected.is_empty() {
            // a batch without records for this sink still passes its crash point
            crashpoint::hit("kafka-send", batch.batch_id);
        }
        let mut futures = Vec::with_capacity(selected.len());
        let mut failure: Option<Error> = None;
        let mut seq_text = String::new();
        let mut value = String::new();
        'rows: for (i, (seq, r)) in selected.into_iter().enumerate() {
            if i == half {
                // the first half is in the topic when the crash point fires
                let settled = crashpoint::hit_settled("kafka-send", batch.batch_id, || {
                    wait_all(std::mem::take(&mut futures), &s.kafka, &self.topic)
                        .map_or(Ok(()), Err)
                });
                if let Err(e) = settled {
                    failure = Some(e);
                    break 'rows;
                }
            }
            self.render(r, &mut value);
            let key = self.key.as_ref().map(|k| k(r));
            seq_text.clear();
            let _ = write!(seq_text, "{seq}");
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "bde-query",
                    value: Some(self.query.as_str()),
                })
                .insert(Header {
                    key: "bde-batch",
                    value: Some(batch_text.as_str()),
                })
                .insert(Header {
                    key: "bde-seq",
                    value: Some(seq_text.as_str()),
                });
            let mut rec = FutureRecord::to(&self.topic)
                .payload(&value)
                .headers(headers);
            if let Some(k) = key.as_deref() {
                rec = rec.key(k);
            }
            // handed over at once while the queue has room; the runtime only for the backoff
            let sent = match producer.send_result(rec) {
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    runtime::handle().block_on(kio::enqueue(&producer, back))
                }
                other => other.map_err(|(e, _)| e),
            };
            match sent {
                Ok(f) => futures.push(f),
                Err(e) => {
                    failure = Some(kio::error_at(
                        &s.kafka,
                        &format!(
                            "send record {seq} of batch {} to {}",
                            batch.batch_id, self.topic
                        ),
                        &e,
                    ));
                    break 'rows;
                }
            }
        }
        let n = futures.len() as u64;
        // Every record handed over is delivered or failed before this returns, error or not:
        // a retry must not race sends of this attempt.
        let delivery = wait_all(futures, &s.kafka, &self.topic);
        match failure.or(delivery) {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }
}

/// Waits for every delivery; the first failure, if any (all are waited for regardless).
fn wait_all(futures: Vec<DeliveryFuture>, addr: &str, topic: &str) -> Option<Error> {
    if futures.is_empty() {
        return None;
    }
    let addr = addr.to_string();
    let topic = topic.to_string();
    let waited = runtime::handle().block_on(async move {
        let mut first = None;
        for f in futures {
            let err = match f.await {
                Ok(Ok(_)) => None,
                Ok(Err((e, _))) => Some(kio::error_at(&addr, &format!("deliver to {topic}"), &e)),
                Err(_) => Some(Error::service(
                    Service::Kafka,
                    &addr,
                    format!("deliver to {topic}"),
                    "delivery cancelled",
                )),
            };
            if first.is_none() {
                first = err;
            }
        }
        first
    });
    waited
}
