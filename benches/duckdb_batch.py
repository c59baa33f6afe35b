"""DuckDB side of the batch benchmark: the course's GlobalAggregatorJob query (SPEC §4.4) over the
same Hive-style stock tree, in DuckDB with 2 threads (as many as PySpark's local[2]).

Usage: python benches/duckdb_batch.py --dir TREE [--repeat R]
Each run defines GLOBAL_STOCK as `read_parquet('TREE/**/*.parquet', hive_partitioning = true)`
and materialises every summary row of the course's Spark SQL (unchanged) into a temporary table.
Before running, the view's types are checked: STOCK_DATE must be a DATE (from the folder names)
and UNIT_VALUE a DECIMAL(10,2); CLOSING_VALUE must come out as a DECIMAL, so the sums are exact.
Prints one JSON line with the contract of benches/pyspark_batch.py: per-run seconds, groups,
rows and the sum of every summary column as a string (CLOSING_VALUE with exactly 2 decimals)."""

import argparse
import decimal
import json
import time

import duckdb

from pyspark_batch import COLUMNS, SQL

THREADS = 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    glob = f"{a.dir.rstrip('/')}/**/*.parquet".replace("'", "''")
    con = duckdb.connect()
    con.execute(f"SET threads = {THREADS}")
    view = f"CREATE OR REPLACE TEMP VIEW GLOBAL_STOCK AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)"
    con.execute(view)
    scan_types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE GLOBAL_STOCK)").fetchall())
    if scan_types.get("STOCK_DATE") != "DATE" or scan_types.get("UNIT_VALUE") != "DECIMAL(10,2)":
        raise SystemExit(f"the tree is read as STOCK_DATE {scan_types.get('STOCK_DATE')}, UNIT_VALUE {scan_types.get('UNIT_VALUE')}")
    times = []
    for _ in range(max(1, a.repeat)):
        con.execute("DROP TABLE IF EXISTS SUMMARY")  # no earlier result alive during a run
        t = time.time()
        con.execute(view)
        con.execute(f"CREATE OR REPLACE TEMP TABLE SUMMARY AS {SQL}")
        times.append(time.time() - t)
    out_types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE SUMMARY)").fetchall())
    if not out_types.get("CLOSING_VALUE", "").startswith("DECIMAL(") or not out_types["CLOSING_VALUE"].endswith(",2)"):
        raise SystemExit(f"CLOSING_VALUE is {out_types.get('CLOSING_VALUE')}, not a DECIMAL with scale 2")
    ints = [c for c in COLUMNS if c != "CLOSING_VALUE"]
    row = con.execute("SELECT COUNT(*), " + ", ".join(f"SUM({c})" for c in COLUMNS) + " FROM SUMMARY").fetchone()
    groups, vals = row[0], dict(zip(COLUMNS, row[1:]))
    v = vals["CLOSING_VALUE"]
    if not isinstance(v, decimal.Decimal) or v.quantize(decimal.Decimal("0.01")) != v:
        raise SystemExit(f"the CLOSING_VALUE sum is {v!r}, not an exact 2-decimal Decimal")
    sums = {c: str(int(vals[c])) for c in ints}
    sums["CLOSING_VALUE"] = f"{v.quantize(decimal.Decimal('0.01')):.2f}"
    print(json.dumps({
        "engine": f"DuckDB {duckdb.__version__} ({THREADS} threads)",
        "seconds": times,
        "groups": groups,
        "rows": sums["TOTAL_REC"],
        "sums": sums,
        "closing_value_type": out_types["CLOSING_VALUE"],
        "column_types": out_types,
        "scan_schema": scan_types,
    }))


if __name__ == "__main__":
    main()
