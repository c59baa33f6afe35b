//! Kafka sink: a failed send leaves nothing outstanding, so the retry completes the batch without
//! a duplicate; the replay scan passes transaction markers in the output topic by position; a
//! record over the producer's size limit is a row `check` refuses.

#[path = "stream_util/mod.rs"]
mod stream_util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bde_kit::course::visit::Visit;
use bde_kit::io::kafka;
use bde_kit::rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use bde_kit::stream::sink::kafka::MAX_RECORD_BYTES;
use bde_kit::stream::sink::{BatchInfo, KafkaSink, Sink};
use stream_util::*;

fn info(f: &Fixture, batch_id: u64, replay: bool) -> BatchInfo {
    BatchInfo {
        query: "q".into(),
        batch_id,
        batch_time_ms: 0,
        replay,
        flush: false,
        settings: f.settings.clone(),
    }
}

fn end_offset(f: &Fixture, topic: &str) -> i64 {
    kafka::watermarks(&f.settings, topic)
        .expect("offsets")
        .iter()
        .map(|(_, _, hi)| hi)
        .sum()
}

fn lines(f: &Fixture, topic: &str) -> Vec<String> {
    kafka::read_all(&f.settings, topic, Duration::from_secs(30))
        .expect("read")
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

#[test]
fn a_failed_send_leaves_nothing_outstanding_and_the_retry_writes_no_duplicate() {
    let mut f = Fixture::new("kfail");
    let out = f.topic("out");
    let mut vs = visits(3000);
    // record 2000 cannot be sent the first time (over the producer's limit), the next time it can:
    // a transient failure in the middle of a batch, after 2000 records were handed over
    vs[2000].last_action = "Flaky".into();
    let flaky = Arc::new(AtomicBool::new(true));
    let fl = flaky.clone();
    let mut k = KafkaSink::new(&out, move |v: &Visit| {
        if v.last_action == "Flaky" && fl.load(Ordering::SeqCst) {
            "x".repeat(MAX_RECORD_BYTES + 10)
        } else {
            v.csv_line()
        }
    });
    k.open("q", &f.settings).expect("open");
    let b = info(&f, 4, false);
    let plan = k.plan(&b).expect("plan");
    let e = k
        .apply(&b, &vs, &plan)
        .expect_err("the oversize record fails the send");
    // nothing of the failed attempt is still in flight: the 2000 records are all in the topic
    assert_eq!(
        end_offset(&f, &out),
        2000,
        "every record handed over was delivered before the error returned"
    );
    assert!(
        e.to_string().contains("record 2000"),
        "the error names the record: {e}"
    );
    // the retry (the engine marks it a replay) sends exactly the missing 1000
    flaky.store(false, Ordering::SeqCst);
    assert_eq!(
        k.apply(&info(&f, 4, true), &vs, &plan).expect("retry"),
        1000
    );
    assert_eq!(
        lines(&f, &out),
        vs.iter().map(Visit::csv_line).collect::<Vec<_>>(),
        "each row once, in order"
    );
}

/// Every committed value of the one-partition `topic`, read until the reader hits the end
/// (`io::kafka::read_all` counts messages and cannot end on a topic holding transaction markers).
fn lines_to_end(f: &Fixture, topic: &str) -> Vec<String> {
    use bde_kit::rdkafka::consumer::{BaseConsumer, Consumer};
    use bde_kit::rdkafka::error::KafkaError;
    use bde_kit::rdkafka::message::Message;
    use bde_kit::rdkafka::{Offset, TopicPartitionList};
    let s = f.settings.clone();
    let t = topic.to_string();
    bde_kit::runtime::run_blocking(move || {
        let c: BaseConsumer = kafka::client_config(&s)
            .set("group.id", format!("bde-sink-test-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&t, 0, Offset::Beginning)
            .expect("tpl");
        c.assign(&tpl).expect("assign");
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "no end of {t} within 30 s"
            );
            match c.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
                }
                Some(Err(KafkaError::PartitionEOF(_))) => return out,
                Some(Err(e)) => panic!("read {t}: {e}"),
                None => {}
            }
        }
    })
    .expect("read ran")
}

