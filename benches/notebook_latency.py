"""Notebook latency of the Rust kernel (run with the course venv's python, which has
jupyter_client). Per run a fresh kernel of this checkout (kernel/evcxr-kernel.sh, which gives it
a copy of the warm build folder) runs, each timed:
  dep          `:dep bde_kit = { path = ".." }` + `use bde_kit::prelude::*;` (the first cell)
  first_lazy   the first cell using Polars (a lazy filter + group_by + agg of a 3-row `df!`, kept
               in a variable like the notebooks' `let summary = ...`): evcxr's rust-analyzer first
               infers a Polars type here
  frame        a `df!` of 1,000,000 rows kept as `big` (the second Polars cell)
  trivial      `1 + 1`, --warm-repeats times
  table        `Table::new(&big)`, --warm-repeats times
  lazy         a lazy filter + group_by + agg over `big`, kept in a variable (warm)
and then a second fresh kernel runs the notebooks' own first cells:
  setup             the setup cell every notebook starts with (`:dep`, `use`, and
                    `let settings = Settings::from_env();`)
  setup_first_lazy  the first_lazy cell after it
(evcxr's rust-analyzer infers types only for cells with a top-level `let`, and the first such
cell of a kernel pays most of its cost: it reads the whole dependency graph. In the notebooks
that is the setup cell; in the first sequence it is first_lazy.)

Usage: .venv/bin/python benches/notebook_latency.py [--runs N] [--warm-repeats K] [--trace]
  --trace  also splits every cell's wall time into phases (slower; the figures then include the
           tracing overhead, so take the headline figures from a run without it):
             before_cargo  evcxr before it runs cargo: rust-analyzer's type inference of the
                           cell's variables, writing the cell crate (in the :dep cell also
                           `cargo metadata` and loading every dependency's sources)
             cargo         cargo's freshness checks of the ~400 dependencies until rustc starts
             rustc         rustc on the cell crate without the link (loading the kit's and
                           Polars' metadata, expansion, type check, codegen)
             link          the linker (cc and ld) writing the cell's .so
             after_cargo   loading the .so into the kernel's child process, running, displaying
           The kernel runs under `strace -f -e trace=execve` (process start and exit times);
           the logs and the cells' times stay in build/latency-trace/.
evcxr's own `:timing` prints only a cell's total in Jupyter, and `:time_passes` needs a nightly
toolchain and changes RUSTFLAGS (every dependency would rebuild); -Ztime-passes for the cell
crate alone through RUSTC_BOOTSTRAP=1 made evcxr's cell crates fail to compile (E0658 "the `!`
type is experimental"), hence process times only.
The kernel is this checkout's kernel/evcxr-kernel.sh (a kernelspec written to a temporary
JUPYTER_PATH), so a worktree measures its own evcxr settings, prelude and kit.
Prints one JSON line with every timing and their medians (and with --trace the phases per cell)."""

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "kernel"))
from kernel_client import Kernel, PeakMemory, REPO  # noqa: E402

DEP = ':dep bde_kit = { path = ".." }\nuse bde_kit::prelude::*;'
SETUP = DEP + '\nlet settings = Settings::from_env();'
TRIVIAL = "1 + 1"
FRAME = ('let big = df!("ID" => (0..1_000_000i64).collect::<Vec<_>>(), '
         '"UNIT_VALUE" => (0..1_000_000i64).map(|i| (i % 1000) as f64 / 100.0).collect::<Vec<_>>())?;\nbig.height()')
FIRST_LAZY = ('let counts = df!("ID" => [1i64, 20, 30], "UNIT_VALUE" => [1.0, 2.5, 2.5])?\n'
              '    .lazy().filter(col("ID").gt(lit(10))).group_by([col("UNIT_VALUE")]).agg([len()]).collect()?;\n'
              'counts.height()')
LAZY = ('let counts = big.clone().lazy().filter(col("ID").gt(lit(10))).group_by([col("UNIT_VALUE")]).agg([len()]).collect()?;\n'
        'counts.height()')
TABLE = "Table::new(&big)"



def kernelspec(tmp, trace_log):
    """A kernelspec named `rust` for this checkout's kernel script, optionally under strace."""
    argv = [str(REPO / "kernel" / "evcxr-kernel.sh"), "--control_file", "{connection_file}"]
    if trace_log:
        argv = ["strace", "-f", "-ttt", "-v", "-s", "64", "--seccomp-bpf", "-e", "trace=execve",
                "-o", str(trace_log)] + argv
    d = Path(tmp) / "kernels" / "rust"
    d.mkdir(parents=True, exist_ok=True)
    (d / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Rust (bde_kit, bench)",
                                               "language": "rust", "interrupt_mode": "message"}))


EXEC = re.compile(r'^(\d+)\s+(\d+\.\d+) execve\("([^"]*)", \[(.*?)\]')
EXIT = re.compile(r'^(\d+)\s+(\d+\.\d+) \+\+\+ (?:exited with|killed by)')


def parse_strace(path):
    """Processes that exec'd: pid -> {exe, args, start, end} (the last exec of a pid wins)."""
    procs = {}
    for line in Path(path).read_text(errors="replace").splitlines():
        m = EXEC.match(line)
        if m and line.rstrip().endswith("= 0"):
            pid, t, exe, args = int(m[1]), float(m[2]), m[3], m[4]
            procs[pid] = {"exe": os.path.basename(exe), "args": args, "start": t, "end": None}
            continue
        m = EXIT.match(line)
        if m and int(m[1]) in procs:
            procs[int(m[1])]["end"] = float(m[2])
    return list(procs.values())


