"""Notebook latency of the Rust kernel (run with the course venv's python, which has the
kernelspec `rust` and jupyter_client): per run, a fresh kernel (kernel/evcxr-kernel.sh gives it
a warm build folder) and its first `:dep bde_kit` cell, then in that warm kernel a trivial cell
and a `Table` cell over a 1,000,000-row DataFrame (the frame is built in an untimed cell).

Usage: .venv/bin/python benches/notebook_latency.py [--runs N] [--warm-repeats K]
Prints one JSON line with every timing and their medians."""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "kernel"))
from kernel_client import Kernel, PeakMemory  # noqa: E402

DEP = ':dep bde_kit = { path = ".." }\nuse bde_kit::prelude::*;'
TRIVIAL = "1 + 1"
FRAME = ('let big = df!("ID" => (0..1_000_000i64).collect::<Vec<_>>(), '
         '"UNIT_VALUE" => (0..1_000_000i64).map(|i| (i % 1000) as f64 / 100.0).collect::<Vec<_>>())?;\nbig.height()')
TABLE = "Table::new(&big)"


def timed(k, code, timeout, label, want_html=False):
    t = time.time()
    ok, text, mimes = k.run(code, timeout=timeout)
    dt = time.time() - t
    if not ok or (want_html and "text/html" not in mimes):
        raise SystemExit(f"{label} cell failed:\n{text[-2000:]}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warm-repeats", type=int, default=3)
    a = ap.parse_args()
    start, dep, trivial, table, peak = [], [], [], [], []
    for _ in range(max(1, a.runs)):
        t0 = time.time()
        k = Kernel()
        mem = PeakMemory(k.pid) if k.pid else None
        try:
            start.append(time.time() - t0)
            dep.append(timed(k, DEP, 3600, ":dep"))
            for _ in range(a.warm_repeats):
                trivial.append(timed(k, TRIVIAL, 600, "trivial"))
            timed(k, FRAME, 900, "1 M-row frame")
            for _ in range(a.warm_repeats):
                table.append(timed(k, TABLE, 900, "Table", want_html=True))
        finally:
            k.shutdown()
            if mem:
                peak.append(mem.stop())
    med = statistics.median
    print(json.dumps({
        "runs": len(dep), "kernel_start": start, "dep": dep, "trivial": trivial, "table": table,
        "median": {"kernel_start": med(start), "dep": med(dep), "trivial": med(trivial), "table": med(table)},
        "peak_rss": max(peak) if peak else 0,
    }))


if __name__ == "__main__":
    main()
