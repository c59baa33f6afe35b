#!/usr/bin/env bash
# Sets up everything the course needs; idempotent, safe to re-run, installs only what is missing.
#  1. Debian packages: redis-server, mariadb-server, cmake, libcurl4-openssl-dev, python3-venv;
#     chromium for the browser test.
#  2. The venv .venv from requirements-dev.txt (JupyterLab, nbclient, Playwright, the noida-db broker).
#  3. evcxr_jupyter (pinned) and the Rust kernel, registered inside the venv (not in $HOME).
#  4. The services on 127.0.0.1 (kernel/services.sh up) and the course's MariaDB user spark/spark
#     (made through root's socket login; root's authentication is left as it is).
#  5. The crates of Cargo.lock (the kernels build offline) and the kernel's warm build folder,
#     so a new kernel's `:dep bde_kit` cell takes seconds.
# Options: --no-warm skips the warm build folder of step 5.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
WARM=1
for a in "$@"; do case "$a" in --no-warm) WARM=0 ;; *) die "unknown option $a (known: --no-warm)" ;; esac; done

# 1. Debian packages -----------------------------------------------------------------------
need=()
for p in redis-server mariadb-server mariadb-client cmake libcurl4-openssl-dev python3-venv pkg-config; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q || warn "apt-get update failed; trying the install anyway"
  # Debian's postinst scripts try to start services; in containers without systemd that may
  # fail harmlessly: services.sh starts them below.
  as_root apt-get install -y -q --no-install-recommends "${need[@]}" || die "apt-get install ${need[*]} failed"
else
  say "Debian packages present"
fi
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs) and re-run"

# 1b. Chromium for the browser test (tests/browser/test_lab.py drives it with Playwright; the
# browser is Debian's, Playwright never downloads one) --------------------------------------
if ! dpkg -s chromium >/dev/null 2>&1 || [ ! -x /usr/bin/chromium ]; then
  say "installing Debian's chromium (for the browser test)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -q --no-install-recommends chromium \
    || { as_root apt-get update -q && as_root apt-get install -y -q --no-install-recommends chromium; } \
    || die "apt-get install chromium failed (the browser test needs it)"
else
  say "chromium present"
fi

# 2. Python venv ---------------------------------------------------------------------------
PY="${BDE_PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating the venv $VENV"
  "$PY" -m venv "$VENV" || die "python3 -m venv failed: install python3-venv"
fi
req_hash="$(sha256sum "$REPO/requirements-dev.txt" | cut -c1-16)"
if [ "$(cat "$VENV/.req-hash" 2>/dev/null)" != "$req_hash" ]; then
  say "installing requirements-dev.txt into the venv"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r "$REPO/requirements-dev.txt" || die "pip install -r requirements-dev.txt failed"
  echo "$req_hash" >"$VENV/.req-hash"
else
  say "venv up to date"
fi

# 3. evcxr and the kernelspec --------------------------------------------------------------
if ! { command -v evcxr_jupyter >/dev/null && cargo install --list | grep -q "^evcxr_jupyter v$EVCXR_VERSION:"; }; then
  say "building evcxr_jupyter $EVCXR_VERSION (about 25 minutes on 2 cores, once per machine)"
  cargo install --locked --version "$EVCXR_VERSION" evcxr_jupyter || die "cargo install evcxr_jupyter failed"
else
  say "evcxr_jupyter $EVCXR_VERSION present"
fi
# interrupt_mode signal: the stop button sends SIGINT, which the kit turns into "stop the running
# kit call" (kernel/evcxr-kernel.sh, src/interrupt.rs); "message" made evcxr kill the cells' process.
kdir="$VENV/share/jupyter/kernels/rust"
mkdir -p "$kdir"
cat >"$kdir/kernel.json" <<JSON
{
  "argv": ["$REPO/kernel/evcxr-kernel.sh", "--control_file", "{connection_file}"],
  "display_name": "Rust (bde_kit)",
  "language": "rust",
  "interrupt_mode": "signal"
}
JSON
say "Rust kernel registered in $kdir"

# 4. Services and the course user ----------------------------------------------------------
bash "$REPO/kernel/services.sh" up
# Administration goes through the server's own root login (the unix socket, with sudo where
# needed); root's authentication is never changed. The course user gets the course databases
# with GRANT OPTION, so the setup notebook runs as spark (BDE_MARIADB_ROOT defaults to it).
sql() {
  mariadb --protocol=socket -uroot -e "$1" 2>/dev/null && return 0
  as_root mariadb --protocol=socket -uroot -e "$1" 2>/dev/null && return 0
  [ -n "${BDE_MARIADB_ADMIN_PASSWORD:-}" ] && MYSQL_PWD="$BDE_MARIADB_ADMIN_PASSWORD" mariadb -h127.0.0.1 -uroot -e "$1"
}
grants=""
for db in warehouse_stock global_stock website_stats 'bde\_test%'; do
  for host in "%" localhost; do
    grants+="GRANT ALL PRIVILEGES ON \`$db\`.* TO 'spark'@'$host' WITH GRANT OPTION; "
  done
done
sql "CREATE USER IF NOT EXISTS 'spark'@'%' IDENTIFIED BY 'spark';
     CREATE USER IF NOT EXISTS 'spark'@'localhost' IDENTIFIED BY 'spark';
     $grants" \
  || die "could not create the MariaDB user spark/spark: root's socket login failed (run as root or with sudo, or set BDE_MARIADB_ADMIN_PASSWORD to root's password)"
say "MariaDB user spark/spark ready"

# 5. Warm kernel build folder --------------------------------------------------------------
# The kernels run cargo offline (kernel/evcxr/evcxr.toml): every crate of Cargo.lock must be in
# the local registry first (a no-op when it is).
cargo fetch --locked --manifest-path "$REPO/Cargo.toml" || die "cargo fetch failed: the notebook kernels build offline and need the crates of Cargo.lock"
if [ "$WARM" = 1 ]; then
  "$VENV/bin/python" "$REPO/kernel/warm_kernel.py"
fi
say "setup done"