def phases(procs, t0, t1):
    """Splits the wall time [t0, t1] of one cell into the phases described in the module doc."""
    inside = [p for p in procs if t0 <= p["start"] <= t1]
    cargos = sorted((p for p in inside if p["exe"] == "cargo" and re.search(r'"(build|check)"', p["args"])),
                    key=lambda p: p["start"])
    ctx = [p for p in inside if p["exe"].startswith("rustc") and '"ctx"' in p["args"] and p["end"]]
    links = [p for p in inside if p["exe"] in ("cc", "gcc", "x86_64-linux-gnu-gcc-12", "clang") and p["end"]]
    meta = [p for p in inside if p["exe"] == "cargo" and '"metadata"' in p["args"] and p["end"]]
    wall = t1 - t0
    if not cargos:
        return {"wall": wall, "cargo_runs": 0}
    first_cargo = cargos[0]["start"]
    last_end = max((p["end"] or t1) for p in cargos)
    link = sum(p["end"] - p["start"] for p in links)
    rustc_total = sum(p["end"] - p["start"] for p in ctx)
    cargo_wait = sum(max(0.0, min((r["start"] for r in ctx if r["start"] >= c["start"]), default=c["end"] or t1) - c["start"])
                     for c in cargos)
    res = {
        "wall": wall,
        "before_cargo": first_cargo - t0,
        "cargo_metadata": sum(p["end"] - p["start"] for p in meta),
        "cargo": cargo_wait,
        "rustc": rustc_total - link,
        "link": link,
        "after_cargo": t1 - last_end,
        "cargo_runs": len(cargos),
        "rustc_runs": len(ctx),
    }
    return res


def timed(k, code, timeout, label, log, want_html=False):
    t = time.time()
    ok, text, mimes = k.run(code, timeout=timeout)
    t1 = time.time()
    if not ok or (want_html and "text/html" not in mimes):
        raise SystemExit(f"{label} cell failed:\n{text[-2000:]}")
    log.append((label, t, t1))
    return t1 - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warm-repeats", type=int, default=3)
    ap.add_argument("--trace", action="store_true")
    a = ap.parse_args()
    if a.trace and not shutil.which("strace"):
        raise SystemExit("--trace needs strace (apt-get install strace)")
    tmp = tempfile.mkdtemp(prefix="bde-latency-")
    os.environ["JUPYTER_PATH"] = tmp + os.pathsep + os.environ.get("JUPYTER_PATH", "")
    r = {k: [] for k in ("kernel_start", "dep", "first_lazy", "frame", "trivial", "table", "lazy",
                         "setup", "setup_first_lazy")}
    peak, traces = [], []
    try:
        for run in range(max(1, a.runs)):
            trace_logs = [Path(tmp) / f"strace.{run}.{n}" for n in (1, 2)] if a.trace else [None, None]
            kernelspec(tmp, trace_logs[0])
            log = []
            t0 = time.time()
            k = Kernel()
            mem = PeakMemory(k.pid) if k.pid else None
            try:
                r["kernel_start"].append(time.time() - t0)
                log.append(("kernel_start", t0, time.time()))
                r["dep"].append(timed(k, DEP, 3600, "dep", log))
                r["first_lazy"].append(timed(k, FIRST_LAZY, 900, "first_lazy", log))
                r["frame"].append(timed(k, FRAME, 900, "frame", log))
                for i in range(a.warm_repeats):
                    r["trivial"].append(timed(k, TRIVIAL, 600, f"trivial{i + 1}", log))
                for i in range(a.warm_repeats):
                    r["table"].append(timed(k, TABLE, 900, f"table{i + 1}", log, want_html=True))
                r["lazy"].append(timed(k, LAZY, 900, "lazy", log))
            finally:
                k.shutdown()
                if mem:
                    peak.append(mem.stop())
            kernelspec(tmp, trace_logs[1])
            k = Kernel()
            try:
                r["setup"].append(timed(k, SETUP, 3600, "setup", log))
                r["setup_first_lazy"].append(timed(k, FIRST_LAZY, 900, "setup_first_lazy", log))
            finally:
                k.shutdown()
            if a.trace:
                time.sleep(1)
                keep = REPO / "build" / "latency-trace"
                keep.mkdir(parents=True, exist_ok=True)
                procs = []
                for n, f in enumerate(trace_logs, 1):
                    shutil.copy(f, keep / f"strace.{run}.{n}")
                    procs += parse_strace(f)
                (keep / f"cells.{run}.json").write_text(json.dumps(log))
                traces.append({label: {key: (round(v, 3) if isinstance(v, float) else v)
                                       for key, v in phases(procs, t0c, t1c).items()}
                               for label, t0c, t1c in log if label != "kernel_start"})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median
    out = {"runs": len(r["dep"]), **r, "median": {k: med(v) for k, v in r.items() if v},
           "peak_rss": max(peak) if peak else 0, "loadavg": os.getloadavg()}
    if traces:
        out["phases"] = traces
    print(json.dumps(out))


if __name__ == "__main__":
    main()
