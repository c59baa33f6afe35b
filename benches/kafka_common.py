"""Kafka helpers shared by the Python stream peers (confluent-kafka): read a topic back, delete
topics; and `phase`, the measured-phase marks for benches/compare.py's memory sampler. No Spark
import."""

import os
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
    from confluent_kafka.admin import AdminClient

    fs = AdminClient({"bootstrap.servers": KAFKA}).delete_topics(list(names), operation_timeout=30)
    for f in fs.values():
        try:
            f.result()
        except Exception:  # noqa: BLE001  already gone
            pass
