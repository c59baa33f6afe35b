"""PySpark side of the batch benchmark: the course's GlobalAggregatorJob query (SPEC §4.4) over a
Hive-style stock tree, on the course's session (local[2], 2 shuffle partitions).

Usage: python benches/pyspark_batch.py --dir TREE [--repeat R]
Each run reads the tree, runs the Spark SQL and materialises every summary row (noop sink: the
rows are produced and dropped, no output cost). Prints one JSON line: session start, per-run
seconds, groups, and the sum of every summary column (CLOSING_VALUE as an exact decimal)."""

import argparse
import json
import time

from spark_common import course_session

SQL = """
SELECT STOCK_DATE, ITEM_NAME, COUNT(*) AS TOTAL_REC,
       SUM(OPENING_STOCK) AS OPENING_STOCK, SUM(RECEIPTS) AS RECEIPTS, SUM(ISSUES) AS ISSUES,
       SUM(OPENING_STOCK + RECEIPTS - ISSUES) AS CLOSING_STOCK,
       SUM((OPENING_STOCK + RECEIPTS - ISSUES) * UNIT_VALUE) AS CLOSING_VALUE
FROM GLOBAL_STOCK
GROUP BY STOCK_DATE, ITEM_NAME
"""

COLUMNS = ["TOTAL_REC", "OPENING_STOCK", "RECEIPTS", "ISSUES", "CLOSING_STOCK", "CLOSING_VALUE"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    spark, session_s = course_session("GlobalAggregatorJob")
    from pyspark.sql import functions as F

    times, summary = [], None
    for _ in range(max(1, a.repeat)):
        t = time.time()
        spark.read.parquet(a.dir).createOrReplaceTempView("GLOBAL_STOCK")
        summary = spark.sql(SQL)
        summary.write.format("noop").mode("overwrite").save()
        times.append(time.time() - t)
    row = summary.agg(F.count(F.lit(1)).alias("groups"), *[F.sum(c).alias(c) for c in COLUMNS]).collect()[0]
    print(json.dumps({
        "engine": "PySpark 3.5.1 local[2]",
        "session_seconds": session_s,
        "seconds": times,
        "groups": row["groups"],
        "rows": str(row["TOTAL_REC"]),
        "sums": {c: str(row[c]) for c in COLUMNS},
        "closing_value_type": dict(summary.dtypes)["CLOSING_VALUE"],
    }))
    spark.stop()


if __name__ == "__main__":
    main()
