#!/usr/bin/env bash
# The benchmark command: bde_kit vs PySpark 3.5.1, Python Polars and DuckDB vs the hardware
# ceiling, one table (and build/bench/ratios.svg).
#   bash kernel/bench.sh [--smoke] [--batch-rows 1000000,20000000] [--visits 1000000]
#                        [--latency-runs 3] [--only batch,stream,latency]
#                        [--peers pyspark,polars,duckdb] [--keep] [--publish] …
# Idempotent: installs Java 17 if missing, creates .venv-bench and installs benches/requirements.txt
# when its hash changed, starts the services that do not answer, builds `bde-bench` (the workspace
# crate bench/; release, the dev build with --smoke), then runs benches/compare.py (other flags are
# passed to it).
# --smoke: tiny scales (2,000 stock rows, 500 visits, 1 latency run) to prove the harness works.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO"

smoke=0
args=()
only="batch,stream,latency"
prev=""
for a in "$@"; do
  if [ "$a" = "--smoke" ]; then smoke=1; else args+=("$a"); fi
  if [ "$prev" = "--only" ]; then only="$a"; fi
  case "$a" in --only=*) only="${a#--only=}" ;; esac
  prev="$a"
done

if ! command -v java >/dev/null; then
  say "installing Java 17 for PySpark"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

BVENV="$REPO/.venv-bench"
if [ ! -x "$BVENV/bin/python" ]; then
  say "creating $BVENV"
  python3 -m venv "$BVENV"
fi
want="$(sha256sum "$REPO/benches/requirements.txt" | cut -c1-16)"
if [ "$(cat "$BVENV/.requirements-hash" 2>/dev/null)" != "$want" ]; then
  say "installing benches/requirements.txt into $BVENV (PySpark is about 300 MB; Polars, DuckDB)"
  "$BVENV/bin/pip" install -q --disable-pip-version-check -r "$REPO/benches/requirements.txt"
  echo "$want" > "$BVENV/.requirements-hash"
fi

# The latency step needs the course venv and its kernelspec (kernel/setup.sh makes both); the
# stream (and latency) steps need the services.
if [[ ",$only," == *,latency,* ]] && { [ ! -x "$VENV/bin/python" ] || [ ! -d "$VENV/share/jupyter/kernels/rust" ]; }; then
  bash "$REPO/kernel/setup.sh"
fi
if [[ ",$only," == *,stream,* || ",$only," == *,latency,* ]]; then
  bash "$REPO/kernel/services.sh" up
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BDE_CACHE/target}"
if [ "$smoke" = 1 ]; then
  say "building bde-bench (dev profile) for the smoke run"
  cargo build --locked -p bde_bench
  bde="$CARGO_TARGET_DIR/debug/bde-bench"
  set -- --batch-rows 2000 --visits 500 --per-file 100 --repeat 1 --latency-runs 1 --warm-repeats 1 --latency-visits 50 --latency-spread-ms 3000 \
    --work "$REPO/build/bench-smoke" ${args[@]+"${args[@]}"}
else
  say "building bde-bench (release profile; the first time takes several minutes)"
  cargo build --locked --release -p bde_bench
  bde="$CARGO_TARGET_DIR/release/bde-bench"
  set -- ${args[@]+"${args[@]}"}
fi
exec "$BVENV/bin/python" -u "$REPO/benches/compare.py" --bde "$bde" "$@"
