"""Quix Streams side of the streaming benchmark: the course's analytics job (SPEC §6) as a Python
user writes it with Quix Streams 3 (Kafka-native stream processing), reading the same visits from
Kafka: the topic --topic (made by `bde-bench produce` before this process starts, read by every
engine of the comparison), or else the visits under --dir produced to a fresh topic (key =
country, as `bde-bench produce` does; not timed, and before the measured phase), then one Application with one StreamingDataFrame and three branches:

- carts: `sdf[sdf["last_action"] == "ShoppingCart"]` formatted as the course's Kafka sink value
  (`country,last_action,visit_date,duration`, the date in microseconds as Spark renders it) and
  written with `.to_topic()` to a fresh carts topic (read back afterwards into WORK/carts.txt);
- countries: a custom `BatchingSink` that, per checkpoint, sums the durations per country and
  sends them as ONE Redis pipeline of ZINCRBY;
- stats: processing-time 5-second tumbling windows (a timestamp extractor gives each record the
  time it is read, as the course's `current_timestamp()`), 5 s grace (the course's watermark),
  `.final()` (a window is emitted once, when it closes), and a custom `BatchingSink` writing the
  windows with ONE executemany of a multi-row upsert per checkpoint
  (`INSERT … ON DUPLICATE KEY UPDATE DURATION = DURATION + VALUES(DURATION)`).

Quix windows group by the message key (country); regrouping by last_action (`sdf.group_by`)
would send every visit through a repartition topic. The window here keeps the sums per
last_action inside each country's window (a dict reduced per record), and the additive upsert
adds the countries' sums per (window, last_action): the same rows in visit_stats for less work.

Defaults otherwise: at-least-once, commit every 5 s, RocksDB state with its changelog topic.
The run stops when the last visit of the topic was processed (app.stop() from the stream); the
final checkpoint flushes the sinks and the producer. Windows still open then are not emitted.

The measured phase (kafka_common.phase: compare.py's memory sampler) runs from the Application's
creation to app.run()'s return.

Usage: python benches/quix_stream.py --dir VISITS --work DIR --db DB --redis-key KEY [--topic T]
Prints one JSON line: seconds from app.run() to its return, seconds from the first record read,
the Redis totals, the cart lines count, visit_stats rows and sum."""

import argparse
import datetime
import glob
import json
import os
import time
import uuid

from kafka_common import KAFKA, delete_topics, phase, read_back
UPSERT = ("INSERT INTO visit_stats (INTERVAL_TIMESTAMP, LAST_ACTION, DURATION) VALUES (%s, %s, %s) "
          "ON DUPLICATE KEY UPDATE DURATION = DURATION + VALUES(DURATION)")
EPOCH = datetime.datetime(1970, 1, 1)


def spark_line(v):
    """The cart line as Spark's format_string renders it (visit_date in microseconds, read as UTC)."""
    d = datetime.datetime.strptime(v["visit_date"], "%Y-%m-%d %H:%M:%S")
    micros = (d - EPOCH) // datetime.timedelta(microseconds=1)
    return f"{v['country']},{v['last_action']},{micros},{v['duration']}"


