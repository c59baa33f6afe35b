"""Side-by-side benchmark: bde_kit vs PySpark 3.5.1 (local[2], the course's settings), Python
Polars, DuckDB and Quix Streams vs the job's floor and the hardware ceiling, one run on one
machine and the same data. Run it with `bash kernel/bench.sh`.

Steps (each engine in its own process; peak memory = the process tree's RSS sampled every 50 ms):
  batch   a Hive-style stock tree per scale (`bde-bench gen-stock`), aggregated per SPEC §4.4 by
          `bde-bench aggregate` and by each peer (--peers): benches/pyspark_batch.py,
          benches/polars_batch.py (the course's SQL through pl.SQLContext, then the lazy API, one
          process each) and benches/duckdb_batch.py (2 threads); groups, rows and the sums of
          every summary column must agree with bde_kit's (CLOSING_VALUE as an exact decimal).
          bde_kit runs twice: its `summarize` (one STOCK_DATE folder at a time, the headline) and
          one lazy plan over the whole tree (as notebook 2's cell writes it).
  stream  N visits as JSON-lines files (`bde-bench gen-visits`), produced once to one Kafka topic
          (`bde-bench produce`) before any engine starts; `bde-bench raw-consume` measures the
          raw rdkafka consume rate of that topic (the ceiling); `bde-bench stream --topic` runs
          the analytics query over it with its three real effects; `bde-bench floor --topic`
          runs the job's floor over it (consume, decode, carts through one producer, one Redis
          pipeline, one MariaDB upsert, step by step with the kit's crates); the peers
          (--stream-peers): benches/pyspark_stream.py with bulk writers in foreachBatch over the
          files (the Spark Kafka connector cannot be installed here), benches/quix_stream.py
          (Quix Streams from the same topic, custom sinks), optionally the course's per-row
          PySpark writers. Redis totals (also computed from the files), cart lines and cart
          counts must agree. Memory: each engine marks its measured phase, consume → effects
          (PySpark: from its session's start; bench/src/phase.rs, kafka_common.phase), and the
          table shows the process tree's peak RSS in it, beside the whole process's (start and
          the effects' read-back). The kit's time per step
          (read, decode, write-ahead, each sink, commit) is summed over its batches, beside the
          floor's. --stream-vs BIN: this build's and BIN's stream step in turn, A B A B. Then
          `bde-bench latency`: visits produced at an even pace while the query runs on its
          1-second trigger, each timed until its country total shows in Redis (median, p90, p99).
  latency benches/notebook_latency.py with the course venv (fresh kernel `:dep`, warm cells).
  memory  benches/kernel_memory.py with the course venv: fresh Rust kernels and PySpark notebook
          kernels, resident memory split by process after the setup cell and a first
          Polars/DataFrame cell, and the peaks during them.

Exit status 1 when a step fails or an engine's results differ; timings are never asserted.
The table is printed and, with every raw figure, the date and the machine, written to
build/bench/results.json; `bde-bench chart` draws build/bench/ratios.svg from it (when a batch
step ran). --publish also writes benches/results/latest.md and benches/results/ratios.svg."""

import argparse
import collections
import datetime
import json
import os
import platform
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
STEP_TIMEOUT = 1800  # seconds one step may take


def log(msg):
    print(f"[bench] {msg}", flush=True)


class Peak:
    """Samples the RSS of a process and its descendants; keeps every sample (time, bytes) so a
    phase's peak can be read afterwards (`between`)."""

    def __init__(self, pid, every=0.05):
        self.pid, self.every, self.peak, self.samples = pid, every, 0, []
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
                self.samples.append((time.time(), total))
            except psutil.Error:
                pass
            time.sleep(self.every)

    def stop(self):
        self._stop.set()
        self._t.join()
        return self.peak

    def between(self, start, end):
        """The peak of the samples taken from `start` to one sampling interval after `end` (the
        first sample after the phase still holds what the phase held). A phase shorter than the
        interval (tiny smoke scales) may hold no sample: then the first sample after it, else the
        last one before it; None without samples."""
        inside = [b for t, b in self.samples if start <= t <= end + self.every]
        if inside:
            return max(inside)
        after = [b for t, b in self.samples if t > end]
        before = [b for t, b in self.samples if t < start]
        return after[0] if after else (before[-1] if before else None)


def phase_window(path):
    """(start, end) from a step's phase marks (`NAME UNIX_SECONDS` lines: bench/src/phase.rs,
    benches/kafka_common.py's phase), or None when the step wrote no complete pair."""
    marks = {}
    try:
        for line in Path(path).read_text().splitlines():
            name, _, t = line.partition(" ")
            marks.setdefault(name, float(t))
    except (OSError, ValueError):
        return None
    return (marks["start"], marks["end"]) if "start" in marks and "end" in marks else None


