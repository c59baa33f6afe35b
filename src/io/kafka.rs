//! Kafka through rdkafka (librdkafka built with cmake): topics, producers, consumers.
//!
//! The kit speaks only the Kafka protocol, so the same code runs against the local
//! Kafka-protocol broker started by `kernel/services.sh` and against real Apache Kafka from
//! `docker-compose.yml`. Every call is bounded by a timeout, and a broker that does not answer
//! gives [`Error::ServiceDown`] naming the address tried.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::ToBytes;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::Settings;
use crate::error::{Error, Result, Service};
use crate::runtime;

/// How long metadata and admin calls may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A client configuration for the configured bootstrap servers, with bounded timeouts.
pub fn client_config(settings: &Settings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &settings.kafka)
        .set("socket.timeout.ms", "5000")
        .set("socket.connection.setup.timeout.ms", "3000")
        .set("reconnect.backoff.max.ms", "1000")
        .set("log_level", "3");
    c
}

fn map_err(settings: &Settings, action: &str, e: KafkaError) -> Error {
    error_at(&settings.kafka, action, &e)
}

/// Maps a client error for the brokers at `address`, telling "down" (transport failures and
/// timeouts: [`Error::ServiceDown`], which a running query rides out) from "refused the request".
pub fn error_at(address: &str, action: &str, e: &KafkaError) -> Error {
    let down = matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::BrokerTransportFailure)
            | Some(RDKafkaErrorCode::AllBrokersDown)
            | Some(RDKafkaErrorCode::OperationTimedOut)
            | Some(RDKafkaErrorCode::MessageTimedOut)
            | Some(RDKafkaErrorCode::RequestTimedOut)
    ) || matches!(
        e,
        KafkaError::MetadataFetch(_) | KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut)
    );
    if down {
        Error::down(Service::Kafka, address, format!("{action}: {e}"))
    } else {
        Error::service(Service::Kafka, address, action, e)
    }
}

/// A plain consumer (no group) used for metadata and offset lookups.
pub fn metadata_client(settings: &Settings) -> Result<BaseConsumer> {
    client_config(settings)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| map_err(settings, "create a client", e))
}

/// The topic names on the broker (internal topics such as `__consumer_offsets` left out), sorted.
pub fn list_topics(settings: &Settings) -> Result<Vec<String>> {
    let s = settings.clone();
    runtime::run_blocking(move || {
        let client = metadata_client(&s)?;
        let md = client
            .fetch_metadata(None, REQUEST_TIMEOUT)
            .map_err(|e| map_err(&s, "list topics", e))?;
        let mut names: Vec<String> = md
            .topics()
            .iter()
            .map(|t| t.name().to_string())
            .filter(|n| !n.starts_with("__"))
            .collect();
        names.sort();
        Ok(names)
    })?
}

/// Partition ids of a topic; an error naming the topic when it does not exist.
pub fn partitions(settings: &Settings, topic: &str) -> Result<Vec<i32>> {
    let s = settings.clone();
    let t = topic.to_string();
    runtime::run_blocking(move || partitions_via(metadata_client(&s)?.client(), &s, &t))?
}

/// [`partitions`] through a client the caller keeps (no new connection). Blocking.
pub fn partitions_via<C: ClientContext>(
    client: &Client<C>,
    settings: &Settings,
    topic: &str,
) -> Result<Vec<i32>> {
    let md = client
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .map_err(|e| map_err(settings, "read topic metadata", e))?;
    let t = md
        .topics()
        .first()
        .ok_or_else(|| Error::invalid(format!("topic {topic} not found")))?;
    if t.error().is_some() || t.partitions().is_empty() {
        return Err(Error::invalid(format!(
            "topic '{topic}' does not exist on {}: run the setup notebook (code_00_03) or `create_topics`",
            settings.kafka
        )));
    }
    Ok(t.partitions().iter().map(|p| p.id()).collect())
}

