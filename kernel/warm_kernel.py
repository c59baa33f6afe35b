"""Warms the kernel's template build folder (see kernel/evcxr-kernel.sh) so that a new kernel's
`:dep bde_kit` cell finds Polars, rdkafka and the kit compiled.

Usage: .venv/bin/python kernel/warm_kernel.py [--force] [--measure]
  --force    warm even if the template is up to date for the current sources
  --measure  afterwards start a fresh kernel (a normal slot) and time its `:dep` cell and a
             Table cell, with the kernel's peak memory (what the README reports)
The template is skipped when its stamp matches a hash of the kit's sources and the kernel key.
"""

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kernel_client import Kernel, PeakMemory, REPO  # noqa: E402

# The notebooks' setup cell. It also keeps `settings`: the first cell of a session that keeps a
# variable pays about 20 s once (measured: `let x = 1 + 1;` right after the `:dep` cell took
# 21-28 s, after a setup cell that already keeps `settings` 8 s, on a loaded machine); with the
# variable in the setup cell that cost hides in the `:dep` cell's time.
DEP = ':dep bde_kit = { path = ".." }\nuse bde_kit::prelude::*;\nlet settings = Settings::from_env();'
TABLE = 'let df = df!("ITEM_NAME" => ["Folder", "Notebook"], "UNIT_VALUE" => [1.00, 2.50])?;\nTable::new(&df)'


def cache_dir():
    out = subprocess.run(["bash", "-c", f"source '{REPO}/kernel/common.sh'; kernel_cache_dir"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def sources_hash():
    h = hashlib.sha256(str(REPO).encode())
    files = sorted([*REPO.joinpath("src").rglob("*.rs"), REPO / "Cargo.toml", REPO / "Cargo.lock"])
    for f in files:
        h.update(str(f.relative_to(REPO)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def timed_session(env, label):
    t0 = time.time()
    k = Kernel(env=env)
    mem = PeakMemory(k.pid) if k.pid else None
    try:
        t1 = time.time()
        ok, text, _ = k.run(DEP, timeout=3600)
        t2 = time.time()
        if not ok:
            raise SystemExit(f"[bde] {label}: the :dep cell failed:\n{text}")
        ok, text, mimes = k.run(TABLE, timeout=900)
        t3 = time.time()
        if not ok or "text/html" not in mimes:
            raise SystemExit(f"[bde] {label}: the Table cell failed:\n{text}")
    finally:
        k.shutdown()
        peak = mem.stop() if mem else 0
    print(f"[bde] {label}: kernel start {t1 - t0:.1f} s, :dep cell {t2 - t1:.1f} s, Table cell {t3 - t2:.1f} s, "
          f":dep+Table {t3 - t1:.1f} s wall, peak memory {peak / 2**30:.2f} GiB", flush=True)
    return t3 - t1


def main():
    force = "--force" in sys.argv
    measure = "--measure" in sys.argv
    template = cache_dir() / "template"
    stamp = template / ".warm-stamp"
    want = sources_hash()
    if not force and stamp.exists() and stamp.read_text().strip() == want:
        print(f"[bde] kernel build folder is warm ({template})", flush=True)
    else:
        print(f"[bde] warming the kernel build folder {template} (the kit changed, or the first time on a "
              f"machine: then Polars and rdkafka compile inside the kernel, about 2-5 minutes on 2 cores)", flush=True)
        timed_session({"BDE_KERNEL_SLOT": "template"}, "warm-up")
        stamp.write_text(want + "\n")
    if measure:
        timed_session({}, "fresh kernel")


if __name__ == "__main__":
    main()