def run_step(label, cmd, env=None, log_path=None, phased=False):
    """Runs cmd, returns (json of its last stdout line, wall seconds, peak tree RSS); with
    phased, also the peak tree RSS between the step's `start` and `end` phase marks (consume →
    effects; None when the step marked none), as a fourth item."""
    log(f"{label}: {' '.join(str(c) for c in cmd)}")
    e = dict(os.environ)
    e.update(env or {})
    marks = None
    if phased:
        marks = Path(f"{log_path}.phase" if log_path else f"/tmp/bench-{os.getpid()}-{time.time_ns()}.phase")
        marks.unlink(missing_ok=True)
        e["BENCH_PHASE_FILE"] = str(marks)
    t0 = time.time()
    with open(log_path or os.devnull, "w") as err:
        p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=err, env=e, cwd=REPO, text=True)
        peak = Peak(p.pid)
        try:
            out, _ = p.communicate(timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired:  # a hung step (a peer stuck on its broker) fails, the run goes on
            p.kill()
            out, _ = p.communicate()
            log(f"{label}: no result after {STEP_TIMEOUT} s, stopped")
        wall = time.time() - t0
        mem = peak.stop()
    lines = [l for l in out.splitlines() if l.strip()]
    if p.returncode != 0 or not lines:
        tail = Path(log_path).read_text()[-3000:] if log_path and Path(log_path).exists() else ""
        raise RuntimeError(f"{label} failed (exit {p.returncode}):\n{tail}")
    if not phased:
        return json.loads(lines[-1]), wall, mem
    w = phase_window(marks)
    in_phase = peak.between(*w) if w else None
    if in_phase is None:
        FAILURES.append(f"{label}: no measured phase (start/end marks in {marks})")
        log(f"MISMATCH: {label} marked no measured phase")
    return json.loads(lines[-1]), wall, mem, in_phase


def gib(b):
    if b is None:
        return "-"
    return f"{b / 2**30:.2f} GiB" if b >= 2**30 else f"{b / 2**20:.0f} MiB"


def secs(s):
    """Seconds with 2 decimals, 3 below 0.1 s (tiny smoke scales)."""
    return f"{s:.2f}" if s >= 0.1 else f"{s:.3f}"


def rate(n, s):
    return f"{n / s:,.0f}/s" if s > 0 else "-"


def smaller(mem_b, mem_p):
    if mem_b is None or mem_p is None:
        return "-"
    r = mem_p / max(mem_b, 1)
    return f"{r:.1f}× smaller" if r >= 1 else f"{1 / r:.1f}× larger"


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        log(f"MISMATCH: {what}")
    return cond


# The batch peers, each run in its own process over the same tree and checked against bde_kit:
# (results.json key, table column, name for --peers, script and its extra arguments).
PEERS = [
    ("pyspark", "PySpark", "pyspark", "pyspark_batch.py", []),
    ("polars_sql", "Polars SQL", "polars", "polars_batch.py", ["--mode", "sql"]),
    ("polars_lazy", "Polars lazy", "polars", "polars_batch.py", ["--mode", "lazy"]),
    ("duckdb", "DuckDB", "duckdb", "duckdb_batch.py", []),
]

# The table: one column per engine, then the ceiling and a ratio column. A row is a plain tuple in
# COLUMNS order (label first) — `row(...)` builds one by name — and may be shorter (padded) or
# longer (extra columns print without a header) than COLUMNS; all-empty columns are left out.
# (The stream step's ratio text calls bde_kit, PySpark, Quix Streams, the job's floor and the raw
# consume rate a, b, q, f and c.)
COLUMNS = ("", "a: bde_kit", "b: PySpark", "Polars SQL", "Polars lazy", "DuckDB", "q: Quix Streams", "f: floor", "c: ceiling", "ratio")
CELL = {"label": 0, "bde": 1, "pyspark": 2, "polars_sql": 3, "polars_lazy": 4, "duckdb": 5, "quix": 6, "floor": 7, "ceiling": 8, "ratio": 9}


def row(label, **cells):
    """A table row with cells named by CELL's keys (bde=…, pyspark=…, ceiling=…, ratio=…)."""
    r = [label] + [""] * (len(COLUMNS) - 1)
    for k, v in cells.items():
        r[CELL[k]] = v
    return tuple(r)


def speed(peer_s, bde_s):
    """bde_kit against a peer as the peer's time / bde_kit's: "2.2× faster" or "0.45× (slower)"."""
    if not bde_s or not peer_s:
        return "-"
    r = peer_s / bde_s
    return f"{r:.1f}× faster" if r >= 1 else f"{r:.2f}× (slower)"


def selected_peers(a):
    want = {p.strip() for p in a.peers.split(",") if p.strip()}
    known = {g for _, _, g, _, _ in PEERS} | {k.replace("_", "-") for k, _, _, _, _ in PEERS}
    unknown = want - known
    if unknown:
        raise SystemExit(f"--peers: unknown {sorted(unknown)}; use {sorted(known)}")
    return [p for p in PEERS if p[2] in want or p[0].replace("_", "-") in want]


def batch(a, bde, work, rows_total, table, raw):
    peers = selected_peers(a)
    for rows in rows_total:
        d = work / f"stock_{rows}"
        gen, _, _ = run_step(f"generate {rows:,} stock rows", [*bde, "gen-stock", "--dir", d, "--rows", rows], log_path=work / "gen-stock.log")
        n = gen["rows"]
        tag = f"batch {n}:"
        rb, wall_b, mem_b = run_step(f"bde_kit aggregate {n:,}", [*bde, "aggregate", "--dir", d, "--repeat", a.repeat], log_path=work / "bde-aggregate.log")
        rec = raw[f"batch_{n}"] = {"generate": gen, "bde": rb, "bde_wall": wall_b, "bde_peak": mem_b, "peers": [p[0] for p in peers]}
        ok = {"bde": check(int(rb["rows"]) == n, f"{tag} bde counted {rb['rows']} rows")}
        got = {}  # key -> (result, wall, peak); a crashed peer is a failure, the others still run
        for key, name, _, script, extra in peers:
            try:
                r, wall, mem = run_step(f"{name} aggregate {n:,}", [a.python, BENCHES / script, "--dir", d, "--repeat", a.repeat, *extra], log_path=work / f"{key}-batch.log")
            except RuntimeError as e:
                FAILURES.append(f"{tag} {name} crashed")
                log(f"{name} FAILED: {e}")
                continue
            got[key] = (r, wall, mem)
            rec.update({key: r, f"{key}_wall": wall, f"{key}_peak": mem})
            same = [check(r["groups"] == rb["groups"], f"{tag} groups bde {rb['groups']} vs {name} {r['groups']}"),
                    check(int(r["rows"]) == n, f"{tag} {name} counted {r['rows']} rows")]
            same += [check(v == r["sums"].get(c), f"{tag} sum of {c} bde {v} vs {name} {r['sums'].get(c)}") for c, v in rb["sums"].items()]
            ok[key] = all(same)
        if "pyspark" in got:
            raw.setdefault("spark_session_seconds", got["pyspark"][0]["session_seconds"])
        best = lambda r: min(r["seconds"])  # noqa: E731
        per = lambda f: {k: f(*v) for k, v in got.items()}  # noqa: E731  cells of every peer that ran
        sc = f"batch {n / 1e6:g} M rows ({gen['files']} files, {gen['bytes'] / 2**20:.0f} MiB, {rb['groups']:,} groups)"
        table.append(row(sc))
        table.append(row("  query, first run (s)", bde=secs(rb["seconds"][0]), **per(lambda r, w, m: secs(r["seconds"][0]))))
        q = "query" if a.repeat == 1 else f"query, best of {a.repeat}"
        if a.repeat > 1:
            table.append(row(f"  {q} (s)", bde=secs(best(rb)), **per(lambda r, w, m: secs(best(r)))))
        table.append(row("  rows/s (best run)", bde=rate(n, best(rb)), **per(lambda r, w, m: rate(n, best(r)))))
        table.append(row("  process wall, incl. start (s)", bde=f"{wall_b:.2f}", **per(lambda r, w, m: f"{w:.2f}")))
        table.append(row("  peak memory (process tree RSS)", bde=gib(mem_b), **per(lambda r, w, m: gib(m))))
        table.append(row(f"  bde_kit vs each, {q}", **per(lambda r, w, m: speed(best(r), best(rb)))))
        table.append(row("  bde_kit vs each, process wall", **per(lambda r, w, m: speed(w, wall_b))))
        table.append(row("  bde_kit vs each, peak memory", **per(lambda r, w, m: smaller(mem_b, m))))
        names = {k: name for k, name, _, _, _ in PEERS}
        if got:
            fq = min(got, key=lambda k: best(got[k][0]))
            fw = min(got, key=lambda k: got[k][1])
            lm = min(got, key=lambda k: got[k][2])
            table.append(row(f"  fastest peer, {q}", ratio=f"{names[fq]} {secs(best(got[fq][0]))} s: bde_kit {speed(best(got[fq][0]), best(rb))}"))
            table.append(row("  fastest peer, process wall", ratio=f"{names[fw]} {secs(got[fw][1])} s: bde_kit {speed(got[fw][1], wall_b)}"))
            table.append(row("  lowest peer memory", ratio=f"{names[lm]} {gib(got[lm][2])}: bde_kit {smaller(mem_b, got[lm][2])}"))
            rec["fastest_peer_query"], rec["fastest_peer_wall"], rec["lowest_peer_memory"] = fq, fw, lm
        table.append(row("  results (groups, rows, 6 column sums)", **{k: "same" if v else "DIFFER" for k, v in ok.items()}))
        # The kit's `summarize` runs one STOCK_DATE folder at a time; notebook 2's cell writes one
        # lazy plan over the whole tree. Both are measured, the headline is the kit's function.
        rw, wall_w, mem_w = run_step(f"bde_kit aggregate {n:,}, one plan", [*bde, "aggregate", "--dir", d, "--repeat", a.repeat, "--plan", "whole"], log_path=work / "bde-aggregate-whole.log")
        rec.update({"bde_whole": rw, "bde_whole_wall": wall_w, "bde_whole_peak": mem_w})
        check(rw["sums"] == rb["sums"] and rw["groups"] == rb["groups"], f"{tag} the one-plan run differs from the partition-wise one")
        table.append(row("  bde_kit as one lazy plan (notebook 2's cell)", bde=f"{secs(best(rw))} s, {gib(mem_w)}",
                         ratio=f"partition-wise is {speed(best(rw), best(rb))}, {smaller(mem_b, mem_w)}"))
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


# The stream peers (--stream-peers): key, column, script and its extra arguments. PySpark has no
# Kafka source here (its connector jars come from Maven Central, which this workplace cannot
# reach), so it reads the same visits as JSON-lines files; Quix Streams reads them from the
# Kafka topic the kit, the floor and the ceiling read (made by `bde-bench produce` beforehand).
STREAM_PEERS = [
    ("pyspark", "PySpark (bulk writers)", "pyspark_stream.py", ["--writers", "bulk"]),
    ("quix", "Quix Streams", "quix_stream.py", []),
    ("pyspark_course", "PySpark (course's writers)", "pyspark_stream.py", ["--writers", "course"]),
]


def stream_peer(a, key, name, script, extra, d, work, topic):
    """Runs one stream peer on a fresh database (visit_stats with the upsert's unique key) and
    Redis key; returns (result, wall, peak, peak in its measured phase, the cart lines' file:
    WORK/<key>-stream/carts.txt). A Kafka peer reads `topic`."""
    tag = f"{os.getpid()}_{int(time.time())}"
    db, rkey = f"bde_test_bench_{key}_{tag}", f"bde_bench:{key}:{tag}"
    pw = work / f"{key}-stream"
    shutil.rmtree(pw, ignore_errors=True)
    pw.mkdir(parents=True)
    sql_admin([f"CREATE DATABASE `{db}`", f"CREATE TABLE `{db}`.visit_stats (ID INT(11) NOT NULL AUTO_INCREMENT, INTERVAL_TIMESTAMP DATETIME DEFAULT NULL, "
               "LAST_ACTION VARCHAR(45) DEFAULT NULL, DURATION INT(10) DEFAULT NULL, PRIMARY KEY (ID), UNIQUE KEY window_action (INTERVAL_TIMESTAMP, LAST_ACTION))"])
    args = [a.python, BENCHES / script, "--dir", d, "--work", pw, "--db", db, "--redis-key", rkey, *extra]
    if "bulk" in extra:
        args += ["--carts-topic", f"bde_bench.{key}.carts.{tag}"]
    if script == "quix_stream.py":
        args += ["--topic", topic]
    try:
        r, wall, mem, in_phase = run_step(f"{name} stream {a.visits:,}", args, log_path=work / f"{key}-stream.log", phased=True)
    finally:
        sql_admin([f"DROP DATABASE IF EXISTS `{db}`"])
        import redis

        redis.Redis(host="127.0.0.1", port=6379).delete(rkey)
    return r, wall, mem, in_phase, pw / "carts.txt"


def stream_vs(a, bde, d, work, table, raw):
    """--stream-vs BIN: `bde-bench stream` of this build (A) and of BIN (B) in turn, A B A B, on
    the same visits; the rows/s of each run, their medians and the ratio A/B pair by pair."""
    other = [a.stream_vs]
    runs = {"a": [], "b": []}
    for i in range(a.stream_pairs):
        for side, cmd in (("a", bde), ("b", other)):
            r, wall, mem = run_step(f"stream A/B pair {i + 1}, {side.upper()}", [*cmd, "stream", "--dir", d, "--max-records", a.per_file],
                                    log_path=work / f"stream-vs-{side}.log")
            runs[side].append({"rows_per_sec": r["rows_per_sec"], "data_seconds": r["data_seconds"], "wall": wall, "peak": mem,
                               "raw_consume_per_sec": r["raw_consume_per_sec"], "steps_ms": r.get("steps_ms", [])})
            check(r["carts"] > 0 or a.visits < 10, f"stream A/B: {side.upper()} wrote no carts")
    raw["stream_vs"] = {"a": str(bde[0]), "b": a.stream_vs, "label_b": a.stream_vs_label or a.stream_vs, "runs": runs}
    ra = [x["rows_per_sec"] for x in runs["a"]]
    rb = [x["rows_per_sec"] for x in runs["b"]]
    pairs = [x / y for x, y in zip(ra, rb)]
    fmt = lambda v: f"median {statistics.median(v):,.0f}/s (min {min(v):,.0f}, max {max(v):,.0f})"  # noqa: E731
    label_b = a.stream_vs_label or Path(a.stream_vs).name
    table.append((f"stream rows/s, this build (A) vs {label_b} (B), {a.stream_pairs} pairs run A B A B", "", "", "", "", "", ""))
    table.append(("  A: this build", fmt(ra), "", "", "", "", ""))
    table.append((f"  B: {label_b}", fmt(rb), "", "", "", "", ""))
    table.append(("  A/B pair by pair", f"median {statistics.median(pairs):.2f} (min {min(pairs):.2f}, max {max(pairs):.2f})", "", "", "", "", ""))


def stream(a, bde, work, table, raw):
    d = work / "visits"
    run_step(f"generate {a.visits:,} visits", [*bde, "gen-visits", "--dir", d, "--visits", a.visits, "--per-file", a.per_file], log_path=work / "gen-visits.log")
    want, want_carts = expected_totals(d)
    total = sum(want.values())
    # One topic for every Kafka reader (the ceiling, bde_kit, the floor, Quix Streams), produced
    # before any of them starts: no engine's measured process produces or holds the input.
    topic = f"bde_bench.visits.{os.getpid()}_{int(time.time())}"
    try:
        stream_on(a, bde, work, table, raw, d, topic, want, want_carts, total)
    finally:
        from kafka_common import delete_topics

        delete_topics([topic, f"{topic}.dlq"])  # the kit's query makes the dead-letter topic when a record fails
    if a.stream_vs:
        stream_vs(a, bde, d, work, table, raw)
    if not a.no_stream_latency:
        lat, _, _ = run_step(f"bde_kit latency, {a.latency_visits:,} visits", [*bde, "latency", "--visits", a.latency_visits, "--spread-ms", a.latency_spread_ms],
                             log_path=work / "bde-latency.log")
        raw["stream_latency"] = lat
        table.append((f"  visit produced → its country total in Redis ({lat['visits']:,} visits over {lat['spread_seconds']:.0f} s, {lat['trigger_ms']} ms trigger)",
                      f"median {lat['median']:.2f} s, p99 {lat['p99']:.2f} s", "", "", "", "", f"p90 {lat['p90']:.2f} s, max {lat['max']:.2f} s, {lat['batches']} batches"))
    if not a.keep:
        shutil.rmtree(d, ignore_errors=True)


def stream_on(a, bde, work, table, raw, d, topic, want, want_carts, total):
    """The stream comparison over the visits under d, produced to `topic` first. Every engine's
    memory is its process tree's peak over its measured phase, consume → effects (marked by the
    engine: bench/src/phase.rs, kafka_common.phase), beside the whole process's peak."""
    prod, _, _ = run_step(f"produce {a.visits:,} visits to {topic}", [*bde, "produce", "--dir", d, "--topic", topic], log_path=work / "produce.log")
    check(prod["visits"] == a.visits, f"stream: produced {prod['visits']} of {a.visits} visits")
    rr, wall_r, mem_r, ph_r = run_step(f"raw consume {a.visits:,} (ceiling)", [*bde, "raw-consume", "--topic", topic], log_path=work / "raw-consume.log", phased=True)
    rb, wall_b, mem_b, ph_b = run_step(f"bde_kit stream {a.visits:,}", [*bde, "stream", "--dir", d, "--topic", topic, "--carts-out", work / "bde-carts.txt",
                                                                     "--max-records", a.per_file], log_path=work / "bde-stream.log", phased=True)
    rf, wall_f, mem_f, ph_f = run_step(f"the job's floor {a.visits:,}", [*bde, "floor", "--dir", d, "--topic", topic], log_path=work / "floor.log", phased=True)
    raw["stream"] = {"topic": topic, "produce": prod, "raw_consume": rr, "raw_consume_wall": wall_r, "raw_consume_peak": mem_r, "raw_consume_phase_peak": ph_r,
                     "bde": rb, "bde_wall": wall_b, "bde_peak": mem_b, "bde_phase_peak": ph_b,
                     "floor": rf, "floor_wall": wall_f, "floor_peak": mem_f, "floor_phase_peak": ph_f, "expected_totals": want}
    check(rr["records"] == a.visits, f"stream: the topic holds {rr['records']} of {a.visits} visits")
    check(rb["redis_totals"] == want, f"stream: bde Redis totals {rb['redis_totals']} vs the files' {want}")
    check(rf["redis_totals"] == want, f"stream: floor Redis totals {rf['redis_totals']} vs the files' {want}")
    check(rb["carts"] == want_carts and rf["carts_in_topic"] == want_carts, f"stream: carts bde {rb['carts']}, floor {rf['carts_in_topic']}, files {want_carts}")
    check(0 < rb["visit_stats_sum"] <= total and rf["visit_stats_sum"] == total, "stream: visit_stats sums (bde, floor) do not fit the visits' durations")
    bde_lines = sorted(Path(work / "bde-carts.txt").read_text().splitlines())
    asked = {x.strip().replace("-", "_") for x in a.stream_peers.split(",") if x.strip()}
    unknown = asked - {p[0] for p in STREAM_PEERS}
    check(not unknown, f"stream: unknown --stream-peers {sorted(unknown)}")
    wanted = [p for p in STREAM_PEERS if p[0] in asked]
    got = {}
    for key, name, script, extra in wanted:
        try:
            r, wall, mem, in_phase, carts = stream_peer(a, key, name, script, extra, d, work, topic)
        except RuntimeError as e:
            FAILURES.append(f"stream: {name} crashed")
            log(f"{name} FAILED: {e}")
            continue
        got[key] = (r, wall, mem, in_phase)
        raw["stream"].update({key: r, f"{key}_wall": wall, f"{key}_peak": mem, f"{key}_phase_peak": in_phase})
        check(r["redis_totals"] == want, f"stream: {name} Redis totals {r['redis_totals']} vs the files' {want}")
        check(r["carts"] == want_carts, f"stream: carts {name} {r['carts']}, files {want_carts}")
        check(sorted(carts.read_text().splitlines()) == bde_lines, f"stream: the cart lines differ between bde and {name}")
        check(r["visit_stats_sum"] <= total, f"stream: {name}'s visit_stats sum exceeds the visits' durations")
    n = a.visits
    eb, raw_rate, floor_rate = rb["rows_per_sec"], rr["rows_per_sec"], rf["rows_per_sec"]
    # Columns of the stream layout: label, bde, pyspark, quix, floor, ceiling, ratio.
    cell = lambda k, f: f(*got[k]) if k in got else ""  # noqa: E731
    names = {k: name for k, name, _, _ in STREAM_PEERS}
    table.append((f"stream {n:,} visits (3 effects; {a.per_file:,} per micro-batch; one topic, produced before the engines start)", "", "", "", "", "", ""))
    vs = [f"a/b {eb / got['pyspark'][0]['rows_per_sec']:.1f}×" if "pyspark" in got else "",
          f"a/q {eb / got['quix'][0]['rows_per_sec']:.1f}×" if "quix" in got else "",
          f"a/f {eb / floor_rate:.3f}", f"a/c {eb / raw_rate:.3f}"]
    table.append(("  rows/s end to end", f"{eb:,.0f}/s", cell("pyspark", lambda r, w, m, p: f"{r['rows_per_sec']:,.0f}/s"),
                  cell("quix", lambda r, w, m, p: f"{r['rows_per_sec']:,.0f}/s"), f"{floor_rate:,.0f}/s", f"{raw_rate:,.0f}/s", ", ".join(x for x in vs if x)))
    table.append(("  seconds (all visits through the effects)", f"{rb['data_seconds']:.1f}", cell("pyspark", lambda r, w, m, p: f"{r['seconds']:.1f}"),
                  cell("quix", lambda r, w, m, p: f"{r['seconds']:.1f} (first record {r['first_record_seconds']:.1f})"), f"{rf['sum_ms'] / 1000:.2f} (sum of steps)",
                  f"{n / raw_rate:.2f}", ""))
    table.append(("  micro-batches", f"{rb['batches']} (+{rb['all_batches'] - rb['batches']} drain)", cell("pyspark", lambda r, w, m, p: str(r["batches"])),
                  cell("quix", lambda r, w, m, p: "record by record"), "1", "", ""))
    table.append(("  process wall, incl. start and the effects' read-back (s)", f"{wall_b:.1f}", cell("pyspark", lambda r, w, m, p: f"{w:.1f}"),
                  cell("quix", lambda r, w, m, p: f"{w:.1f}"), f"{wall_f:.1f}", f"{wall_r:.1f}", ""))
    # The memory row every engine is measured the same way for: the process tree's RSS from the
    # engine's start of consuming (PySpark: of its session) to its effects written; the input
    # topic is produced before any of them starts, the results are read back after.
    table.append(("  peak memory, consume → effects (process tree RSS, every 50 ms)", gib(ph_b), cell("pyspark", lambda r, w, m, p: gib(p)),
                  cell("quix", lambda r, w, m, p: gib(p)), f"{gib(ph_f)} (all visits held at once)", gib(ph_r),
                  "; ".join(f"{names[k]} {smaller(ph_b, p)}" for k, (_, _, _, p) in got.items() if k != "pyspark_course")))
    table.append(("  peak memory, whole process (incl. start and read-back)", gib(mem_b), cell("pyspark", lambda r, w, m, p: gib(m)),
                  cell("quix", lambda r, w, m, p: gib(m)), gib(mem_f), gib(mem_r), ""))
    table.append((f"  visit_stats rows / sum (of {total:,})", f"{rb['visit_stats_rows']} / {rb['visit_stats_sum']:,}",
                  cell("pyspark", lambda r, w, m, p: f"{r['visit_stats_rows']} / {r['visit_stats_sum']:,}"),
                  cell("quix", lambda r, w, m, p: f"{r['visit_stats_rows']} / {r['visit_stats_sum']:,}"), f"{rf['visit_stats_rows']} / {rf['visit_stats_sum']:,}", "", ""))
    if "pyspark_course" in got:
        r, w, m, p = got["pyspark_course"]
        table.append(("  PySpark with the course's per-row writers (rows/s, s, peak consume → effects)", f"{r['rows_per_sec']:,.0f}/s, {r['seconds']:.1f} s, {gib(p)}", "", "", "", "",
                      f"a/course {eb / r['rows_per_sec']:.1f}×"))
    steps = rb.get("steps_ms", [])
    busy = sum(ms for _, ms in steps) or 1
    table.append(("  bde_kit time per step (s, % of the batches' time)", "", "", "", "", "",
                  "; ".join(f"{name} {ms / 1000:.2f} ({100 * ms / busy:.0f} %)" for name, ms in steps)))
    table.append(("  floor time per step (s, % of the sum)", "", "", "", "", "",
                  "; ".join(f"{name} {ms / 1000:.2f} ({100 * ms / rf['sum_ms']:.0f} %)" for name, ms in rf["steps_ms"])))
    if "start_ms" in rb:
        table.append(("  bde_kit from start() to the first batch, the batches' steps, the rest (s)", "", "", "", "", "",
                      f"start {rb['start_ms'] / 1000:.2f}; batches {busy / 1000:.2f}; "
                      f"rest {max(0.0, rb['data_seconds'] - busy / 1000 - rb['start_ms'] / 1000):.2f} of {rb['data_seconds']:.2f}"))
    ok = not [f for f in FAILURES if f.startswith("stream:") and not f.endswith("crashed")]  # a crashed peer has no results to differ
    table.append(("  results (Redis totals, cart lines, carts)", "same" if ok else "DIFFER", *("same" if k in got and ok else "" for k in ("pyspark", "quix")),
                  "same" if ok else "", "", ""))


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
    if "first_lazy" in m:
        table.append(("  first cell using the lazy API, right after `:dep` (s)", f"{m['first_lazy']:.1f}", "", "", ""))
    if "setup_first_lazy" in m:
        table.append(("  first lazy cell after the notebooks' setup cell (s)", f"{m['setup_first_lazy']:.1f}", "", "", ""))
    if "lazy" in m:
        table.append(("  warm lazy query over 1 M rows (s)", f"{m['lazy']:.2f}", "", "", ""))
    table.append(("  kernel peak memory", gib(r["peak_rss"]), "", "", ""))


def memory(a, work, table, raw):
    """benches/kernel_memory.py: fresh Rust and Python (PySpark) kernels, memory split by process."""
    py = REPO / ".venv" / "bin" / "python"
    r, _, _ = run_step("kernel memory", [py, "-W", "ignore", BENCHES / "kernel_memory.py", "--runs", a.memory_runs,
                                         "--bench-python", a.python], log_path=work / "kernel-memory.log")
    raw["kernel_memory"] = r
    m, n = r["median"], len(r["rust"])
    rust, spark = m.get("rust", {}), m.get("python", {})
    g = lambda d, k: gib(d[k]) if k in d else ""  # noqa: E731
    la = ", ".join(f"{x:.1f}" for x in r["loadavg_start"])
    table.append((f"notebook kernel memory (median of {n} fresh kernels each; resident, steady = 3 s after the cell; load {la})", "", "", ""))
    for phase, what_r, what_p in (("setup", "setup cell (:dep, use, let settings)", "SparkSession with the course's settings"),
                                  ("polars", "first Polars cell (a lazy query kept in a variable)", "first DataFrame cell (1 M rows grouped)")):
        table.append((f"  after the {what_r} / the {what_p}, steady", g(rust, f"{phase}_steady"), g(spark, f"{phase}_steady"), ""))
        table.append(("    the kernel: evcxr_jupyter with rust-analyzer / ipykernel", g(rust, f"{phase}_steady:evcxr_jupyter (with rust-analyzer)"),
                      g(spark, f"{phase}_steady:ipykernel (python)"), ""))
        table.append(("    what runs the cells: evcxr's cell runner / the JVM driver", g(rust, f"{phase}_steady:cell runner"), g(spark, f"{phase}_steady:JVM driver (java)"), ""))
        table.append((f"  peak during it (each process's own peak: kernel / runner / build)", g(rust, f"{phase}_peak"), g(spark, f"{phase}_peak"),
                      " / ".join(g(rust, f"{phase}_peak_max:{k}") for k in ("evcxr_jupyter (with rust-analyzer)", "cell runner", "build (cargo, rustc, linker)"))))
        table.append(("  cell wall time (s) / evcxr's :timing", f"{rust[phase + '_wall']:.1f}" if rust else "", f"{spark[phase + '_wall']:.1f}" if spark else "",
                      ", ".join(f"{x[phase]['evcxr_took']:.1f}" for x in r["rust"] if x[phase].get("evcxr_took")) + (" s (evcxr)" if rust else "")))
    if rust:
        table.append(("  three kernels of the chapter-4 demo (3 × steady after the Polars cell)", gib(3 * rust["polars_steady"]),
                      gib(3 * spark["polars_steady"]) if spark else "", ""))


# How each step's rows are laid out: batch rows are in COLUMNS order (see `row`); the stream and
# latency steps append tuples in their own layouts. print_table maps every row
# onto COLUMNS; cells past a layout's end become extra columns (printed without a header).
# (Layouts name their cells by CELL's keys.)
LAYOUTS = {"batch": tuple(CELL), "stream": ("label", "bde", "pyspark", "quix", "floor", "ceiling", "ratio"),
           "latency": ("label", "bde", "pyspark", "ceiling", "ratio"), "memory": ("label", "bde", "pyspark", "ratio")}


def print_table(table, sections=()):
    """Prints the rows (tuples of any length) under COLUMNS. `sections` lists (start, end, layout)
    spans of `table` whose rows use another layout than COLUMNS'. Columns empty in every row are
    left out; a row with only a label (a section's title) does not widen the first column."""
    layout_of = {}
    for start, end, layout in sections:
        for i in range(start, end):
            layout_of[i] = layout
    extra = max([0] + [len(r) - len(layout_of.get(i, CELL)) for i, r in enumerate(table)])
    head = list(COLUMNS) + [""] * extra
    rows = []
    for i, r in enumerate(table):
        layout = layout_of.get(i, tuple(CELL))
        out = [""] * len(head)
        for j, c in enumerate(r):
            k = CELL[layout[j]] if j < len(layout) else len(COLUMNS) + j - len(layout)
            out[k] = str(c)
        rows.append(out)
    keep = [k for k in range(len(head)) if k == 0 or any(r[k] for r in rows)]
    cells = lambda k: [r[k] for r in rows if k or any(r[1:])]  # noqa: E731
    widths = {k: max(len(x) for x in cells(k) + [head[k]]) for k in keep}
    fmt = lambda r: "  ".join(r[k].ljust(widths[k]) for k in keep).rstrip()  # noqa: E731
    out = [fmt(head), "  ".join("-" * widths[k] for k in keep)] + [fmt(r) for r in rows]
    print("\n".join(out), flush=True)
    return "\n".join(out)


def machine():
    """cpus, memory, CPU model (/proc/cpuinfo) and kernel of this machine."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total
    return {"cpus": os.cpu_count(), "memory": mem, "memory_gib": round(mem / 2**30, 1), "cpu_model": model or platform.processor(),
            "kernel": f"{platform.system()} {platform.release()}"}


def engines_line(raw):
    """"bde_kit vs PySpark 3.5.1 local[2], Python Polars 2.1.0, …" from the engines that ran."""
    seen = {}
    for k, v in raw.items():
        if k.startswith("batch_"):
            for key in v.get("peers", []):
                if isinstance(v.get(key), dict):
                    seen.setdefault(key, v[key].get("engine", key))
    names = [e.split(" (")[0] for k, e in seen.items() if not (k == "polars_lazy" and "polars_sql" in seen)]
    if "stream" in raw:
        st = raw["stream"]
        if "pyspark" in st and not [x for x in names if x.startswith("PySpark")]:
            names.insert(0, "PySpark 3.5.1 local[2]")
        if "quix" in st:
            names.append(st["quix"].get("engine", "Quix Streams"))
        names.append("the job's floor and the raw rdkafka consume rate (ceiling)")
    return "bde_kit vs " + (", ".join(names) if names else "nothing")


def chart(bde, work, raw):
    """`bde-bench chart` of the ratios, when the results have a batch section."""
    if not any(k.startswith("batch_") for k in raw):
        return None
    out = work / "ratios.svg"
    r, _, _ = run_step("ratio chart", [*bde, "chart", "--results", work / "results.json", "--out", out], log_path=work / "chart.log")
    log(f"chart in {out} ({r.get('bars')} bars)")
    return out


def publish(raw, text, svg):
    """--publish: the table as benches/results/latest.md and the chart as benches/results/ratios.svg."""
    dest = BENCHES / "results"
    dest.mkdir(parents=True, exist_ok=True)
    m = raw["machine"]
    md = [f"Run {raw['date']} on {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, {m['kernel']}.", "",
          f"Command: `{' '.join(raw['command'])}`", "", f"{engines_line(raw)}.", "", "```text", text, "```", ""]
    if svg:
        shutil.copyfile(svg, dest / "ratios.svg")
        md += ["![bde_kit against each peer](ratios.svg)", ""]
    if raw["failures"]:
        md += ["Failures: " + "; ".join(raw["failures"]), ""]
    (dest / "latest.md").write_text("\n".join(md))
    log(f"published {dest / 'latest.md'}" + (f" and {dest / 'ratios.svg'}" if svg else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bde", default=None, help="the bde-bench binary (default: the release build)")
    ap.add_argument("--python", default=sys.executable, help="python with pyspark, polars and duckdb (default: this one)")
    ap.add_argument("--batch-rows", default="1000000,20000000", help="comma-separated scales")
    ap.add_argument("--visits", type=int, default=1_000_000)
    ap.add_argument("--per-file", type=int, default=50_000, help="visits per file = per micro-batch")
    ap.add_argument("--repeat", type=int, default=2, help="aggregation runs per engine and scale")
    ap.add_argument("--latency-visits", type=int, default=1_000, help="visits of the stream latency measurement")
    ap.add_argument("--latency-spread-ms", type=int, default=20_000, help="over how long they are produced")
    ap.add_argument("--latency-runs", type=int, default=3)
    ap.add_argument("--warm-repeats", type=int, default=3)
    ap.add_argument("--only", default="batch,stream,latency,memory")
    ap.add_argument("--memory-runs", type=int, default=2, help="fresh kernels of each kind for the memory step")
    ap.add_argument("--peers", default="pyspark,polars,duckdb",
                    help="batch peers: pyspark, polars (= polars-sql + polars-lazy), polars-sql, polars-lazy, duckdb")
    ap.add_argument("--stream-peers", default="pyspark,quix",
                    help="stream peers: pyspark (bulk writers), quix, pyspark-course (the course's per-row writers, slow)")
    ap.add_argument("--stream-vs", default=None, help="another bde-bench binary: its stream step and this one's, run in turn")
    ap.add_argument("--stream-vs-label", default=None, help="what to call --stream-vs in the table (e.g. a commit)")
    ap.add_argument("--stream-pairs", type=int, default=3, help="A B pairs of --stream-vs")
    ap.add_argument("--no-stream-latency", action="store_true", help="skip the stream's producer-to-Redis latency step")
    ap.add_argument("--work", default=str(REPO / "build" / "bench"))
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    ap.add_argument("--publish", action="store_true", help="also write benches/results/latest.md and ratios.svg (for the README)")
    a = ap.parse_args()
    bde = [a.bde or str(Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/bde_kit/target")) / "release" / "bde-bench")]
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    only = set(a.only.split(","))
    if "batch" in only:
        selected_peers(a)  # an unknown --peers name stops here, before any step runs
    table = []
    raw = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
           "command": [Path(sys.argv[0]).name, *sys.argv[1:]], "bde": bde}
    t0 = time.time()
    steps = [("batch", lambda: batch(a, bde, work, [int(x) for x in a.batch_rows.split(",") if x], table, raw)),
             ("stream", lambda: stream(a, bde, work, table, raw)),
             ("latency", lambda: latency(a, work, table, raw)),
             ("memory", lambda: memory(a, work, table, raw))]
    sections = []
    for name, fn in steps:
        if name not in only:
            continue
        start = len(table)
        try:
            fn()
        except Exception as e:  # a crashed step fails the run, the others still run
            FAILURES.append(f"{name}: {e}")
            log(f"{name} FAILED: {e}")
            table.append((f"{name}: FAILED (see {work}/*.log)",))
        sections.append((start, len(table), LAYOUTS[name]))
    print()
    m = raw["machine"]
    print(f"{engines_line(raw)} — {raw['date']}, {m['cpus']} cores ({m['cpu_model']}), {m['memory_gib']:g} GiB, "
          f"{time.time() - t0:.0f} s. Ratios: peer time / bde_kit time (> 1: bde_kit faster).")
    text = print_table(table, sections)
    raw["failures"], raw["table"] = FAILURES, text
    results = work / "results.json"
    results.write_text(json.dumps(raw, indent=2, default=str))
    log(f"figures in {results}")
    svg = None
    try:
        svg = chart(bde, work, raw)
    except Exception as e:
        FAILURES.append(f"chart: {e}")
        log(f"chart FAILED: {e}")
    if a.publish:
        raw["failures"] = FAILURES
        publish(raw, text, svg)
    if FAILURES:
        log("FAILED: " + "; ".join(FAILURES))
        sys.exit(1)


if __name__ == "__main__":
    main()
