#!/usr/bin/env bash
# RUSTC_WRAPPER of the notebook kernels (set by kernel/evcxr-kernel.sh): builds bde_kit also as a
# Rust dylib and links every cell against it, instead of linking the kit, Polars and ~250 other
# rlibs statically into each cell's .so.
#
# Why: evcxr compiles each cell into a cdylib. Linked statically, a cell that touches a DataFrame
# drags in most of Polars: the linker scans ~1 GB of rlibs and writes up to 80 MB per cell
# (measured: link 0.7 s for `1 + 1`, 1.4 s for a `Table`, 2.4 s for a lazy query), and every
# cell's .so carries its own copy of the kit's statics (tokio runtime, MariaDB pools, query
# registry). Linked against libbde_kit-<hash>.so a cell's .so is a few KB, links in ~0.1 s, and
# the kit's statics exist once per kernel. (evcxr's own `allow_static_linking = false` does this
# for every crate but fails with current toolchains: "only metadata stub found for `dylib`
# dependency `core`".)
#
# How, per rustc call (cargo runs "$0 <rustc> <args>"):
#  - bde_kit, when linking (--emit has `link`): `--crate-type lib` becomes lib + dylib, and
#    dependencies given as .rmeta (cargo's pipelining) are given as their .rlib, which a dylib
#    links (in a cold build it waits until each .rlib is written);
#  - evcxr's cell crate (`ctx`), when its one dependency is `--extern bde_kit=…/….rlib`, gets
#    the .so built next to it instead;
#  - everything else runs unchanged. Cargo's fingerprints do not include the wrapper, so
#    dependencies built without it stay fresh (only bde_kit needs a rebuild to get its .so).
set -euo pipefail
rustc="$1"
shift
args=("$@")
n=${#args[@]}
crate="" link=0
for ((i = 0; i < n; i++)); do
  case "${args[i]}" in
    --crate-name) crate="${args[i + 1]:-}" ;;
    --emit=*) [[ "${args[i]}" == *link* ]] && link=1 ;;
  esac
done

if [ "$crate" = bde_kit ] && [ "$link" = 1 ]; then
  out=()
  for ((i = 0; i < n; i++)); do
    a="${args[i]}"
    if [ "$a" = --crate-type ] && [ "${args[i + 1]:-}" = lib ]; then
      out+=(--crate-type lib --crate-type dylib)
      i=$((i + 1))
      continue
    fi
    if [ "$a" = --extern ] && [[ "${args[i + 1]:-}" == *=*.rmeta ]]; then
      rmeta="${args[i + 1]#*=}"
      rlib="${rmeta%.rmeta}.rlib"
      # Pipelining starts the kit once its dependencies' metadata exist, while their rustc may
      # still be generating code: wait for the .rlib (written after the .rmeta) and, when it is
      # brand new, until its size stops changing.
      for ((w = 0; w < 36000; w++)); do
        [ -f "$rlib" ] && ! [ "$rlib" -ot "$rmeta" ] && break
        sleep 0.1
      done
      while [ -f "$rlib" ] && [ $(($(date +%s) - $(stat -c %Y "$rlib"))) -lt 10 ]; do
        size="$(stat -c %s "$rlib")"
        sleep 0.5
        [ "$size" = "$(stat -c %s "$rlib" 2>/dev/null)" ] && break
      done
      out+=(--extern "${args[i + 1]%%=*}=$rlib")
      i=$((i + 1))
      continue
    fi
    out+=("$a")
  done
  exec "$rustc" "${out[@]}"
fi

# Only evcxr's cell crate (`ctx`), and only when the kit is its one dependency: a cell crate
# with another `:dep` (say polars itself, or tokio that evcxr adds for `await`) could see a
# crate twice, once inside the kit's dylib ("cannot satisfy dependencies so `polars` only shows
# up once"); it links statically as before.
externs=0
for ((i = 0; i < n; i++)); do [ "${args[i]}" = --extern ] && externs=$((externs + 1)); done
if [ "$crate" = ctx ] && [ "$externs" = 1 ]; then
  for ((i = 0; i < n; i++)); do
    if [ "${args[i]}" = --extern ] && [[ "${args[i + 1]:-}" == bde_kit=*.rlib ]]; then
      rlib="${args[i + 1]#bde_kit=}"
      so="${rlib%.rlib}.so"
      # Only a .so built together with this .rlib (not an older one of the same name).
      if [ -f "$so" ] && [ $(($(stat -c %Y "$so") + 120)) -ge "$(stat -c %Y "$rlib")" ]; then
        args[i + 1]="bde_kit=$so"
      fi
    fi
  done
fi
exec "$rustc" "${args[@]}"