def produce_visits(topic, d):
    """The visit lines under d to a fresh one-partition topic, key = country; returns how many."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": KAFKA})
    for f in admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=30).values():
        f.result()
    p = Producer({"bootstrap.servers": KAFKA, "enable.idempotence": True, "linger.ms": 5})
    n = 0
    for path in sorted(glob.glob(os.path.join(d, "*.json"))):
        with open(path) as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                key = json.loads(line)["country"].encode()
                while True:
                    try:
                        p.produce(topic, key=key, value=line.encode())
                        break
                    except BufferError:
                        p.poll(0.02)
                n += 1
    if p.flush(120):
        raise SystemExit("quix_stream: visits not delivered")
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--redis-key", required=True)
    ap.add_argument("--topic", help="read the visits from this topic (made beforehand; --dir then only counts them)")
    a = ap.parse_args()
    tag = uuid.uuid4().hex[:12]
    visits_topic, carts_topic = a.topic or f"bde_bench.quix.visits.{tag}", f"bde_bench.quix.carts.{tag}"
    os.makedirs(a.work, exist_ok=True)
    if a.topic:
        total = 0
        for path in sorted(glob.glob(os.path.join(a.dir, "*.json"))):
            with open(path) as fh:
                total += sum(1 for line in fh if line.strip())
    else:
        total = produce_visits(visits_topic, a.dir)

    import pymysql
    import redis
    from quixstreams import Application
    from quixstreams.sinks import BatchingSink, SinkBatch

    class RedisCountrySink(BatchingSink):
        """Per checkpoint: durations summed per country, one pipeline of ZINCRBY."""

        def setup(self):
            self.r = redis.Redis(host="127.0.0.1", port=6379)

        def write(self, batch: SinkBatch):
            sums = {}
            for item in batch:
                v = item.value
                sums[v["country"]] = sums.get(v["country"], 0) + v["duration"]
            pipe = self.r.pipeline(transaction=False)
            for country, d in sums.items():
                pipe.zincrby(a.redis_key, d, country)
            pipe.execute()

    class MariaDbWindowSink(BatchingSink):
        """Per checkpoint: the closed windows' sums, one executemany of a multi-row upsert."""

        def setup(self):
            self.conn = pymysql.connect(host="127.0.0.1", port=3306, user="spark", password="spark", database=a.db)

        def write(self, batch: SinkBatch):
            rows = []
            for item in batch:
                w = item.value
                start = (EPOCH + datetime.timedelta(milliseconds=w["start"])).strftime("%Y-%m-%d %H:%M:%S")
                rows.extend((start, action, d) for action, d in w["value"].items())
            if rows:
                with self.conn.cursor() as cur:
                    cur.executemany(UPSERT, rows)
                self.conn.commit()

    phase("start")
    # The local broker answers a fetch of the backlog with more than librdkafka's default
    # receive.message.max.bytes (100 MB): the consumer then retries forever. The kit's consumers
    # raise the same limit.
    app = Application(broker_address=KAFKA, consumer_group=f"bde-bench-quix-{tag}", auto_offset_reset="earliest",
                      state_dir=os.path.join(a.work, "state"), loglevel="WARNING",
                      consumer_extra_config={"receive.message.max.bytes": 1_000_000_000})
    # Processing time, as the course's current_timestamp(): each record gets the time it is read
    # (local wall time read as UTC, as the kit's and Spark's window starts).
    now_ms = lambda *_: int((datetime.datetime.now() - EPOCH) / datetime.timedelta(milliseconds=1))  # noqa: E731
    visits = app.topic(visits_topic, value_deserializer="json", timestamp_extractor=now_ms)
    carts_out = app.topic(carts_topic, value_serializer="str")

    seen = {"n": 0, "first": None, "last": None}

    def count(_v):
        seen["n"] += 1
        if seen["first"] is None:
            seen["first"] = time.time()
        if seen["n"] == total:
            seen["last"] = time.time()
            app.stop()

    sdf = app.dataframe(visits)
    sdf = sdf.update(count)
    carts = sdf[sdf["last_action"] == "ShoppingCart"].apply(spark_line)
    carts.to_topic(carts_out)
    sdf.sink(RedisCountrySink())

    def add(acc, v):
        acc[v["last_action"]] = acc.get(v["last_action"], 0) + v["duration"]
        return acc

    windows = (sdf.tumbling_window(datetime.timedelta(seconds=5), grace_ms=datetime.timedelta(seconds=5))
               .reduce(reducer=add, initializer=lambda v: {v["last_action"]: v["duration"]})
               .final())
    windows.sink(MariaDbWindowSink())

    t0 = time.time()
    app.run()
    secs = time.time() - t0
    phase("end")
    if seen["n"] < total:
        raise SystemExit(f"quix_stream: processed {seen['n']} of {total} visits")

    lines = read_back(carts_topic)
    with open(os.path.join(a.work, "carts.txt"), "w") as fh:
        fh.write("".join(l + "\n" for l in lines))
    r = redis.Redis(host="127.0.0.1", port=6379)
    totals = {m.decode(): int(s) for m, s in r.zrevrangebyscore(a.redis_key, "+inf", "-inf", withscores=True)}
    r.close()
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="spark", password="spark", database=a.db)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), COALESCE(SUM(DURATION), 0) FROM visit_stats")
        n, s = cur.fetchone()
    conn.close()
    extra = [t for t in app._topic_manager.changelog_topics_list] if hasattr(app, "_topic_manager") else []
    delete_topics([*([] if a.topic else [visits_topic]), carts_topic, *extra])
    import quixstreams

    data_secs = seen["last"] - seen["first"] if seen["first"] else secs
    print(json.dumps({
        "engine": f"Quix Streams {quixstreams.__version__}", "seconds": secs, "first_record_seconds": seen["first"] - t0,
        "data_seconds": data_secs, "visits": total, "rows_per_sec": total / secs, "rows_per_sec_from_first": total / max(data_secs, 1e-9),
        "redis_totals": totals, "carts": len(lines), "visit_stats_rows": int(n), "visit_stats_sum": int(s),
    }))


if __name__ == "__main__":
    main()
