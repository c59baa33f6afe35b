"""PySpark side of the streaming benchmark: the course's StreamingWebsiteAnalyticsJob (SPEC §6)
over the visits as JSON-lines files, on the course's session (local[2], 2 shuffle partitions).
The file source stands in for Kafka: the Spark Kafka connector (spark-sql-kafka-0-10 and
kafka-clients) comes from Maven Central, which this workplace cannot reach, and no PyPI package
ships it. Two ways of writing the job (--writers):

bulk (default), as a Spark engineer writes it for throughput, two queries:
- visits: foreachBatch over each micro-batch (persisted once): the carts (ShoppingCart visits
  formatted `%s,%s,%s,%d` as the course's Kafka sink value) collected and sent through ONE
  confluent-kafka producer per batch with one flush; the durations summed per country and sent
  as ONE Redis pipeline of ZINCRBY;
- stats: current_timestamp() + 5 s watermark, 5-second tumbling windows per last_action summed
  (append mode: a window is written once, when the watermark passes it), foreachBatch writing
  the batch's windows with ONE executemany of a multi-row upsert
  (`INSERT … ON DUPLICATE KEY UPDATE DURATION = DURATION + VALUES(DURATION)`).
The carts land in a Kafka topic (--carts-topic), read back afterwards into WORK/carts.txt.

course: the course's three queries:

- carts: ShoppingCart visits formatted `%s,%s,%s,%d` (as the course's Kafka sink value), written
  by foreachBatch as text files (instead of the Kafka topic);
- countries: the course's per-row writer via foreach: connect to Redis, ZINCRBY key by duration
  for the country, close;
- stats: current_timestamp() + 5 s watermark, 5-second tumbling windows per last_action summed,
  the course's per-row writer via foreach: connect to MariaDB, INSERT one row into visit_stats.

Every query uses trigger availableNow and maxFilesPerTrigger (one file per micro-batch, as the
bde side's max_records). Usage:
  python benches/pyspark_stream.py --dir VISITS --work DIR --db DB --redis-key KEY
         [--writers bulk --carts-topic TOPIC | --writers course]
The measured phase (kafka_common.phase: compare.py's memory sampler) runs from the session's
start to the queries' end (the JVM is the engine), not the read-back of the effects.
Prints one JSON line: seconds from the queries' start until all finished, the Redis totals, the
cart lines count (lines written to WORK/carts.txt), visit_stats rows and sum."""

import argparse
import glob
import json
import os
import time

from kafka_common import KAFKA, delete_topics, phase, read_back
from spark_common import course_session

A = None


def redis_writer(row):
    # The course's writer: one connection per row.
    import redis

    r = redis.Redis(host=os.environ.get("BENCH_REDIS_HOST", "127.0.0.1"), port=6379)
    r.zincrby(os.environ["BENCH_REDIS_KEY"], row.duration, row.country)
    r.close()


def mariadb_writer(row):
    # The course's writer: one connection per row, autocommit, DURATION passed as a string.
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=3306, user="spark", password="spark",
                           database=os.environ["BENCH_DB"], autocommit=True)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO visit_stats (INTERVAL_TIMESTAMP, LAST_ACTION, DURATION) VALUES (%s, %s, %s)",
                    (row.window.start.strftime("%Y-%m-%d %H:%M:%S"), row.last_action, str(row.duration)))
    conn.close()  # the course never closes it; closing keeps max_connections safe at 1 M rows


UPSERT = ("INSERT INTO visit_stats (INTERVAL_TIMESTAMP, LAST_ACTION, DURATION) VALUES (%s, %s, %s) "
          "ON DUPLICATE KEY UPDATE DURATION = DURATION + VALUES(DURATION)")


def bulk_visits_writer(carts_topic, redis_key):
    """foreachBatch of the visits: carts through one producer, one Redis pipeline."""
    from pyspark.sql import functions as F

    def write(df, _batch_id):
        import redis
        from confluent_kafka import Producer

        df.persist()
        lines = [r.value for r in df.filter("last_action == 'ShoppingCart'")
                 .select(F.format_string("%s,%s,%s,%d", "country", "last_action", "visit_date", "duration").alias("value"))
                 .collect()]
        p = Producer({"bootstrap.servers": KAFKA, "enable.idempotence": True, "linger.ms": 5})
        for line in lines:
            while True:
                try:
                    p.produce(carts_topic, value=line.encode())
                    break
                except BufferError:  # local queue full: let deliveries drain
                    p.poll(0.02)
        left = p.flush(60)
        if left:
            raise RuntimeError(f"{left} carts not delivered")
        sums = df.groupBy("country").agg(F.sum("duration").alias("d")).collect()
        r = redis.Redis(host=os.environ.get("BENCH_REDIS_HOST", "127.0.0.1"), port=6379)
        pipe = r.pipeline(transaction=False)
        for row in sums:
            pipe.zincrby(redis_key, int(row.d), row.country)
        pipe.execute()
        r.close()
        df.unpersist()

    return write


