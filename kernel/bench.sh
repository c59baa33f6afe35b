#!/usr/bin/env bash
# The benchmark command: bde_kit vs PySpark 3.5.1, Python Polars and DuckDB vs the hardware
# ceiling, one table (and build/bench/ratios.svg).
#   bash kernel/bench.sh [--smoke] [--batch-rows 1000000,20000000] [--visits 1000000]
#                        [--latency-runs 3] [--only batch,stream,latency]
#                        [--peers pyspark,polars,duckdb] [--stream-peers pyspark,quix]
#                        [--stream-vs-rev REV [--stream-pairs N]] [--keep] [--publish] …
# Idempotent: installs Java 17 if missing, creates .venv-bench and installs benches/requirements.txt
# when its hash changed, starts the services that do not answer, builds `bde-bench` (the workspace
# crate bench/; release, the dev build with --smoke), then runs benches/compare.py (other flags are
# passed to it).
# --smoke: tiny scales (2,000 stock rows, 500 visits, 1 latency run) to prove the harness works.
# --stream-vs-rev REV: also builds `bde-bench` of the commit REV (its files exported with git
# archive into build/bench-vs/REV, its own target dir: a copy of this one, made once) and runs the
# stream step of this build and of REV in turn, A B A B (--stream-pairs, default 3).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO"

smoke=0
args=()
only="batch,stream,latency,memory"
only_given=0
vs_rev=""
prev=""
for a in "$@"; do
  if [ "$prev" = "--stream-vs-rev" ]; then
    vs_rev="$a"
  elif [ "$a" = "--smoke" ]; then
    smoke=1
  elif [ "$a" != "--stream-vs-rev" ]; then
    args+=("$a")
  fi
  if [ "$prev" = "--only" ]; then only="$a"; only_given=1; fi
  case "$a" in --only=*) only="${a#--only=}"; only_given=1 ;; esac
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

# The latency and memory steps need the course venv and its kernelspec (kernel/setup.sh makes both); the
# stream (and latency) steps need the services.
# The smoke run leaves the memory step out unless --only names it (fresh kernels cost minutes).
if [ "$smoke" = 1 ] && [ "$only_given" = 0 ]; then
  only="batch,stream,latency"
  args+=(--only "$only")
fi
if [[ ",$only," == *,latency,* || ",$only," == *,memory,* ]] && { [ ! -x "$VENV/bin/python" ] || [ ! -d "$VENV/share/jupyter/kernels/rust" ]; }; then
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
  set -- --batch-rows 2000 --visits 500 --per-file 250 --repeat 1 --latency-runs 1 --warm-repeats 1 --latency-visits 50 --latency-spread-ms 3000 --memory-runs 1 \
    --work "$REPO/build/bench-smoke" ${args[@]+"${args[@]}"}
else
  say "building bde-bench (release profile; the first time takes several minutes)"
  cargo build --locked --release -p bde_bench
  bde="$CARGO_TARGET_DIR/release/bde-bench"
  set -- ${args[@]+"${args[@]}"}
fi
if [ -n "$vs_rev" ]; then
  rev="$(git -C "$REPO" rev-parse --short "$vs_rev^{commit}")"
  vsdir="$REPO/build/bench-vs/$rev"
  vstarget="$CARGO_TARGET_DIR-vs-$rev"
  # cargo hashes a workspace's own crates by their path relative to the workspace and judges
  # them by file times: in a copy of this target dir, $rev's sources must be newer than this
  # checkout's build, or this build would pass for $rev's. So they are touched when exported and
  # when the copy is made.
  if [ ! -f "$vsdir/Cargo.toml" ]; then
    say "exporting $vs_rev ($rev) into $vsdir"
    mkdir -p "$vsdir"
    git -C "$REPO" archive "$rev" | tar -x -C "$vsdir"
    find "$vsdir" -type f -exec touch {} +
  fi
  if [ ! -d "$vstarget" ]; then
    say "copying $CARGO_TARGET_DIR to $vstarget (once: $rev builds only its own crates)"
    cp -a "$CARGO_TARGET_DIR" "$vstarget"
    find "$vsdir" -type f -exec touch {} +
  fi
  profile=release
  [ "$smoke" = 1 ] && profile=debug
  say "building bde-bench of $rev ($profile)"
  if [ "$smoke" = 1 ]; then
    (cd "$vsdir" && CARGO_TARGET_DIR="$vstarget" cargo build --locked -p bde_bench)
  else
    (cd "$vsdir" && CARGO_TARGET_DIR="$vstarget" cargo build --locked --release -p bde_bench)
  fi
  set -- "$@" --stream-vs "$vstarget/$profile/bde-bench" --stream-vs-label "$rev"
fi
exec "$BVENV/bin/python" -u "$REPO/benches/compare.py" --bde "$bde" "$@"
