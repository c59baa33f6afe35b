//! Dead letters: records that cannot become rows are counted and written to `<topic>.dlq` as a
//! JSON envelope with the reason, so a malformed record never stops a query.
//!
//! Envelope: `{"reason", "query", "batch_id", "topic", "partition", "offset", "key", "value",
//! "value_bytes", "truncated"}`; `value` is the original text (lossy UTF-8), cut to
//! [`MAX_VALUE_CHARS`] characters. Delivery to the dead-letter topic is at-least-once.

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::error::{Error, Result, Service};
use crate::io::kafka as kio;
use crate::runtime;
use crate::stream::source::Msg;

/// Longest original value kept in an envelope.
pub const MAX_VALUE_CHARS: usize = 1024;

/// One dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub reason: String,
    pub query: String,
    pub batch_id: u64,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Option<String>,
    pub value_bytes: usize,
    pub truncated: bool,
}

impl DeadLetter {
    /// The envelope for a refused record.
    pub fn new(query: &str, batch_id: u64, m: &Msg, reason: &str) -> DeadLetter {
        let (value, truncated) = match &m.value {
            Some(v) => {
                let head = &v[..v.len().min(MAX_VALUE_CHARS * 4)];
                let text: String = String::from_utf8_lossy(head).chars().take(MAX_VALUE_CHARS).collect();
                let truncated = text.len() < v.len();
                (Some(text), truncated)
            }
            None => (None, false),
        };
        DeadLetter {
            reason: reason.into(),
            query: query.into(),
            batch_id,
            topic: m.topic.clone(),
            partition: m.partition,
            offset: m.offset,
            key: m.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
            value,
            value_bytes: m.value.as_ref().map_or(0, Vec::len),
            truncated,
        }
    }

    /// The dead-letter topic of a source topic.
    pub fn topic_for(topic: &str) -> String {
        format!("{topic}.dlq")
    }
}

/// Writes dead letters, creating `<topic>.dlq` topics on first use.
pub(crate) struct DeadLetterWriter {
    producer: Option<FutureProducer>,
    created: HashSet<String>,
}

impl DeadLetterWriter {
    pub fn new() -> DeadLetterWriter {
        DeadLetterWriter { producer: None, created: HashSet::new() }
    }

    pub fn send(&mut self, settings: &Settings, letters: &[DeadLetter]) -> Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        if self.producer.is_none() {
            self.producer = Some(kio::producer(settings)?);
        }
        for l in letters {
            let t = DeadLetter::topic_for(&l.topic);
            if !self.created.contains(&t) {
                kio::create_topics(settings, &[&t], 1)?;
                self.created.insert(t);
            }
        }
        let Some(p) = self.producer.clone() else { return Ok(()) };
        let s = settings.clone();
        let payloads: Vec<(String, String)> = letters
            .iter()
            .map(|l| (DeadLetter::topic_for(&l.topic), serde_json::to_string(l).unwrap_or_default()))
            .collect();
        runtime::handle().block_on(async move {
            for (topic, v) in &payloads {
                p.send(FutureRecord::<(), _>::to(topic).payload(v), Duration::from_secs(15))
                    .await
                    .map_err(|(e, _)| Error::service(Service::Kafka, &s.kafka, format!("write a dead letter to {topic}"), e))?;
            }
            Ok(())
        })
    }
}
