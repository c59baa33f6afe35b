"""Side-by-side benchmark: bde_kit vs PySpark 3.5.1 (local[2], the course's settings) vs the
hardware ceiling, one run on one machine and the same data. Run it with `bash kernel/bench.sh`.

Steps (each engine in its own process; peak memory = the process tree's RSS sampled every 50 ms):
  batch   a Hive-style stock tree per scale (`bde bench gen-stock`), aggregated per SPEC §4.4 by
          `bde bench aggregate` and by benches/pyspark_batch.py; the sums of every summary column
          must agree (CLOSING_VALUE as an exact decimal).
  stream  N visits as JSON-lines files (`bde bench gen-visits`); `bde bench stream` produces them
          to Kafka, measures the raw rdkafka consume rate (the ceiling) and runs the analytics
          query with its three real sinks; benches/pyspark_stream.py runs the course's three
          queries over the files. Redis totals (also computed from the files), cart lines and
          cart counts must agree.
  latency benches/notebook_latency.py with the course venv (fresh kernel `:dep`, warm cells).

Exit status 1 when a step fails or the two sides' results differ; timings are never asserted.
The table is printed and, with every raw figure, written to build/bench/results.json."""

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
BENCHES = REPO / "benches"
FAILURES = []


def log(msg):
    print(f"[bench] {msg}", flush=True)


class Peak:
    """Samples the RSS of a process and its descendants."""

    def __init__(self, pid, every=0.05):
        self.pid, self.every, self.peak = pid, every, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                p = psutil.Process(self.pid)
                procs = [p] + p.children(recursive=True)
                total = 0
                for q in procs:
                    try:
                        total += q.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            time.sleep(self.every)

    def stop(self):
        self._stop.set()
        self._t.join()
        return self.peak


def run_step(label, cmd, env=None, log_path=None):
    """Runs cmd, returns (json of its last stdout line, wall seconds, peak tree RSS)."""
    log(f"{label}: {' '.join(str(c) for c in cmd)}")
    e = dict(os.environ)
    e.update(env or {})
    t0 = time.time()
    with open(log_path or os.devnull, "w") as err:
        p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=err, env=e, cwd=REPO, text=True)
        peak = Peak(p.pid)
        out, _ = p.communicate()
        wall = time.time() - t0
        mem = peak.stop()
    lines = [l for l in out.splitlines() if l.strip()]
    if p.returncode != 0 or not lines:
        tail = Path(log_path).read_text()[-3000:] if log_path and Path(log_path).exists() else ""
        raise RuntimeError(f"{label} failed (exit {p.returncode}):\n{tail}")
    return json.loads(lines[-1]), wall, mem


def gib(b):
    return f"{b / 2**30:.2f} GiB" if b >= 2**30 else f"{b / 2**20:.0f} MiB"


def rate(n, s):
    return f"{n / s:,.0f}/s" if s > 0 else "-"


def smaller(mem_b, mem_p):
    r = mem_p / max(mem_b, 1)
    return f"{r:.1f}× smaller" if r >= 1 else f"{1 / r:.1f}× larger"


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        log(f"MISMATCH: {what}")
    return cond


def batch(a, bde, work, rows_total, table, raw):
    for rows in rows_total:
        d = work / f"stock_{rows}"
        gen, _, _ = run_step(f"generate {rows:,} stock rows", [*bde, "bench", "gen-stock", "--dir", d, "--rows", rows], log_path=work / "gen-stock.log")
        n = gen["rows"]
        rb, wall_b, mem_b = run_step(f"bde_kit aggregate {n:,}", [*bde, "bench", "aggregate", "--dir", d, "--repeat", a.repeat], log_path=work / "bde-aggregate.log")
        rp, wall_p, mem_p = run_step(f"PySpark aggregate {n:,}", [a.python, BENCHES / "pyspark_batch.py", "--dir", d, "--repeat", a.repeat], log_path=work / "pyspark-batch.log")
        raw[f"batch_{n}"] = {"generate": gen, "bde": rb, "bde_wall": wall_b, "bde_peak": mem_b, "pyspark": rp, "pyspark_wall": wall_p, "pyspark_peak": mem_p}
        check(rb["groups"] == rp["groups"], f"batch {n}: groups bde {rb['groups']} vs PySpark {rp['groups']}")
        for c, v in rb["sums"].items():
            check(v == rp["sums"][c], f"batch {n}: sum of {c} bde {v} vs PySpark {rp['sums'][c]}")
        check(int(rb["rows"]) == n, f"batch {n}: bde counted {rb['rows']} rows")
        tb1, tp1 = rb["seconds"][0], rp["seconds"][0]
        tbb, tpb = min(rb["seconds"]), min(rp["seconds"])
        sc = f"batch {n / 1e6:g} M rows ({gen['files']} files, {gen['bytes'] / 2**20:.0f} MiB, {rb['groups']:,} groups)"
        table.append((sc, "", "", "", ""))
        table.append(("  query, first run (s)", f"{tb1:.2f}", f"{tp1:.2f}", "", f"{tp1 / tb1:.1f}× faster"))
        if a.repeat > 1:
            table.append((f"  query, best of {a.repeat} (s)", f"{tbb:.2f}", f"{tpb:.2f}", "", f"{tpb / tbb:.1f}× faster"))
        table.append(("  rows/s (best run)", rate(n, tbb), rate(n, tpb), "", f"{tpb / tbb:.1f}×"))
        table.append(("  process wall, incl. start (s)", f"{wall_b:.2f}", f"{wall_p:.2f}", "", f"{wall_p / wall_b:.1f}× faster"))
        table.append(("  peak memory (process tree RSS)", gib(mem_b), gib(mem_p), "", smaller(mem_b, mem_p)))
        table.append(("  results (groups, 6 column sums)", "same" if not [f for f in FAILURES if f.startswith(f"batch {n}:")] else "DIFFER", "", "", ""))
        raw.setdefault("spark_session_seconds", rp["session_seconds"])
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)


