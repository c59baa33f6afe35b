"""Memory of a notebook kernel, split by process, per fresh kernel (run with the course venv's
python, which has jupyter_client):

Rust kernel (this checkout's kernel/evcxr-kernel.sh, a fresh kernel per run):
  idle        after the kernel answered
  setup       the notebooks' first cell (`:dep bde_kit`, `use bde_kit::prelude::*;`,
              `let settings = Settings::from_env();`): peak while it runs, steady after it
  polars      a first Polars cell kept in a variable (`let counts = df!(…).lazy()…collect()?;`):
              peak while it runs, steady after it
  processes   evcxr_jupyter (the kernel; rust-analyzer runs inside it), the cell runner (the
              child evcxr_jupyter with EVCXR_IS_RUNTIME set, which loads and runs the cells'
              code), and the build (cargo, rustc, cc, ld while a cell compiles)
  timing      evcxr's `:timing` is on, so each cell's own total ("Took N ms") is recorded beside
              the wall time the client sees

Python kernel (ipykernel of .venv-bench, which has PySpark 3.5.1), the course's PySpark notebook
steps: the session with the course's settings (SPEC §1.3) and a first DataFrame cell
(1 M rows grouped, as notebook 2's aggregation): the ipykernel process, the JVM driver (java)
and the Python workers.

"Steady" is the tree's resident memory 3 s after a cell finished. Peaks are sampled every 0.1 s
(a peak shorter than that can be missed). Prints one JSON line; --runs fresh kernels of each kind.
A Rust kernel whose setup cell had to compile the kit (its build folder was last used by another
checkout: rustc above 1 GiB) is kept apart under rust_kit_compiled and run once more.
Usage: .venv/bin/python benches/kernel_memory.py [--runs N] [--only rust,python]
       [--bench-python .venv-bench/bin/python]"""

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "kernel"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from jupyter_client.manager import KernelManager  # noqa: E402
from kernel_client import NOTEBOOKS, REPO, Kernel, _children  # noqa: E402
from notebook_latency import FIRST_LAZY, SETUP, kernelspec  # noqa: E402


class NamedKernel(Kernel):
    """kernel_client's Kernel for a kernelspec of another name."""

    def __init__(self, kernel_name, cwd=NOTEBOOKS):
        self.km = KernelManager(kernel_name=kernel_name)
        self.km.start_kernel(cwd=str(cwd), env=dict(os.environ))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

PAGE = os.sysconf("SC_PAGE_SIZE")
BUILD = {"cargo", "rustc", "cc", "gcc", "ld", "ld.bfd", "ld.gold", "ld.lld", "collect2", "x86_64-linux-gnu-gcc-12", "rust-lld"}
PY_SETUP = """import os, sys, time
sys.path.insert(0, {benches!r})
from spark_common import course_session
spark, session_seconds = course_session("StreamingWebsiteAnalyticsJob")
session_seconds"""
PY_FRAME = """from pyspark.sql import functions as F
df = spark.range(1_000_000).select((F.col("id") % 100_000).alias("ITEM"), (F.col("id") % 1000 / 100).alias("UNIT_VALUE"))
summary = df.groupBy("ITEM").agg(F.sum("UNIT_VALUE").alias("TOTAL")).collect()
len(summary)"""