/// Low and high watermark (first offset, next offset to be written) of every partition.
pub fn watermarks(settings: &Settings, topic: &str) -> Result<Vec<(i32, i64, i64)>> {
    let s = settings.clone();
    let t = topic.to_string();
    runtime::run_blocking(move || watermarks_via(metadata_client(&s)?.client(), &s, &t))?
}

/// [`watermarks`] through a client the caller keeps (a producer's or consumer's `.client()`): no
/// new connection, so a sink can ask every batch. Blocking.
pub fn watermarks_via<C: ClientContext>(
    client: &Client<C>,
    settings: &Settings,
    topic: &str,
) -> Result<Vec<(i32, i64, i64)>> {
    partitions_via(client, settings, topic)?
        .into_iter()
        .map(|p| {
            let (lo, hi) = client
                .fetch_watermarks(topic, p, REQUEST_TIMEOUT)
                .map_err(|e| map_err(settings, "read offsets", e))?;
            Ok((p, lo, hi))
        })
        .collect()
}

/// Number of messages currently in a topic (sum of high − low watermarks).
pub fn message_count(settings: &Settings, topic: &str) -> Result<i64> {
    Ok(watermarks(settings, topic)?
        .iter()
        .map(|(_, lo, hi)| hi - lo)
        .sum())
}

/// What happened to each topic asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    Created,
    AlreadyExists,
}

fn admin(settings: &Settings) -> Result<AdminClient<DefaultClientContext>> {
    client_config(settings)
        .create()
        .map_err(|e| map_err(settings, "create an admin client", e))
}

/// Creates each topic with `partitions` partitions and replication factor 1; existing topics are kept.
pub fn create_topics(
    settings: &Settings,
    names: &[&str],
    partitions: i32,
) -> Result<Vec<(String, TopicOutcome)>> {
    if partitions < 1 {
        return Err(Error::invalid(format!(
            "a topic needs at least 1 partition, got {partitions}"
        )));
    }
    let existing = list_topics(settings)?;
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !existing.iter().any(|e| e == *n))
        .map(|n| n.to_string())
        .collect();
    let mut out: Vec<(String, TopicOutcome)> = names
        .iter()
        .filter(|n| existing.iter().any(|e| e == *n))
        .map(|n| (n.to_string(), TopicOutcome::AlreadyExists))
        .collect();
    if !missing.is_empty() {
        let s = settings.clone();
        let results = runtime::block_on(async move {
            let admin = admin(&s)?;
            let topics: Vec<NewTopic> = missing
                .iter()
                .map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(1)))
                .collect();
            let opts = AdminOptions::new()
                .operation_timeout(Some(REQUEST_TIMEOUT))
                .request_timeout(Some(REQUEST_TIMEOUT));
            admin
                .create_topics(topics.iter(), &opts)
                .await
                .map_err(|e| map_err(&s, "create topics", e))
        })??;
        for r in results {
            match r {
                Ok(name) => out.push((name, TopicOutcome::Created)),
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    out.push((name, TopicOutcome::AlreadyExists))
                }
                Err((name, code)) => {
                    return Err(Error::service(
                        Service::Kafka,
                        &settings.kafka,
                        format!("create topic {name}"),
                        code,
                    ))
                }
            }
        }
    }
    Ok(out)
}

/// Deletes the topics that exist among `names` (missing ones are ignored). Returns the deleted names.
pub fn delete_topics(settings: &Settings, names: &[&str]) -> Result<Vec<String>> {
    let existing = list_topics(settings)?;
    let present: Vec<String> = names
        .iter()
        .filter(|n| existing.iter().any(|e| e == *n))
        .map(|n| n.to_string())
        .collect();
    if present.is_empty() {
        return Ok(present);
    }
    let s = settings.clone();
    let p = present.clone();
    let results = runtime::block_on(async move {
        let admin = admin(&s)?;
        let refs: Vec<&str> = p.iter().map(|x| x.as_str()).collect();
        let opts = AdminOptions::new()
            .operation_timeout(Some(REQUEST_TIMEOUT))
            .request_timeout(Some(REQUEST_TIMEOUT));
        admin
            .delete_topics(&refs, &opts)
            .await
            .map_err(|e| map_err(&s, "delete topics", e))
    })??;
    for r in results {
        if let Err((name, code)) = r {
            return Err(Error::service(
                Service::Kafka,
                &settings.kafka,
                format!("delete topic {name}"),
                code,
            ));
        }
    }
    Ok(present)
}

