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

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::config::Settings;
use crate::error::{Error, Result, Service};
use crate::io::kafka as kio;
use crate::runtime;
use crate::stream::sink::{BatchInfo, Pred, Sink};

type TextFn<T> = Box<dyn Fn(&T) -> String + Send + Sync>;

/// Writes rows as text records to a topic.
pub struct KafkaSink<T> {
    topic: String,
    name: String,
    format: TextFn<T>,
    key: Option<TextFn<T>>,
    filter: Option<Pred<T>>,
    producer: Option<FutureProducer>,
    query: String,
}

impl<T> KafkaSink<T> {
    /// Writes `format(row)` to `topic` with no key.
    pub fn new(topic: &str, format: impl Fn(&T) -> String + Send + Sync + 'static) -> KafkaSink<T> {
        KafkaSink { topic: topic.into(), name: format!("kafka:{topic}"), format: Box::new(format), key: None, filter: None, producer: None, query: String::new() }
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
    /// Only rows for which `pred` is true.
    pub fn filter(mut self, pred: impl Fn(&T) -> bool + Send + Sync + 'static) -> KafkaSink<T> {
        self.filter = Some(Box::new(pred));
        self
    }
}

fn header<'a>(m: &'a rdkafka::message::BorrowedMessage<'_>, key: &str) -> Option<&'a [u8]> {
    m.headers()?.iter().find(|h| h.key == key).and_then(|h| h.value)
}

/// Output-topic end offsets, as recorded in a plan.
type Plan = BTreeMap<i32, i64>;

impl<T> KafkaSink<T> {
    fn end_offsets(&self, settings: &Settings) -> Result<Plan> {
        Ok(kio::watermarks(settings, &self.topic)?.into_iter().map(|(p, _, hi)| (p, hi)).collect())
    }

    /// The `bde-seq` of records of (query, batch) already in the topic after `from`.
    fn already_written(&self, settings: &Settings, batch_id: u64, from: &Plan) -> Result<HashSet<u64>> {
        let now = self.end_offsets(settings)?;
        let consumer: BaseConsumer = kio::client_config(settings)
            .set("group.id", format!("bde-replay-check-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| Error::service(Service::Kafka, &settings.kafka, "create a consumer", e))?;
        let mut tpl = TopicPartitionList::new();
        let mut remaining = 0i64;
        for (p, hi) in &now {
            let lo = from.get(p).copied().unwrap_or(0);
            if *hi > lo {
                tpl.add_partition_offset(&self.topic, *p, Offset::Offset(lo)).map_err(|e| Error::service(Service::Kafka, &settings.kafka, "assign", e))?;
                remaining += hi - lo;
            }
        }
        let mut seen = HashSet::new();
        if remaining == 0 {
            return Ok(seen);
        }
        consumer.assign(&tpl).map_err(|e| Error::service(Service::Kafka, &settings.kafka, "assign", e))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let batch = batch_id.to_string();
        while remaining > 0 {
            if Instant::now() > deadline {
                return Err(Error::Timeout { what: format!("the replay check of {}", self.topic), after: Duration::from_secs(60), hint: "the broker is slow".into() });
            }
            let Some(m) = consumer.poll(Duration::from_millis(200)) else { continue };
            let m = m.map_err(|e| Error::service(Service::Kafka, &settings.kafka, "read for the replay check", e))?;
            if m.offset() < now.get(&m.partition()).copied().unwrap_or(0) {
                remaining -= 1;
                if header(&m, "bde-query") == Some(self.query.as_bytes()) && header(&m, "bde-batch") == Some(batch.as_bytes()) {
                    if let Some(seq) = header(&m, "bde-seq").and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.parse().ok()) {
                        seen.insert(seq);
                    }
                }
            }
        }
        Ok(seen)
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
        let Some(producer) = self.producer.clone() else { return Err(Error::Task("kafka sink not opened".into())) };
        let batch_text = batch.batch_id.to_string();
        let mut futures = Vec::new();
        for (seq, r) in rows.iter().filter(|r| self.filter.as_ref().is_none_or(|f| f(r))).enumerate() {
            if skip.contains(&(seq as u64)) {
                continue;
            }
            let value = (self.format)(r);
            let key = self.key.as_ref().map(|k| k(r));
            let seq_text = seq.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header { key: "bde-query", value: Some(self.query.as_str()) })
                .insert(Header { key: "bde-batch", value: Some(batch_text.as_str()) })
                .insert(Header { key: "bde-seq", value: Some(seq_text.as_str()) });
            let mut rec = FutureRecord::to(&self.topic).payload(&value).headers(headers);
            if let Some(k) = key.as_deref() {
                rec = rec.key(k);
            }
            loop {
                match producer.send_result(rec) {
                    Ok(f) => {
                        futures.push(f);
                        break;
                    }
                    Err((e, back)) => {
                        if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) {
                            producer.poll(Duration::from_millis(20));
                            rec = back;
                        } else {
                            return Err(Error::service(Service::Kafka, &s.kafka, format!("send to {}", self.topic), e));
                        }
                    }
                }
            }
        }
        let n = futures.len() as u64;
        let topic = self.topic.clone();
        let addr = s.kafka.clone();
        runtime::handle().block_on(async move {
            for f in futures {
                match f.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => return Err(Error::service(Service::Kafka, &addr, format!("deliver to {topic}"), e)),
                    Err(_) => return Err(Error::service(Service::Kafka, &addr, format!("deliver to {topic}"), "delivery cancelled")),
                }
            }
            Ok(())
        })?;
        Ok(n)
    }
}