def expected_totals(d):
    tot, carts = collections.Counter(), 0
    for f in sorted(Path(d).glob("*.json")):
        for line in f.open():
            v = json.loads(line)
            tot[v["country"]] += v["duration"]
            carts += v["last_action"] == "ShoppingCart"
    return dict(tot), carts


def sql_admin(stmts):
    import pymysql

    last = None
    for user, pw in (("spark", "spark"), ("root", "")):
        try:
            c = pymysql.connect(host="127.0.0.1", port=3306, user=user, password=pw, autocommit=True)
            with c.cursor() as cur:
                for s in stmts:
                    cur.execute(s)
            c.close()
            return
        except pymysql.MySQLError as e:
            last = e
    raise RuntimeError(f"MariaDB: {last}")


def stream(a, bde, work, table, raw):
    d = work / "visits"
    run_step(f"generate {a.visits:,} visits", [*bde, "bench", "gen-visits", "--dir", d, "--visits", a.visits, "--per-file", a.per_file], log_path=work / "gen-visits.log")
    want, want_carts = expected_totals(d)
    rb, wall_b, mem_b = run_step(f"bde_kit stream {a.visits:,}", [*bde, "bench", "stream", "--dir", d, "--carts-out", work / "bde-carts.txt", "--max-records", a.per_file], log_path=work / "bde-stream.log")
    tag = f"{os.getpid()}_{int(time.time())}"
    db, key = f"bde_test_bench_py_{tag}", f"bde_bench:py:{tag}"
    pw = work / "pyspark-stream"
    shutil.rmtree(pw, ignore_errors=True)
    pw.mkdir(parents=True)
    sql_admin([f"CREATE DATABASE `{db}`", f"CREATE TABLE `{db}`.visit_stats (ID INT(11) NOT NULL AUTO_INCREMENT, INTERVAL_TIMESTAMP DATETIME DEFAULT NULL, "
               "LAST_ACTION VARCHAR(45) DEFAULT NULL, DURATION INT(10) DEFAULT NULL, PRIMARY KEY (ID))"])
    try:
        rp, wall_p, mem_p = run_step(f"PySpark stream {a.visits:,}", [a.python, BENCHES / "pyspark_stream.py", "--dir", d, "--work", pw, "--db", db, "--redis-key", key], log_path=work / "pyspark-stream.log")
    finally:
        sql_admin([f"DROP DATABASE IF EXISTS `{db}`"])
        import redis

        redis.Redis(host="127.0.0.1", port=6379).delete(key)
    raw["stream"] = {"bde": rb, "bde_wall": wall_b, "bde_peak": mem_b, "pyspark": rp, "pyspark_wall": wall_p, "pyspark_peak": mem_p, "expected_totals": want}
    check(rb["redis_totals"] == want, f"stream: bde Redis totals {rb['redis_totals']} vs the files' {want}")
    check(rp["redis_totals"] == want, f"stream: PySpark Redis totals {rp['redis_totals']} vs the files' {want}")
    check(rb["carts"] == want_carts and rp["carts"] == want_carts, f"stream: carts bde {rb['carts']}, PySpark {rp['carts']}, files {want_carts}")
    same_lines = sorted(Path(work / "bde-carts.txt").read_text().splitlines()) == sorted((pw / "carts.txt").read_text().splitlines())
    check(same_lines, "stream: the cart lines differ between bde and PySpark")
    total = sum(want.values())
    check(0 < rb["visit_stats_sum"] <= total and rp["visit_stats_sum"] <= total, "stream: visit_stats sums exceed the visits' durations")
    n = a.visits
    eb, ep, raw_rate = rb["rows_per_sec"], rp["rows_per_sec"], rb["raw_consume_per_sec"]
    table.append((f"stream {n:,} visits (3 sinks; {a.per_file:,} per micro-batch)", "", "", "", ""))
    table.append(("  rows/s end to end", f"{eb:,.0f}/s", f"{ep:,.0f}/s", f"{raw_rate:,.0f}/s", f"a/b {eb / ep:.1f}×, a/c {eb / raw_rate:.3f}"))
    table.append(("  seconds (all visits through the sinks)", f"{rb['data_seconds']:.1f}", f"{rp['seconds']:.1f}", f"{n / raw_rate:.1f}", ""))
    table.append(("  micro-batches", f"{rb['batches']} (+{rb['all_batches'] - rb['batches']} drain)", str(rp["batches"]), "", ""))
    table.append(("  process wall, incl. start/produce (s)", f"{wall_b:.1f}", f"{wall_p:.1f}", "", ""))
    table.append(("  peak memory (process tree RSS)", gib(mem_b), gib(mem_p), "", smaller(mem_b, mem_p)))
    table.append(("  visit_stats rows / sum (of " + f"{total:,})", f"{rb['visit_stats_rows']} / {rb['visit_stats_sum']:,}", f"{rp['visit_stats_rows']} / {rp['visit_stats_sum']:,}", "", ""))
    ok = not [f for f in FAILURES if f.startswith("stream:")]
    table.append(("  results (Redis totals, cart lines)", "same" if ok else "DIFFER", "", "", ""))
    if not a.keep:
        shutil.rmtree(d, ignore_errors=True)


