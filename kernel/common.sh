# Shared helpers for the kernel/ scripts. Sourced, not run.
# Paths: the repository (REPO), the git-ignored run folder (RUN: pids, logs, broker data),
# the venv (VENV) and the per-user cache that survives fresh clones (BDE_CACHE).

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="${BDE_RUN_DIR:-$REPO/.run}"  # BDE_RUN_DIR: tests use a folder of their own
VENV="$REPO/.venv"
BDE_CACHE="${BDE_CACHE_DIR:-$HOME/.cache/bde_kit}"
EVCXR_VERSION="0.22.0"
NOIDA_VERSION="0.2.3"
export PATH="$HOME/.cargo/bin:$PATH"

say()  { printf '\033[1m[bde]\033[0m %s\n' "$*"; }
warn() { printf '\033[33m[bde] warning:\033[0m %s\n' "$*" >&2; }
die()  { printf '\033[31m[bde] error:\033[0m %s\n' "$*" >&2; exit 1; }

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# wait_port HOST PORT SECONDS NAME
wait_port() {
  local i
  for ((i = 0; i < $3 * 4; i++)); do port_open "$1" "$2" && return 0; sleep 0.25; done
  return 1
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root for: $* (run as root or install sudo)"; fi
}

# 1 when the kernels link cells against the kit built as a dylib (the default; BDE_KIT_DYLIB=0
# links them statically): see kernel/kit-dylib-rustc.sh.
kit_dylib() { [ "${BDE_KIT_DYLIB:-1}" = 0 ] && echo 0 || echo 1; }

# The key of everything the kernel compiles: the lock file, the kit's dependency section,
# the evcxr version, the compiler, evcxr's settings and how cells link (with the wrapper that
# does it). A change of any of them gives new kernel build folders.
kernel_cache_key() {
  {
    cat "$REPO/Cargo.lock"
    sed -n '/^\[dependencies\]/,/^\[/p' "$REPO/Cargo.toml"
    echo "evcxr $EVCXR_VERSION"
    rustc -V
    cat "$REPO/kernel/evcxr/evcxr.toml"
    if [ "$(kit_dylib)" = 1 ]; then cat "$REPO/kernel/kit-dylib-rustc.sh"; else echo static; fi
  } | sha256sum | cut -c1-16
}

kernel_cache_dir() { echo "$BDE_CACHE/kernels/$(kernel_cache_key)"; }
