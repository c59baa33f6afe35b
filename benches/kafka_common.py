"""Kafka helpers shared by the Python stream peers (confluent-kafka): read a topic back, delete
topics; and `phase`, the measured-phase marks for benches/compare.py's memory sampler. No Spark
import."""

import os
import sys
import time
import uuid

KAFKA = os.environ.get("BENCH_KAFKA", "127.0.0.1:9092")


def phase(name):
    """Appends `NAME UNIX_SECONDS` to $BENCH_PHASE_FILE (when set): compare.py reports the process
    tree's peak RSS between the `start` and `end` marks, the phase every engine is measured over
    (consume → effects), as bde-bench's steps mark it (bench/src/phase.rs)."""
    path = os.environ.get("BENCH_PHASE_FILE")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{name} {time.time():.3f}\n")


def read_back(topic):
    """Every value of a topic (one partition or more), as text lines."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": KAFKA, "group.id": f"bench-read-{uuid.uuid4().hex}", "enable.auto.commit": False,
                  "receive.message.max.bytes": 1_000_000_000})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    tps, want = [], 0
    for p in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        tps.append(TopicPartition(topic, p, lo))
        want += hi - lo
    c.assign(tps)
    out, t0 = [], time.time()
    while len(out) < want and time.time() - t0 < 300:
        for m in c.consume(10000, 1.0):
            if m.error() is None:
                out.append(m.value().decode())
    c.close()
    return out


def delete_topics(names):
    """Deletes the topics, waiting for the broker's answer; one already gone is no error. (The
    admin client must outlive its futures: a temporary one was collected before it sent the
    request, and every peer's carts topic was left behind.)"""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": KAFKA})
    fs = admin.delete_topics(list(names), operation_timeout=30)
    for name, f in fs.items():
        try:
            f.result(timeout=60)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                print(f"kafka_common: topic {name} not deleted: {e}", file=sys.stderr)
        except Exception as e:  # noqa: BLE001  a timeout: say so, the run goes on
            print(f"kafka_common: topic {name} not deleted: {e}", file=sys.stderr)
