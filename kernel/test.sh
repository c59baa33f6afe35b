#!/usr/bin/env bash
# The README's test command: sets up what is missing, then runs every test.
#  1. kernel/setup.sh (packages, venv, evcxr, services, the spark user, the warm kernel folder)
#  2. cargo fmt --check and cargo clippy -D warnings over the workspace (every target)
#  3. cargo test: unit tests and integration tests against the real Kafka, Redis and MariaDB
#  4. every notebook replayed headless through the evcxr kernel, outputs checked; notebooks 2-7
#     again under TZ=Pacific/Kiritimati and TZ=Etc/GMT+12 (README, "Time zones")
#  5. the browser test: JupyterLab in Debian's chromium (Playwright), notebooks 2 and 5 run
#     through the UI, the live dashboard (tests/browser/test_lab.py; screenshots in build/browser/)
#  6. a tiny-scale smoke run of the benchmarks (proves the harness works; no timing asserted)
# The cargo target dir and the kernels' build folders live under ~/.cache/bde_kit, outside the
# clone, so a fresh clone on a machine that ran this once takes minutes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
t0=$(date +%s)
step() { say "== $* ($(( $(date +%s) - t0 )) s)"; }

step "setup"
bash "$REPO/kernel/setup.sh"

export CARGO_TARGET_DIR="$BDE_CACHE/target"
# Streaming checkpoints of this run live in this clone's build/ (the kit's default is one folder
# per user, ~/.local/state/bde_kit/checkpoints): the replays then start from what this clone's
# earlier runs left, never from a checkpoint another clone's runs (or a user's) moved.
export BDE_CHECKPOINT_DIR="${BDE_CHECKPOINT_DIR:-$REPO/build/checkpoints}"
cd "$REPO"
# The shared target dir serves every checkout, and cargo tells this crate's builds apart by
# file times only: touch the crate roots so another checkout's newer build is never reused.
touch "$REPO/src/lib.rs" "$REPO/src/bin/bde/main.rs" "$REPO/bench/src/main.rs" "$REPO"/tests/*.rs
step "format and lints"
cargo fmt --all --check || die "cargo fmt --check: run 'cargo fmt --all' and commit"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cargo test"
# --workspace: the kit's tests and the unit tests of the benchmark crate (bench/).
cargo test --locked --no-fail-fast --workspace

step "notebook runner self-test"
"$VENV/bin/python" -W ignore "$REPO/kernel/run_notebooks.py" --selftest

step "notebooks"
"$VENV/bin/python" -W ignore "$REPO/kernel/run_notebooks.py" --fast

step "notebooks 2-7 in two other time zones (README, Time zones)"
# At any hour one of the two zones has another date than UTC; kernels, their children and the
# runner's checks all inherit TZ. Each replay gets a fresh data folder of its own; the streaming
# jobs keep the run's one checkpoint folder, so every job (these replays' and the browser test's)
# resumes where the last one stopped and reads only the visits of its own generator run (a job on
# a folder of its own would resume, later, from a checkpoint behind the other replays' visits).
for zone in Pacific/Kiritimati Etc/GMT+12; do
  dir="$REPO/build/tz/${zone//\//_}"
  rm -rf "$dir"
  say "-- TZ=$zone"
  TZ="$zone" BDE_DATA_DIR="$dir/raw_data" BDE_NOTEBOOK_OUT="$dir/notebooks" \
    "$VENV/bin/python" -W ignore "$REPO/kernel/run_notebooks.py" --fast code_03_ code_04_ code_06_
done

step "browser test"
"$VENV/bin/python" -W ignore "$REPO/tests/browser/test_lab.py"

if [ -f "$REPO/kernel/bench_smoke.sh" ]; then
  step "benchmark smoke run"
  bash "$REPO/kernel/bench_smoke.sh"
fi
step "all tests passed"