/// Deletes the records of `topic[partition]` below offset `before` (Kafka's DeleteRecords: what
/// retention does by age, done now): the partition's low watermark becomes `before`. Returns the
/// low watermark the broker reports after the deletion.
pub fn delete_records(
    settings: &Settings,
    topic: &str,
    partition: i32,
    before: i64,
) -> Result<i64> {
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, rdkafka::Offset::Offset(before))
        .map_err(|e| map_err(settings, "name the records to delete", e))?;
    let s = settings.clone();
    let what = format!("delete the records of {topic}[{partition}] below offset {before}");
    let w = what.clone();
    let done = runtime::block_on(async move {
        let admin = admin(&s)?;
        let opts = AdminOptions::new()
            .operation_timeout(Some(REQUEST_TIMEOUT))
            .request_timeout(Some(REQUEST_TIMEOUT));
        admin
            .delete_records(&tpl, &opts)
            .await
            .map_err(|e| map_err(&s, &w, e))
    })??;
    let e = done
        .find_partition(topic, partition)
        .ok_or_else(|| Error::service(Service::Kafka, &settings.kafka, &what, "no answer"))?;
    e.error().map_err(|err| map_err(settings, &what, err))?;
    match e.offset() {
        rdkafka::Offset::Offset(lo) => Ok(lo),
        other => Err(Error::service(
            Service::Kafka,
            &settings.kafka,
            &what,
            format!("unexpected low watermark {other:?}"),
        )),
    }
}

/// How long [`enqueue`] waits for room in a producer's full local queue before it gives up.
pub const QUEUE_FULL_WAIT: Duration = Duration::from_secs(60);
/// The pause between two tries of [`enqueue`] while the queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(10);

/// Hands `rec` to `producer`'s local queue and returns its delivery future. While the queue is
/// full (it drains as the broker acknowledges), tries again every 10 ms for at most
/// [`QUEUE_FULL_WAIT`]; then, or on any other error, returns the error. The kit's one queue-full
/// backoff: the producers here, the stream's Kafka sink and its dead letters all enqueue through
/// it. Sync code on a runtime thread calls it through `runtime::handle().block_on`.
pub async fn enqueue<K, P>(
    producer: &FutureProducer,
    mut rec: FutureRecord<'_, K, P>,
) -> std::result::Result<DeliveryFuture, KafkaError>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    let deadline = tokio::time::Instant::now() + QUEUE_FULL_WAIT;
    loop {
        match producer.send_result(rec) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                if tokio::time::Instant::now() < deadline =>
            {
                rec = back;
                tokio::time::sleep(QUEUE_FULL_PAUSE).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// An idempotent producer (no duplicates from internal retries) with bounded delivery time.
pub fn producer(settings: &Settings) -> Result<FutureProducer> {
    client_config(settings)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "15000")
        .set("linger.ms", "5")
        .create()
        .map_err(|e| map_err(settings, "create a producer", e))
}

/// Sends one record and waits until the broker acknowledged it.
pub async fn send(
    producer: &FutureProducer,
    settings: &Settings,
    topic: &str,
    key: Option<&str>,
    value: &str,
) -> Result<(i32, i64)> {
    let mut rec = FutureRecord::to(topic).payload(value);
    if let Some(k) = key {
        rec = rec.key(k);
    }
    match producer.send(rec, Duration::from_secs(15)).await {
        Ok(d) => Ok((d.partition, d.offset)),
        Err((e, _)) => Err(map_err(
            settings,
            &format!("deliver a record to {topic}"),
            e,
        )),
    }
}

/// Enqueues one record now and returns a future resolving to its acknowledgement, so many
/// records can be in flight at once (burst loads). Waits briefly when the local queue is full.
pub async fn send_owned(
    producer: &FutureProducer,
    settings: &Settings,
    topic: &str,
    key: Option<String>,
    value: String,
) -> Result<impl std::future::Future<Output = Result<(i32, i64)>> + Send + 'static> {
    let mut rec = FutureRecord::to(topic).payload(&value);
    if let Some(k) = key.as_deref() {
        rec = rec.key(k);
    }
    let delivery = enqueue(producer, rec)
        .await
        .map_err(|e| map_err(settings, &format!("enqueue a record for {topic}"), e))?;
    let s = settings.clone();
    let t = topic.to_string();
    Ok(async move {
        match delivery.await {
            Ok(Ok(d)) => Ok((d.partition, d.offset)),
            Ok(Err((e, _))) => Err(map_err(&s, &format!("deliver a record to {t}"), e)),
            Err(_) => Err(Error::down(
                Service::Kafka,
                &s.kafka,
                "the producer was dropped before delivery",
            )),
        }
    })
}