def rss(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def name_of(pid):
    try:
        return Path(f"/proc/{pid}/exe").resolve().name
    except OSError:
        return ""


def is_runtime(pid):
    try:
        return b"EVCXR_IS_RUNTIME=" in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def tree(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def split_rust(root):
    """Resident bytes per part of a Rust kernel's process tree."""
    parts = {"evcxr_jupyter (with rust-analyzer)": 0, "cell runner": 0, "build (cargo, rustc, linker)": 0, "other": 0}
    for p in tree(root):
        n = name_of(p)
        if p == root:
            parts["evcxr_jupyter (with rust-analyzer)"] += rss(p)
        elif n == "evcxr_jupyter" and is_runtime(p):
            parts["cell runner"] += rss(p)
        elif n in BUILD or n.startswith("rustc") or n.startswith("cargo"):
            parts["build (cargo, rustc, linker)"] += rss(p)
        else:
            parts["other"] += rss(p)
    return parts


def split_python(root):
    parts = {"ipykernel (python)": 0, "JVM driver (java)": 0, "python workers": 0, "other": 0}
    for p in tree(root):
        n = name_of(p)
        if p == root:
            parts["ipykernel (python)"] += rss(p)
        elif n == "java":
            parts["JVM driver (java)"] += rss(p)
        elif n.startswith("python"):
            parts["python workers"] += rss(p)
        else:
            parts["other"] += rss(p)
    return parts


class Sampler:
    """Samples a split every 0.1 s; .peak is the largest total with its split, .part_peak the
    largest value each part reached (not necessarily at the same moment)."""

    def __init__(self, split, root):
        self.split, self.root = split, root
        self.peak_total, self.peak, self.part_peak = 0, {}, {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            s = self.split(self.root)
            t = sum(s.values())
            if t > self.peak_total:
                self.peak_total, self.peak = t, s
            for k, v in s.items():
                self.part_peak[k] = max(self.part_peak.get(k, 0), v)
            time.sleep(0.1)

    def stop(self):
        self._stop.set()
        self._t.join()
        return {"total": self.peak_total, "at_peak": self.peak, "each_part_max": self.part_peak}


def steady(split, root, wait=3.0):
    time.sleep(wait)
    s = split(root)
    return {"total": sum(s.values()), "parts": s}


def cell(k, code, split, label, timeout=1800):
    smp = Sampler(split, k.pid)
    t0 = time.time()
    ok, text, _ = k.run(code, timeout=timeout)
    wall = time.time() - t0
    peak = smp.stop()
    if not ok:
        raise SystemExit(f"{label} cell failed:\n{text[-2000:]}")
    took = re.search(r"Took (\d+)ms", text)
    return {"wall": wall, "evcxr_took": int(took[1]) / 1000 if took else None, "peak": peak,
            "steady": steady(split, k.pid)}


def rust_run(tmp, env=None):
    kernelspec(tmp, None)
    t0 = time.time()
    k = Kernel(env=env)
    try:
        out = {"kernel_start": time.time() - t0, "idle": steady(split_rust, k.pid, wait=1.0)}
        ok, text, _ = k.run(":timing", timeout=120)
        if not ok or "Timing: true" not in text:
            raise SystemExit(f":timing did not turn on: {text[-500:]}")
        out["setup"] = cell(k, SETUP, split_rust, "setup")
        out["polars"] = cell(k, FIRST_LAZY, split_rust, "polars")
        # Kernel build folders are shared by every checkout on the machine: a folder last used by
        # another checkout's kit compiles this one's again (rustc then peaks above 1 GiB).
        out["kit_compiled"] = out["setup"]["peak"]["each_part_max"].get("build (cargo, rustc, linker)", 0) > 2**30
        return out
    finally:
        k.shutdown()


def python_kernelspec(tmp, python):
    d = Path(tmp) / "kernels" / "pyspark-bench"
    d.mkdir(parents=True, exist_ok=True)
    (d / "kernel.json").write_text(json.dumps({"argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                               "display_name": "PySpark (bench)", "language": "python"}))


def python_run(tmp, python):
    python_kernelspec(tmp, python)
    t0 = time.time()
    k = NamedKernel("pyspark-bench")
    try:
        out = {"kernel_start": time.time() - t0, "idle": steady(split_python, k.pid, wait=1.0)}
        out["setup"] = cell(k, PY_SETUP.format(benches=str(REPO / "benches")), split_python, "session")
        out["polars"] = cell(k, PY_FRAME, split_python, "dataframe")
        return out
    finally:
        k.shutdown()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--only", default="rust,python")
    ap.add_argument("--bench-python", default=str(REPO / ".venv-bench" / "bin" / "python"))
    ap.add_argument("--rust-env", action="append", default=[], metavar="KEY=VALUE",
                    help="an environment variable for the Rust kernels (to try a setting; repeatable)")
    a = ap.parse_args()
    rust_env = dict(kv.split("=", 1) for kv in a.rust_env)
    tmp = tempfile.mkdtemp(prefix="bde-kmem-")
    os.environ["JUPYTER_PATH"] = tmp + os.pathsep + os.environ.get("JUPYTER_PATH", "")
    res = {"rust": [], "python": [], "rust_env": rust_env, "loadavg_start": os.getloadavg()}
    res["rust_kit_compiled"] = []
    for _ in range(max(1, a.runs)):  # the kinds alternate, a fresh kernel each
        if "rust" in a.only:
            r = rust_run(tmp, rust_env)
            if r["kit_compiled"]:  # not a steady kernel start: recorded apart, run once more
                res["rust_kit_compiled"].append(r)
                r = rust_run(tmp, rust_env)
            res["rust"].append(r)
        if "python" in a.only:
            res["python"].append(python_run(tmp, a.bench_python))
    res["loadavg_end"] = os.getloadavg()
    med = {}
    for kind in ("rust", "python"):
        runs = res[kind]
        if not runs:
            continue
        m = {}
        for phase in ("setup", "polars"):
            m[f"{phase}_wall"] = statistics.median(r[phase]["wall"] for r in runs)
            m[f"{phase}_peak"] = statistics.median(r[phase]["peak"]["total"] for r in runs)
            m[f"{phase}_steady"] = statistics.median(r[phase]["steady"]["total"] for r in runs)
            for part in runs[0][phase]["steady"]["parts"]:
                m[f"{phase}_steady:{part}"] = statistics.median(r[phase]["steady"]["parts"][part] for r in runs)
                m[f"{phase}_peak_max:{part}"] = statistics.median(r[phase]["peak"]["each_part_max"].get(part, 0) for r in runs)
        med[kind] = m
    res["median"] = med
    print(json.dumps(res))


if __name__ == "__main__":
    main()
