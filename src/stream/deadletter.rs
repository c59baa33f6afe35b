//! Dead letters: records that cannot become rows are counted and written to `<topic>.dlq` as a
//! JSON envelope with the reason, so a malformed record never stops a query.
//!
//! Envelope: `{"reason", "query", "batch_id", "topic", "partition", "offset", "key", "value",
//! "value_bytes", "truncated", "key_bytes", "key_truncated"}`; `value` is the original text
//! (lossy UTF-8), cut to [`MAX_VALUE_CHARS`] characters, `key` likewise to [`MAX_KEY_CHARS`],
//! `reason` and `query` to [`MAX_TEXT_CHARS`]. Every field is bounded, so an envelope is at most
//! a few kilobytes whatever the record was, and a dead letter itself is never refused by the
//! broker. Delivery to the dead-letter topic is at-least-once; the letters of a batch are sent
//! pipelined (all handed to the producer, then every delivery awaited), and a send that fails is
//! tried again ([`SEND_ATTEMPTS`] in all, backing off) before the batch fails.
//!
//! The dead-letter topic of `t` is `t.dlq`; when that is longer than Kafka's limit of
//! [`MAX_TOPIC_CHARS`] characters, it is the first characters of `t`, a hash of the whole name
//! and `.dlq` ([`DeadLetter::topic_for`]): the same name on every run, and two long names that
//! share their beginning still get their own topics.

use std::collections::HashSet;

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::error::{Error, Result, Service};
use crate::io::kafka as kio;
use crate::runtime;
use crate::stream::source::Msg;

/// Longest original value kept in an envelope.
pub const MAX_VALUE_CHARS: usize = 1024;

/// Longest original key kept in an envelope.
pub const MAX_KEY_CHARS: usize = 256;

/// Longest reason and query name kept in an envelope.
pub const MAX_TEXT_CHARS: usize = 1024;

/// Kafka's longest topic name.
pub const MAX_TOPIC_CHARS: usize = 249;

/// Times one batch's dead letters are sent before the batch fails.
pub const SEND_ATTEMPTS: u32 = 3;

/// The first `max` characters of lossy UTF-8 `bytes` (reading at most `4 × max` bytes), and
/// whether anything was cut.
fn bounded(bytes: &[u8], max: usize) -> (String, bool) {
    let head = &bytes[..bytes.len().min(max.saturating_mul(4))];
    let text: String = String::from_utf8_lossy(head).chars().take(max).collect();
    let cut = head.len() < bytes.len()
        || text.chars().count() < String::from_utf8_lossy(head).chars().count();
    (text, cut)
}

/// `text` cut to `max` characters, marked with `…` when cut.
fn bounded_text(text: &str, max: usize) -> String {
    let (mut t, cut) = bounded(text.as_bytes(), max);
    if cut {
        t.push('…');
    }
    t
}

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
    /// The value was cut to [`MAX_VALUE_CHARS`].
    pub truncated: bool,
    /// Size of the original key.
    #[serde(default)]
    pub key_bytes: usize,
    /// The key was cut to [`MAX_KEY_CHARS`].
    #[serde(default)]
    pub key_truncated: bool,
}

impl DeadLetter {
    /// The envelope for a refused record.
    pub fn new(query: &str, batch_id: u64, m: &Msg, reason: &str) -> DeadLetter {
        let (value, truncated) = match &m.value {
            Some(v) => {
                let (text, cut) = bounded(v, MAX_VALUE_CHARS);
                (Some(text), cut)
            }
            None => (None, false),
        };
        let (key, key_truncated) = match &m.key {
            Some(k) => {
                let (text, cut) = bounded(k, MAX_KEY_CHARS);
                (Some(text), cut)
            }
            None => (None, false),
        };
        DeadLetter {
            reason: bounded_text(reason, MAX_TEXT_CHARS),
            query: bounded_text(query, MAX_TEXT_CHARS),
            batch_id,
            topic: m.topic.to_string(),
            partition: m.partition,
            offset: m.offset,
            key,
            value,
            value_bytes: m.value.as_ref().map_or(0, Vec::len),
            truncated,
            key_bytes: m.key.as_ref().map_or(0, Vec::len),
            key_truncated,
        }
    }

    /// The dead-letter topic of a source topic: `<topic>.dlq`, or, when that is longer than
    /// [`MAX_TOPIC_CHARS`], the topic's first characters, `-`, 16 hex digits of a hash of the
    /// whole name and `.dlq` (at most [`MAX_TOPIC_CHARS`] in all).
    pub fn topic_for(topic: &str) -> String {
        let plain = format!("{topic}.dlq");
        if plain.chars().count() <= MAX_TOPIC_CHARS {
            return plain;
        }
        let hash = crate::stream::checkpoint::fnv1a(topic.as_bytes());
        let keep = MAX_TOPIC_CHARS - 1 - 16 - ".dlq".len();
        let head: String = topic.chars().take(keep).collect();
        format!("{head}-{hash:016x}.dlq")
    }
}

/// Writes dead letters, creating `<topic>.dlq` topics on first use.
pub(crate) struct DeadLetterWriter {
    producer: Option<FutureProducer>,
    created: HashSet<String>,
}

impl DeadLetterWriter {
    pub fn new() -> DeadLetterWriter {
        DeadLetterWriter {
            producer: None,
            created: HashSet::new(),
        }
    }