def bulk_stats_writer(db):
    """foreachBatch of the windows: one executemany of a multi-row upsert."""

    def write(df, _batch_id):
        import pymysql

        rows = [(r.window.start.strftime("%Y-%m-%d %H:%M:%S"), r.last_action, int(r.duration)) for r in df.collect()]
        if not rows:
            return
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="spark", password="spark", database=db)
        with conn.cursor() as cur:
            cur.executemany(UPSERT, rows)  # PyMySQL sends one multi-row INSERT
        conn.commit()
        conn.close()

    return write


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--redis-key", required=True)
    ap.add_argument("--files-per-trigger", type=int, default=1)
    ap.add_argument("--writers", choices=["bulk", "course"], default="bulk")
    ap.add_argument("--carts-topic", help="bulk: the Kafka topic of the carts (deleted afterwards)")
    a = ap.parse_args()
    if a.writers == "bulk" and not a.carts_topic:
        raise SystemExit("--writers bulk needs --carts-topic")
    # The Python workers inherit the environment: the writers read their targets from it.
    os.environ["BENCH_REDIS_KEY"] = a.redis_key
    os.environ["BENCH_DB"] = a.db
    phase("start")
    spark, session_s = course_session("StreamingWebsiteAnalyticsJob")
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegerType, StringType, StructField, StructType, TimestampNTZType

    schema = StructType([
        StructField("country", StringType()),
        StructField("last_action", StringType()),
        StructField("visit_date", TimestampNTZType()),
        StructField("duration", IntegerType()),
    ])
    visits = (spark.readStream.schema(schema)
              .option("maxFilesPerTrigger", a.files_per_trigger)
              .option("timestampNTZFormat", "yyyy-MM-dd HH:mm:ss")
              .json(a.dir))
    carts_dir = os.path.join(a.work, "carts")
    stats = (visits.withColumn("timestamp", F.current_timestamp())
             .withWatermark("timestamp", "5 seconds")
             .groupBy(F.window("timestamp", "5 seconds"), "last_action")
             .agg(F.sum("duration").alias("duration")))
    t0 = time.time()
    if a.writers == "bulk":
        queries = [
            visits.writeStream.foreachBatch(bulk_visits_writer(a.carts_topic, a.redis_key))
            .option("checkpointLocation", os.path.join(a.work, "cp-visits")).trigger(availableNow=True).start(),
            stats.writeStream.foreachBatch(bulk_stats_writer(a.db))
            .option("checkpointLocation", os.path.join(a.work, "cp-stats")).trigger(availableNow=True).start(),
        ]
    else:
        def write_carts(df, _batch_id):
            df.write.mode("append").text(carts_dir)

        carts = (visits.filter("last_action == 'ShoppingCart'")
                 .select(F.format_string("%s,%s,%s,%d", "country", "last_action", "visit_date", "duration").alias("value")))
        queries = [
            carts.writeStream.foreachBatch(write_carts).option("checkpointLocation", os.path.join(a.work, "cp-carts"))
            .trigger(availableNow=True).start(),
            visits.select("country", "duration").writeStream.foreach(redis_writer).trigger(availableNow=True).start(),
            stats.writeStream.foreach(mariadb_writer).trigger(availableNow=True).start(),
        ]
    for q in queries:
        q.awaitTermination()
    secs = time.time() - t0
    phase("end")
    for q in queries:
        if q.exception() is not None:
            raise SystemExit(f"query failed: {q.exception()}")
    batches = [len(q.recentProgress) for q in queries]
    # Spark's own split of each query's batch time (durationMs summed over its batches)
    durations = []
    for q in queries:
        d = {}
        for p in q.recentProgress:
            for k, v in (p.get("durationMs") or {}).items():
                d[k] = d.get(k, 0) + v
        durations.append(d)
    spark.stop()

    import pymysql
    import redis

    r = redis.Redis(host="127.0.0.1", port=6379)
    totals = {m.decode(): int(s) for m, s in r.zrevrangebyscore(a.redis_key, "+inf", "-inf", withscores=True)}
    r.close()
    lines = []
    if a.writers == "bulk":
        lines = read_back(a.carts_topic)
        delete_topics([a.carts_topic])
    for f in sorted(glob.glob(os.path.join(carts_dir, "part-*"))):
        with open(f) as fh:
            lines.extend(l.rstrip("\n") for l in fh if l.strip())
    with open(os.path.join(a.work, "carts.txt"), "w") as fh:
        fh.write("".join(l + "\n" for l in lines))
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="spark", password="spark", database=a.db)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), COALESCE(SUM(DURATION), 0) FROM visit_stats")
        n, s = cur.fetchone()
    conn.close()
    visits_n = sum(1 for f in glob.glob(os.path.join(a.dir, "*.json")) for _ in open(f))
    print(json.dumps({
        "engine": f"PySpark 3.5.1 local[2] Structured Streaming ({a.writers} writers, file source)", "session_seconds": session_s, "seconds": secs,
        "visits": visits_n, "rows_per_sec": visits_n / secs, "batches": batches, "duration_ms": durations, "redis_totals": totals,
        "carts": len(lines), "visit_stats_rows": int(n), "visit_stats_sum": int(s),
    }))


if __name__ == "__main__":
    main()