def latency(a, work, table, raw):
    py = REPO / ".venv" / "bin" / "python"
    r, _, _ = run_step("notebook latency", [py, "-W", "ignore", BENCHES / "notebook_latency.py", "--runs", a.latency_runs, "--warm-repeats", a.warm_repeats], log_path=work / "latency.log")
    raw["latency"] = r
    m = r["median"]
    table.append((f"notebook latency (median of {r['runs']} fresh kernels, {a.warm_repeats} warm cells each)", "", "", "", ""))
    spark = raw.get("spark_session_seconds")
    table.append(("  kernel start / SparkSession start (s)", f"{m['kernel_start']:.1f}", f"{spark:.1f}" if spark else "-", "", ""))
    table.append(("  first `:dep bde_kit` cell (s)", f"{m['dep']:.1f}", "", "", ""))
    table.append(("  warm trivial cell `1 + 1` (s)", f"{m['trivial']:.2f}", "", "", ""))
    table.append(("  warm `Table` cell, 1 M rows (s)", f"{m['table']:.2f}", "", "", ""))
    table.append(("  kernel peak memory", gib(r["peak_rss"]), "", "", ""))


def print_table(table, header):
    widths = [max(len(str(r[i])) for r in table + [header]) for i in range(5)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths)), line]
    for r in table:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    print("\n".join(out), flush=True)
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bde", default=None, help="the bde binary (default: the release build)")
    ap.add_argument("--python", default=sys.executable, help="python with pyspark (default: this one)")
    ap.add_argument("--batch-rows", default="1000000,20000000", help="comma-separated scales")
    ap.add_argument("--visits", type=int, default=1_000_000)
    ap.add_argument("--per-file", type=int, default=50_000, help="visits per file = per micro-batch")
    ap.add_argument("--repeat", type=int, default=2, help="aggregation runs per engine and scale")
    ap.add_argument("--latency-runs", type=int, default=3)
    ap.add_argument("--warm-repeats", type=int, default=3)
    ap.add_argument("--only", default="batch,stream,latency")
    ap.add_argument("--work", default=str(REPO / "build" / "bench"))
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    a = ap.parse_args()
    bde = [a.bde or str(Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/bde_kit/target")) / "release" / "bde")]
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    only = set(a.only.split(","))
    table, raw = [], {"machine": {"cpus": os.cpu_count(), "memory": psutil.virtual_memory().total}, "bde": bde}
    t0 = time.time()
    steps = [("batch", lambda: batch(a, bde, work, [int(x) for x in a.batch_rows.split(",") if x], table, raw)),
             ("stream", lambda: stream(a, bde, work, table, raw)),
             ("latency", lambda: latency(a, work, table, raw))]
    for name, fn in steps:
        if name not in only:
            continue
        try:
            fn()
        except Exception as e:  # a crashed step fails the run, the others still run
            FAILURES.append(f"{name}: {e}")
            log(f"{name} FAILED: {e}")
            table.append((f"{name}: FAILED (see {work}/*.log)", "", "", "", ""))
    print()
    print(f"bde_kit vs PySpark 3.5.1 (local[2], shuffle partitions 2) vs ceiling — {os.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {time.time() - t0:.0f} s")
    text = print_table(table, ("", "a: bde_kit", "b: PySpark", "c: ceiling (raw rdkafka)", "ratio (bde_kit vs PySpark)"))
    raw["failures"], raw["table"] = FAILURES, text
    (work / "results.json").write_text(json.dumps(raw, indent=2, default=str))
    log(f"figures in {work / 'results.json'}")
    if FAILURES:
        log("FAILED: " + "; ".join(FAILURES))
        sys.exit(1)


if __name__ == "__main__":
    main()
