#!/usr/bin/env bash
# Jupyter starts the Rust kernel through this script (see the kernelspec written by setup.sh).
# It gives each running kernel its own kept evcxr build folder ("slot"), so compiled
# dependencies survive restarts while several kernels (the chapter-4 demo runs three) never
# share one folder. A slot is locked for the kernel's lifetime (flock on fd 9, inherited by
# evcxr_jupyter). A new or outdated slot starts as a copy of the template warmed by setup.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

base="$(kernel_cache_dir)"
template="$base/template"
mkdir -p "$base"
slot=""
if [ -n "${BDE_KERNEL_SLOT:-}" ]; then
  # Named slot (setup.sh warms "template" this way): wait for its lock instead of skipping.
  exec 9>"$base/$BDE_KERNEL_SLOT.lock"; flock 9
  slot="$base/$BDE_KERNEL_SLOT"
fi
for i in 0 1 2 3 4 5 6 7; do
  [ -z "$slot" ] || break
  exec 9>"$base/slot-$i.lock"
  if flock -n 9; then slot="$base/slot-$i"; break; fi
  exec 9>&-
done
[ -n "$slot" ] || die "all 8 kernel build folders under $base are in use: shut down a kernel"

if [ "$slot" != "$template" ] && [ -f "$template/.warm-stamp" ] && ! cmp -s "$template/.warm-stamp" "$slot/.warm-stamp" 2>/dev/null; then
  # The template is locked while setup warms it; wait for that to finish before copying.
  exec 8>"$base/template.lock"; flock 8
  rm -rf "$slot"
  cp -a --reflink=auto "$template" "$slot"
  exec 8>&-
fi
mkdir -p "$slot"
if [ ! -f "$slot/Cargo.lock" ] && [ -f "$REPO/Cargo.lock" ]; then
  # Resolve the kernel's dependencies to the versions the tests use.
  cp "$REPO/Cargo.lock" "$slot/Cargo.lock"
fi

unset CARGO_TARGET_DIR
# Cells link against the kit built as a Rust dylib (kernel/kit-dylib-rustc.sh): a trivial cell
# 1.5 -> 0.7 s, a Table cell 4.5 -> 3.3 s, a warm lazy query 3.6 -> 1.4 s (session 10's
# measurements), and the kit's statics (runtime, pools, query registry) exist once per kernel.
# BDE_KIT_DYLIB=0 links every cell statically instead (evcxr's default); the choice is part of
# the kernel cache key (common.sh), so the two never share a build folder.
if [ "$(kit_dylib)" = 1 ]; then
  export RUSTC_WRAPPER="$REPO/kernel/kit-dylib-rustc.sh"
fi
# evcxr's rust-analyzer allocates ~1.5 GB while it reads the kit's dependencies (the `:dep` cell
# and the first cell that keeps a Polars value); with mimalloc's transparent huge pages the
# kernel spent ~20% of that time zeroing 2 MB pages (perf). Measured without: `:dep` cell
# 9.6 -> 8.2 s, first Polars cell 7.7 -> 7.1 s (4 alternating fresh kernels each).
export MIMALLOC_ALLOW_THP=0
# evcxr links cells against the toolchain's libstd (and the kit's dylib) through a relative
# RUNPATH computed for the deps/ folder, but loads the copy one folder up; under $HOME (which
# shares a prefix with ~/.rustup) that path misses by one level and dlopen fails. Name the
# folders explicitly.
# The deps/ folder must exist before the kernel starts: glibc remembers a missing
# LD_LIBRARY_PATH folder for the life of the process (a new slot's first cells then failed with
# "dlopen failed").
host="$(rustc -vV | sed -n 's/^host: //p')"
mkdir -p "$slot/target/$host/debug/deps"
export LD_LIBRARY_PATH="$slot/target/$host/debug/deps:$(rustc --print target-libdir)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export EVCXR_TMPDIR="$slot"
export EVCXR_CONFIG_DIR="$REPO/kernel/evcxr"
# evcxr_jupyter rewrites $JUPYTER_PATH/kernels/rust/kernel.json with its own path at start when
# that folder lacks its version.txt (a kernelspec pointing at this script would be lost); the
# kernel itself never needs JUPYTER_PATH.
unset JUPYTER_PATH
# Jupyter's stop button (■): the kernelspec asks for `interrupt_mode: signal`, so Jupyter sends
# SIGINT to this kernel's whole process group instead of an interrupt message (evcxr_jupyter
# answers that message by killing the process that runs the cells: every variable lost).
# SIGINT is ignored here, before exec, and an ignored signal stays ignored across exec and fork:
# evcxr_jupyter and the compilers it starts ignore it, and so does its cell process until the
# kit is loaded there, whose handler then stops the running kit call (src/interrupt.rs).
trap '' INT
exec evcxr_jupyter "$@"