/// Blocking convenience: sends key/value pairs in order, many in flight at once (at most
/// 50,000 unacknowledged), and waits for every acknowledgement. Returns how many were sent.
/// (The idempotent producer keeps the order within a partition.)
pub fn produce_all(
    settings: &Settings,
    topic: &str,
    records: Vec<(Option<String>, String)>,
) -> Result<usize> {
    let s = settings.clone();
    let t = topic.to_string();
    runtime::block_on(async move {
        let p = producer(&s)?;
        let mut in_flight = Vec::new();
        let mut n = 0;
        for (k, v) in records {
            in_flight.push(send_owned(&p, &s, &t, k, v).await?);
            n += 1;
            if in_flight.len() >= 50_000 {
                for f in in_flight.drain(..) {
                    f.await?;
                }
            }
        }
        for f in in_flight {
            f.await?;
        }
        Ok(n)
    })?
}

/// Like [`produce_all`], every record `(key, value, header value)` carrying one header `header`
/// (an identity a later reader can look for, see [`header_values`]). Returns how many were sent.
pub fn produce_all_with_header(
    settings: &Settings,
    topic: &str,
    header: &str,
    records: Vec<(Option<String>, String, String)>,
) -> Result<usize> {
    use rdkafka::message::{Header, OwnedHeaders};
    let s = settings.clone();
    let t = topic.to_string();
    let h = header.to_string();
    runtime::block_on(async move {
        let p = producer(&s)?;
        let mut in_flight = Vec::new();
        for (k, v, hv) in &records {
            let headers = OwnedHeaders::new().insert(Header {
                key: h.as_str(),
                value: Some(hv.as_str()),
            });
            let mut rec = FutureRecord::to(&t).payload(v.as_str()).headers(headers);
            if let Some(k) = k.as_deref() {
                rec = rec.key(k);
            }
            let delivery = enqueue(&p, rec)
                .await
                .map_err(|e| map_err(&s, &format!("enqueue a record for {t}"), e))?;
            in_flight.push(delivery);
        }
        let n = in_flight.len();
        for f in in_flight {
            match f.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(map_err(&s, &format!("deliver a record to {t}"), e)),
                Err(_) => {
                    return Err(Error::down(
                        Service::Kafka,
                        &s.kafka,
                        "the producer was dropped before delivery",
                    ))
                }
            }
        }
        Ok(n)
    })?
}

