"""PySpark side of the streaming benchmark: the course's StreamingWebsiteAnalyticsJob (SPEC §6)
over the visits as JSON-lines files (the Spark Kafka connector jars are not available here), on
the course's session (local[2], 2 shuffle partitions), three queries as in the course:

- carts: ShoppingCart visits formatted `%s,%s,%s,%d` (as the course's Kafka sink value), written
  by foreachBatch as text files (instead of the Kafka topic);
- countries: the course's per-row writer via foreach: connect to Redis, ZINCRBY key by duration
  for the country, close;
- stats: current_timestamp() + 5 s watermark, 5-second tumbling windows per last_action summed,
  the course's per-row writer via foreach: connect to MariaDB, INSERT one row into visit_stats.

Every query uses trigger availableNow and maxFilesPerTrigger (one file per micro-batch, as the
bde side's max_records). Usage:
  python benches/pyspark_stream.py --dir VISITS --work DIR --db DB --redis-key KEY
Prints one JSON line: seconds from the queries' start until all three finished, the Redis totals,
the cart lines count (lines written to WORK/carts.txt), visit_stats rows and sum."""

import argparse
import glob
import json
import os
import time

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--redis-key", required=True)
    ap.add_argument("--files-per-trigger", type=int, default=1)
    a = ap.parse_args()
    # The Python workers inherit the environment: the writers read their targets from it.
    os.environ["BENCH_REDIS_KEY"] = a.redis_key
    os.environ["BENCH_DB"] = a.db
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

    def write_carts(df, _batch_id):
        df.write.mode("append").text(carts_dir)

    carts = (visits.filter("last_action == 'ShoppingCart'")
             .select(F.format_string("%s,%s,%s,%d", "country", "last_action", "visit_date", "duration").alias("value")))
    stats = (visits.withColumn("timestamp", F.current_timestamp())
             .withWatermark("timestamp", "5 seconds")
             .groupBy(F.window("timestamp", "5 seconds"), "last_action")
             .agg(F.sum("duration").alias("duration")))
    t0 = time.time()
    queries = [
        carts.writeStream.foreachBatch(write_carts).option("checkpointLocation", os.path.join(a.work, "cp-carts"))
        .trigger(availableNow=True).start(),
        visits.select("country", "duration").writeStream.foreach(redis_writer).trigger(availableNow=True).start(),
        stats.writeStream.foreach(mariadb_writer).trigger(availableNow=True).start(),
    ]
    for q in queries:
        q.awaitTermination()
    secs = time.time() - t0
    for q in queries:
        if q.exception() is not None:
            raise SystemExit(f"query failed: {q.exception()}")
    batches = [len(q.recentProgress) for q in queries]
    spark.stop()

    import pymysql
    import redis

    r = redis.Redis(host="127.0.0.1", port=6379)
    totals = {m.decode(): int(s) for m, s in r.zrevrangebyscore(a.redis_key, "+inf", "-inf", withscores=True)}
    r.close()
    lines = []
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
        "engine": "PySpark 3.5.1 local[2] Structured Streaming", "session_seconds": session_s, "seconds": secs,
        "visits": visits_n, "rows_per_sec": visits_n / secs, "batches": batches, "redis_totals": totals,
        "carts": len(lines), "visit_stats_rows": int(n), "visit_stats_sum": int(s),
    }))


if __name__ == "__main__":
    main()
