"""Python Polars side of the batch benchmark: the course's GlobalAggregatorJob query (SPEC §4.4)
over the same Hive-style stock tree, with Polars' own engine (what a Python user would pick).

Usage: python benches/polars_batch.py --dir TREE [--repeat R] [--mode sql|lazy|both]
  sql   the course's Spark SQL, unchanged, through `pl.SQLContext` over
        `pl.scan_parquet(TREE/**/*.parquet, hive_partitioning=True)` (the headline);
  lazy  the same query written with the lazy API (group_by / agg);
  both  (default) sql, then lazy, in one process.
Each run is a fresh scan and a full `collect()` with Polars' default engine (the streaming
engine in Polars 2.x, as POLARS_VERBOSE=1 shows); every summary row is materialised. Before running, the scan's schema is checked: STOCK_DATE must be parsed as a Date
from the folder names and UNIT_VALUE read as Decimal(10,2); CLOSING_VALUE must come out as a
Decimal, so the sums are exact (never floats). Prints one JSON line with the contract of
benches/pyspark_batch.py: per-run seconds (of the first mode), groups, rows and the sum of every
summary column as a string (CLOSING_VALUE with exactly 2 decimals); with `both`, the lazy runs
are under "lazy"."""

import argparse
import decimal
import json
import sys
import time

import polars as pl

from pyspark_batch import COLUMNS, SQL


def scan(tree):
    return pl.scan_parquet(f"{tree.rstrip('/')}/**/*.parquet", hive_partitioning=True)


def check_schema(lf):
    s = lf.collect_schema()
    if s.get("STOCK_DATE") != pl.Date:
        raise SystemExit(f"STOCK_DATE is read as {s.get('STOCK_DATE')}, not a Date")
    if s.get("UNIT_VALUE") != pl.Decimal(10, 2):
        raise SystemExit(f"UNIT_VALUE is read as {s.get('UNIT_VALUE')}, not Decimal(10,2)")
    return {k: str(v) for k, v in s.items()}


def sql_query(lf):
    return pl.SQLContext(GLOBAL_STOCK=lf).execute(SQL)


def lazy_query(lf):
    closing = pl.col("OPENING_STOCK") + pl.col("RECEIPTS") - pl.col("ISSUES")
    return lf.group_by("STOCK_DATE", "ITEM_NAME").agg(
        pl.len().alias("TOTAL_REC"),
        pl.col("OPENING_STOCK").sum(),
        pl.col("RECEIPTS").sum(),
        pl.col("ISSUES").sum(),
        closing.sum().alias("CLOSING_STOCK"),
        (closing * pl.col("UNIT_VALUE")).sum().alias("CLOSING_VALUE"),
    )


def exact_2(d):
    """A Decimal as a string with exactly 2 decimals; an error if that would round."""
    q = d.quantize(decimal.Decimal("0.01"))
    if q != d:
        raise SystemExit(f"CLOSING_VALUE sum {d} has more than 2 decimals")
    return f"{q:.2f}"


def figures(df):
    """Groups, rows and the column sums (integers summed as Int64, CLOSING_VALUE as a Decimal)."""
    t = df.schema["CLOSING_VALUE"]
    if not isinstance(t, pl.Decimal) or t.scale != 2:
        raise SystemExit(f"CLOSING_VALUE is {t}, not a Decimal with scale 2")
    ints = [c for c in COLUMNS if c != "CLOSING_VALUE"]
    row = df.select(*[pl.col(c).cast(pl.Int64).sum() for c in ints], pl.col("CLOSING_VALUE").sum()).row(0, named=True)
    v = row["CLOSING_VALUE"]
    if not isinstance(v, decimal.Decimal):
        raise SystemExit(f"the CLOSING_VALUE sum came back as {type(v).__name__}, not a Decimal")
    sums = {c: str(int(row[c])) for c in ints}
    sums["CLOSING_VALUE"] = exact_2(v)
    return {"groups": df.height, "rows": sums["TOTAL_REC"], "sums": sums, "closing_value_type": str(t),
            "column_types": {c: str(d) for c, d in df.schema.items()}}


def run(tree, repeat, query):
    times, df = [], None
    for _ in range(max(1, repeat)):
        df = None  # no earlier result alive during a run (as in every engine's script)
        t = time.time()
        df = query(scan(tree)).collect()
        times.append(time.time() - t)
    return {"seconds": times, **figures(df)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--mode", choices=["sql", "lazy", "both"], default="both")
    a = ap.parse_args()
    schema = check_schema(scan(a.dir))
    modes = ["sql", "lazy"] if a.mode == "both" else [a.mode]
    out = {}
    for m in modes:
        r = run(a.dir, a.repeat, sql_query if m == "sql" else lazy_query)
        if not out:
            out = {"engine": f"Python Polars {pl.__version__} ({m}, default engine, {pl.thread_pool_size()} threads)", "mode": m, **r}
        else:
            out[m] = r
            if (r["groups"], r["sums"]) != (out["groups"], out["sums"]):
                print(f"Polars {m} differs from {modes[0]}: {r['sums']} vs {out['sums']}", file=sys.stderr)
                sys.exit(1)
    out["scan_schema"] = schema
    print(json.dumps(out))


if __name__ == "__main__":
    main()