/// Writes `values` to `topic` in one transaction, committed or aborted.
fn transaction(f: &Fixture, topic: &str, values: &[&str], commit: bool) {
    let s = f.settings.clone();
    let t = topic.to_string();
    let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    bde_kit::runtime::run_blocking(move || {
        let p: ThreadedProducer<DefaultProducerContext> = kafka::client_config(&s)
            .set(
                "transactional.id",
                format!("bde-sink-txn-{}-{}", std::process::id(), t),
            )
            .set("transaction.timeout.ms", "10000")
            .create()
            .expect("transactional producer");
        p.init_transactions(Duration::from_secs(10))
            .expect("init transactions");
        p.begin_transaction().expect("begin");
        for v in &values {
            p.send(BaseRecord::<(), _>::to(&t).payload(v))
                .map_err(|(e, _)| e)
                .expect("send");
        }
        p.flush(Duration::from_secs(10)).expect("flush");
        if commit {
            p.commit_transaction(Duration::from_secs(10))
                .expect("commit");
        } else {
            p.abort_transaction(Duration::from_secs(10)).expect("abort");
        }
    })
    .expect("transaction ran");
}

#[test]
fn the_replay_scan_passes_transaction_markers_and_aborted_records() {
    let mut f = Fixture::new("kmark");
    let out = f.topic("out");
    let vs = visits(20);
    let mut k = KafkaSink::new(&out, Visit::csv_line);
    k.open("q", &f.settings).expect("open");
    let b = info(&f, 2, false);
    let plan = k.plan(&b).expect("plan");
    // another writer's transactions around a partial write of the batch; the range the replay
    // scans ends on a commit marker, which takes an offset but is never delivered
    transaction(&f, &out, &["foreign-1", "foreign-2"], true);
    transaction(&f, &out, &["aborted-1"], false);
    k.apply(&b, &vs[..8], &plan).expect("partial");
    transaction(&f, &out, &["foreign-3"], true);
    let ends = end_offset(&f, &out);
    assert!(
        ends > 8 + 4,
        "the topic holds markers beside the 12 records ({ends} offsets)"
    );
    assert_eq!(
        k.apply(&info(&f, 2, true), &vs, &plan)
            .expect("the replay scan must end"),
        12,
        "only the missing rows"
    );
    let ours: Vec<String> = lines_to_end(&f, &out)
        .into_iter()
        .filter(|l| !l.starts_with("foreign") && !l.starts_with("aborted"))
        .collect();
    assert_eq!(ours, vs.iter().map(Visit::csv_line).collect::<Vec<_>>());
}

#[test]
fn a_record_over_the_size_limit_is_refused_by_check_and_one_under_it_is_written() {
    let mut f = Fixture::new("ksize");
    let out = f.topic("out");
    let mut vs = visits(3);
    vs[1].last_action = "L".repeat(MAX_RECORD_BYTES);
    vs[2].last_action = "S".repeat(MAX_RECORD_BYTES - 2000);
    let mut k = KafkaSink::new(&out, Visit::csv_line).key(|v: &Visit| v.country.clone());
    k.open("q", &f.settings).expect("open");
    let refused = k.check(&info(&f, 0, false), &vs);
    assert_eq!(refused.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![1]);
    assert!(refused[0].1.contains("limit"), "{}", refused[0].1);
    // the limit is real: the refused row cannot be sent, the largest accepted one can
    assert!(k
        .apply(&info(&f, 0, false), &vs[1..2], &serde_json::Value::Null)
        .is_err());
    let keep = [vs[0].clone(), vs[2].clone()];
    assert_eq!(
        k.apply(&info(&f, 1, false), &keep, &serde_json::Value::Null)
            .expect("send"),
        2
    );
    assert_eq!(
        lines(&f, &out),
        keep.iter().map(Visit::csv_line).collect::<Vec<_>>()
    );
    // a filter drops rows before the check: filtered rows are never refused
    let only_small =
        bde_kit::stream::Stream::<Visit>::read(bde_kit::stream::MemorySource::new("m"))
            .filter(|v| v.last_action.len() < 100)
            .write(KafkaSink::new(&out, Visit::csv_line));
    assert!(only_small.check(&info(&f, 0, false), &vs).is_empty());
}