/// A consumer without a group that reads from the given position (`earliest` or `latest`).
pub fn reader(settings: &Settings, start: &str) -> Result<BaseConsumer> {
    client_config(settings)
        .set("group.id", format!("bde-reader-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", start)
        .create()
        .map_err(|e| map_err(settings, "create a consumer", e))
}

/// Reads every message currently in `topic` (from the start up to the end offsets seen now) as
/// `(key, value)` strings, waiting at most `timeout`.
pub fn read_all(
    settings: &Settings,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<(Option<String>, String)>> {
    use rdkafka::message::Message;
    scan_all(settings, topic, timeout, |m| {
        let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
        let value = m
            .payload()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        (key, value)
    })
}

/// The value of header `name` of every message now in `topic` (`None` for a message without
/// it), waiting at most `timeout`: what a run that was interrupted already sent.
pub fn header_values(
    settings: &Settings,
    topic: &str,
    name: &str,
    timeout: Duration,
) -> Result<Vec<Option<String>>> {
    use rdkafka::message::{Headers, Message};
    let name = name.to_string();
    scan_all(settings, topic, timeout, move |m| {
        m.headers().and_then(|h| {
            h.iter()
                .find(|x| x.key == name)
                .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
        })
    })
}

/// Every message currently in `topic`, from the start up to the end offsets seen now, mapped by
/// `each`; waits at most `timeout`.
fn scan_all<T: Send + 'static>(
    settings: &Settings,
    topic: &str,
    timeout: Duration,
    each: impl Fn(&rdkafka::message::BorrowedMessage<'_>) -> T + Send + 'static,
) -> Result<Vec<T>> {
    let ranges = watermarks(settings, topic)?;
    scan_ranges(settings, topic, &ranges, timeout, each)
}

/// The messages of `topic` in the given ranges, `(partition, from, to)` with `to` exclusive,
/// mapped by `each`; waits at most `timeout`. A range ends on positions, not on a count of
/// messages, because offsets also hold transaction markers that are never delivered.
fn scan_ranges<T: Send + 'static>(
    settings: &Settings,
    topic: &str,
    ranges: &[(i32, i64, i64)],
    timeout: Duration,
    each: impl Fn(&rdkafka::message::BorrowedMessage<'_>) -> T + Send + 'static,
) -> Result<Vec<T>> {
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};
    let s = settings.clone();
    let t = topic.to_string();
    let ranges = ranges.to_vec();
    runtime::run_blocking(move || {
        let c = reader(&s, "earliest")?;
        let mut tpl = TopicPartitionList::new();
        // Next offset still to reach and the end, per partition.
        let mut behind: std::collections::HashMap<i32, (i64, i64)> =
            std::collections::HashMap::new();
        for (p, from, to) in &ranges {
            if to > from {
                tpl.add_partition_offset(&t, *p, Offset::Offset(*from))
                    .map_err(|e| map_err(&s, "assign partitions", e))?;
                behind.insert(*p, (*from, *to));
            }
        }
        let mut out = Vec::new();
        if behind.is_empty() {
            return Ok(out);
        }
        c.assign(&tpl)
            .map_err(|e| map_err(&s, "assign partitions", e))?;
        let deadline = std::time::Instant::now() + timeout;
        while !behind.is_empty() && std::time::Instant::now() < deadline {
            match c.poll(Duration::from_millis(200)) {
                Some(m) => {
                    let m = m.map_err(|e| map_err(&s, "read messages", e))?;
                    if let Some((at, end)) = behind.get_mut(&m.partition()) {
                        if m.offset() >= *at && m.offset() < *end {
                            out.push(each(&m));
                        }
                        *at = (*at).max(m.offset() + 1);
                    }
                }
                None => {
                    // nothing more came: the consumer's position tells how far the gaps reach
                    if let Ok(pos) = c.position() {
                        for e in pos.elements() {
                            if let (Offset::Offset(o), Some((at, _))) =
                                (e.offset(), behind.get_mut(&e.partition()))
                            {
                                *at = (*at).max(o);
                            }
                        }
                    }
                }
            }
            behind.retain(|_, (at, end)| at < end);
        }
        if !behind.is_empty() {
            let left: i64 = behind.values().map(|(at, end)| end - at).sum();
            return Err(Error::Timeout {
                what: format!("up to {left} more offsets of {t}"),
                after: timeout,
                hint: format!(
                    "read {} so far; the broker at {} may be slow",
                    out.len(),
                    s.kafka
                ),
            });
        }
        Ok(out)
    })?
}

/// A consumer without a group positioned at the end of a topic (the course's "latest"): each
/// [`Tail::poll`] returns the messages that arrived since, waiting at most the given time.
///
/// Memory stays bounded whatever the topic holds: one poll returns at most
/// [`Tail::MAX_PER_POLL`] values and about [`Tail::MAX_BYTES_PER_POLL`] bytes, a value longer
/// than [`Tail::MAX_VALUE_BYTES`] is cut (and says so), and the consumer prefetches at most
/// [`Tail::PREFETCH_KB`] KiB.
pub struct Tail {
    consumer: BaseConsumer,
    settings: Settings,
}

impl Tail {
    /// Values one [`Tail::poll`] returns at most.
    pub const MAX_PER_POLL: usize = 10_000;
    /// Bytes of values one [`Tail::poll`] returns (about) at most: 8 MiB. The value that reaches
    /// the bound ends the poll, so a poll holds at most this plus one value.
    pub const MAX_BYTES_PER_POLL: usize = 8 << 20;
    /// A value longer than this (1 MiB) is cut to it, ending with `…[cut: N bytes]`.
    pub const MAX_VALUE_BYTES: usize = 1 << 20;
    /// The consumer's prefetch queue, in KiB (librdkafka's `queued.max.messages.kbytes`; its
    /// default, 64 MiB, would be held in the kernel between polls).
    pub const PREFETCH_KB: usize = 8 << 10;

    /// Positions at the current end of every partition of `topic`.
    pub fn latest(settings: &Settings, topic: &str) -> Result<Tail> {
        use rdkafka::{Offset, TopicPartitionList};
        let marks = watermarks(settings, topic)?;
        let consumer: BaseConsumer = client_config(settings)
            .set("group.id", format!("bde-reader-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest")
            .set("queued.max.messages.kbytes", Tail::PREFETCH_KB.to_string())
            .create()
            .map_err(|e| map_err(settings, "create a consumer", e))?;
        let mut tpl = TopicPartitionList::new();
        for (p, _, hi) in marks {
            tpl.add_partition_offset(topic, p, Offset::Offset(hi))
                .map_err(|e| map_err(settings, "assign partitions", e))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| map_err(settings, "assign partitions", e))?;
        Ok(Tail {
            consumer,
            settings: settings.clone(),
        })
    }

    /// Values that arrived since the last poll, oldest first: waits up to `wait` for the first
    /// one, then takes what is ready, returning after at most `wait` + 1 s with at most
    /// [`Tail::MAX_PER_POLL`] values and about [`Tail::MAX_BYTES_PER_POLL`] bytes (the rest stay
    /// for the next poll). A producer faster than the reader, or one sending huge values, can
    /// neither keep this call from returning nor fill the memory.
    pub fn poll(&self, wait: Duration) -> Result<Vec<String>> {
        self.poll_bounded(wait, Tail::MAX_PER_POLL, Tail::MAX_BYTES_PER_POLL)
    }

    /// [`Tail::poll`] with another bound on the number of values.
    pub fn poll_at_most(&self, wait: Duration, max: usize) -> Result<Vec<String>> {
        self.poll_bounded(wait, max, Tail::MAX_BYTES_PER_POLL)
    }

    /// [`Tail::poll`] with other bounds: at most `max` values, and the value that brings the
    /// poll's total to `max_bytes` or more is its last one.
    pub fn poll_bounded(
        &self,
        wait: Duration,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<String>> {
        use rdkafka::message::Message;
        let deadline = std::time::Instant::now() + wait + Duration::from_secs(1);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut timeout = wait;
        while out.len() < max && bytes < max_bytes {
            let Some(m) = self.consumer.poll(timeout) else {
                break;
            };
            let m = m.map_err(|e| map_err(&self.settings, "read messages", e))?;
            let v = tail_text(m.payload().unwrap_or_default(), Tail::MAX_VALUE_BYTES);
            bytes += v.len();
            out.push(v);
            timeout = Duration::from_millis(50)
                .min(deadline.saturating_duration_since(std::time::Instant::now()));
            if timeout.is_zero() {
                break;
            }
        }
        Ok(out)
    }
}

/// A value as text (invalid UTF-8 replaced), cut to `max` bytes (at a character boundary) with
/// `…[cut: N bytes]` naming the value's length when longer.
pub fn tail_text(v: &[u8], max: usize) -> String {
    if v.len() <= max {
        return String::from_utf8_lossy(v).into_owned();
    }
    // cut before a UTF-8 continuation byte's character, not inside it
    let mut end = max;
    while end > 0 && v[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    let mut s = String::from_utf8_lossy(&v[..end]).into_owned();
    s.push_str(&format!("…[cut: {} bytes]", v.len()));
    s
}

/// One record as stored: position, timestamp, key, headers and value, bytes as they are.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch (create or log-append time), when the broker has one.
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub value: Option<Vec<u8>>,
}

/// The records of `topic` in the given ranges, `(partition, from, to)` with `to` exclusive,
/// waiting at most `timeout`. A range ends on positions, not on a count of records, because
/// offsets also hold transaction markers that are never delivered.
pub fn read_ranges(
    settings: &Settings,
    topic: &str,
    ranges: &[(i32, i64, i64)],
    timeout: Duration,
) -> Result<Vec<Record>> {
    use rdkafka::message::{Headers, Message};
    scan_ranges(settings, topic, ranges, timeout, |m| Record {
        partition: m.partition(),
        offset: m.offset(),
        timestamp_ms: m.timestamp().to_millis(),
        key: m.key().map(<[u8]>::to_vec),
        headers: m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default(),
        value: m.payload().map(<[u8]>::to_vec),
    })
}

/// A consumer group as the broker lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub name: String,
    pub state: String,
    pub protocol_type: String,
    pub members: usize,
}

/// The consumer groups the broker knows, sorted by name.
pub fn groups(settings: &Settings) -> Result<Vec<GroupInfo>> {
    let s = settings.clone();
    runtime::run_blocking(move || {
        let client = metadata_client(&s)?;
        let list = client
            .fetch_group_list(None, REQUEST_TIMEOUT)
            .map_err(|e| map_err(&s, "list consumer groups", e))?;
        let mut out: Vec<GroupInfo> = list
            .groups()
            .iter()
            .map(|g| GroupInfo {
                name: g.name().to_string(),
                state: g.state().to_string(),
                protocol_type: g.protocol_type().to_string(),
                members: g.members().len(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    })?
}

/// The offsets group `group` committed for the given partitions, `(topic, partition, offset)`;
/// partitions without a commit are left out.
pub fn committed(
    settings: &Settings,
    group: &str,
    partitions: &[(String, i32)],
) -> Result<Vec<(String, i32, i64)>> {
    use rdkafka::{Offset, TopicPartitionList};
    let s = settings.clone();
    let g = group.to_string();
    let partitions = partitions.to_vec();
    runtime::run_blocking(move || {
        let c: BaseConsumer = client_config(&s)
            .set("group.id", &g)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| map_err(&s, "create a consumer", e))?;
        let mut tpl = TopicPartitionList::new();
        for (t, p) in &partitions {
            tpl.add_partition(t, *p);
        }
        let got = c
            .committed_offsets(tpl, REQUEST_TIMEOUT)
            .map_err(|e| map_err(&s, &format!("read the offsets group {g} committed"), e))?;
        Ok(got
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.topic().to_string(), e.partition(), o)),
                _ => None,
            })
            .collect())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_text_keeps_a_short_value_and_cuts_a_long_one_at_a_character() {
        assert_eq!(tail_text(b"abc", 3), "abc");
        assert_eq!(tail_text(b"abcd", 3), "abc…[cut: 4 bytes]");
        // "é" is two bytes: a cut after its first byte keeps the whole character out
        let v = "aé".as_bytes();
        assert_eq!(tail_text(v, 2), "a…[cut: 3 bytes]");
        assert_eq!(tail_text(&[0xff, b'x'], 5), "\u{FFFD}x");
    }
}