    /// Sends the letters, trying a failed send again (at most [`SEND_ATTEMPTS`] in all, 0.5 s,
    /// then 1 s apart); a letter may arrive twice then (at-least-once).
    pub fn send(&mut self, settings: &Settings, letters: &[DeadLetter]) -> Result<()> {
        let mut attempt = 1;
        loop {
            match self.send_once(settings, letters) {
                Err(e) if attempt < SEND_ATTEMPTS => {
                    eprintln!("dead letters: {e}; trying again ({attempt}/{SEND_ATTEMPTS})");
                    std::thread::sleep(std::time::Duration::from_millis(500 * u64::from(attempt)));
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    fn send_once(&mut self, settings: &Settings, letters: &[DeadLetter]) -> Result<()> {
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
        let Some(p) = self.producer.clone() else {
            return Ok(());
        };
        let s = settings.clone();
        let payloads: Vec<(String, String)> = letters
            .iter()
            .map(|l| {
                (
                    DeadLetter::topic_for(&l.topic),
                    serde_json::to_string(l).unwrap_or_default(),
                )
            })
            .collect();
        // hand every letter over first (enqueued, no await), then wait for all deliveries
        let mut pending = Vec::with_capacity(payloads.len());
        for (topic, v) in &payloads {
            let rec = FutureRecord::<(), _>::to(topic).payload(v);
            match runtime::handle().block_on(kio::enqueue(&p, rec)) {
                Ok(f) => pending.push((topic.clone(), f)),
                Err(e) => {
                    // wait for what was handed over before reporting, then fail the batch
                    runtime::handle().block_on(async move {
                        for (_, f) in pending {
                            let _ = f.await;
                        }
                    });
                    return Err(Error::service(
                        Service::Kafka,
                        &s.kafka,
                        format!("write a dead letter to {topic}"),
                        e,
                    ));
                }
            }
        }
        runtime::handle().block_on(async move {
            let mut first = None;
            for (topic, f) in pending {
                let failed = match f.await {
                    Ok(Ok(_)) => None,
                    Ok(Err((e, _))) => Some(e.to_string()),
                    Err(_) => Some("delivery cancelled".to_string()),
                };
                if let (None, Some(e)) = (&first, failed) {
                    first = Some(Error::service(
                        Service::Kafka,
                        &s.kafka,
                        format!("write a dead letter to {topic}"),
                        e,
                    ));
                }
            }
            first.map_or(Ok(()), Err)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(key: Option<Vec<u8>>, value: Option<Vec<u8>>) -> Msg {
        Msg {
            topic: "t".into(),
            partition: 0,
            offset: 7,
            key,
            value,
        }
    }

    #[test]
    fn a_dead_letter_topic_name_fits_kafkas_limit_and_stays_the_same() {
        assert_eq!(DeadLetter::topic_for("visits"), "visits.dlq");
        let fits = "v".repeat(MAX_TOPIC_CHARS - 4);
        assert_eq!(DeadLetter::topic_for(&fits), format!("{fits}.dlq"));
        let long_a = format!("{}a", "v".repeat(MAX_TOPIC_CHARS));
        let long_b = format!("{}b", "v".repeat(MAX_TOPIC_CHARS));
        let a = DeadLetter::topic_for(&long_a);
        assert_eq!(a.chars().count(), MAX_TOPIC_CHARS, "{a}");
        assert!(a.starts_with("vvvv") && a.ends_with(".dlq"), "{a}");
        assert_eq!(
            a,
            DeadLetter::topic_for(&long_a),
            "the same name every time"
        );
        assert_ne!(
            a,
            DeadLetter::topic_for(&long_b),
            "names sharing their start differ"
        );
        let just_over = "w".repeat(MAX_TOPIC_CHARS - 3);
        assert_eq!(
            DeadLetter::topic_for(&just_over).chars().count(),
            MAX_TOPIC_CHARS
        );
    }

    #[test]
    fn every_field_of_the_envelope_is_bounded() {
        let big_key = "k".repeat(2 << 20).into_bytes();
        let big_value = "é".repeat(1 << 20).into_bytes();
        let l = DeadLetter::new(
            &"q".repeat(5000),
            3,
            &msg(Some(big_key.clone()), Some(big_value.clone())),
            &"r".repeat(1 << 20),
        );
        assert_eq!(
            l.key.as_ref().map(|k| k.chars().count()),
            Some(MAX_KEY_CHARS)
        );
        assert!(l.key_truncated && l.key_bytes == big_key.len());
        assert_eq!(
            l.value.as_ref().map(|v| v.chars().count()),
            Some(MAX_VALUE_CHARS)
        );
        assert!(l.truncated && l.value_bytes == big_value.len());
        assert_eq!(
            l.reason.chars().count(),
            MAX_TEXT_CHARS + 1,
            "cut and marked with …"
        );
        assert_eq!(l.query.chars().count(), MAX_TEXT_CHARS + 1);
        let json = serde_json::to_string(&l).expect("json");
        assert!(json.len() < 16 * 1024, "envelope of {} bytes", json.len());
        // short fields are kept whole and not marked
        let s = DeadLetter::new(
            "q",
            1,
            &msg(Some(b"USA".to_vec()), Some(b"{}".to_vec())),
            "bad",
        );
        assert_eq!(
            (
                s.key.as_deref(),
                s.key_truncated,
                s.value.as_deref(),
                s.truncated,
                s.reason.as_str()
            ),
            (Some("USA"), false, Some("{}"), false, "bad")
        );
        // an envelope written before these fields existed still reads
        let old = r#"{"reason":"r","query":"q","batch_id":1,"topic":"t","partition":0,"offset":1,"key":null,"value":null,"value_bytes":0,"truncated":false}"#;
        assert_eq!(
            serde_json::from_str::<DeadLetter>(old)
                .expect("old")
                .key_bytes,
            0
        );
    }
}
