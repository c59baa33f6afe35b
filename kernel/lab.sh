#!/usr/bin/env bash
# The README's first command: sets everything up, then opens the course in JupyterLab on
# 127.0.0.1 (notebooks/) and prints its URL with the login token as the last line. With
# --headless it replays every notebook instead and prints the results (executed copies in
# build/notebooks/).
# Port: BDE_LAB_PORT, else the first free one from 8888. Token: BDE_LAB_TOKEN, else a random one;
# it reaches JupyterLab through the environment (JUPYTER_TOKEN), never the command line, which
# `ps` shows to every local user (a process's environment only to its user and root); the log
# that repeats the URL with the token is readable by this user only.
# BDE_SETUP=0 skips the set-up (run already). Extra JupyterLab options: BDE_LAB_ARGS. As root it passes --allow-root (JupyterLab refuses root
# without it); without a display (no DISPLAY/WAYLAND_DISPLAY) it passes --no-browser.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ "${BDE_SETUP:-1}" = 0 ] || bash "$REPO/kernel/setup.sh"
if [ "${1:-}" = "--headless" ]; then
  exec "$VENV/bin/python" "$REPO/kernel/run_notebooks.py" "${@:2}"
fi

port="${BDE_LAB_PORT:-}"
if [ -z "$port" ]; then
  for ((p = 8888; p < 8988; p++)); do port_open 127.0.0.1 "$p" || { port=$p; break; }; done
  [ -n "$port" ] || die "no free port in 8888-8987 on 127.0.0.1: set BDE_LAB_PORT"
elif port_open 127.0.0.1 "$port"; then
  die "port $port on 127.0.0.1 is in use: set BDE_LAB_PORT to a free port (or leave it unset)"
fi
token="${BDE_LAB_TOKEN:-$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(24))')}"
args=(lab --ip 127.0.0.1 --port "$port" --ServerApp.port_retries=0 --notebook-dir "$REPO/notebooks")
if [ "$(id -u)" = 0 ]; then
  say "running as root: passing --allow-root to JupyterLab (it refuses root otherwise; root is the usual user in containers)"
  args+=(--allow-root)
fi
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  args+=(--no-browser)
fi
mkdir -p "$RUN"
log="$RUN/jupyterlab-$port.log"
(umask 077 && : >"$log") && chmod 600 "$log"
# shellcheck disable=SC2086  # BDE_LAB_ARGS is a list of options
JUPYTER_TOKEN="$token" "$VENV/bin/jupyter" "${args[@]}" ${BDE_LAB_ARGS:-} >"$log" 2>&1 &
lab_pid=$!
trap 'kill -TERM "$lab_pid" 2>/dev/null; wait "$lab_pid" 2>/dev/null; exit 0' INT TERM
for ((i = 0; i < 240; i++)); do
  port_open 127.0.0.1 "$port" && break
  kill -0 "$lab_pid" 2>/dev/null || { tail -n 20 "$log" >&2; die "JupyterLab exited at start (log: $log)"; }
  sleep 0.25
done
port_open 127.0.0.1 "$port" || { tail -n 20 "$log" >&2; kill "$lab_pid" 2>/dev/null; die "JupyterLab did not open port $port within 60 s (log: $log)"; }
say "JupyterLab runs (pid $lab_pid, log $log); Ctrl-C stops it, the services keep running"
say "open the course: http://127.0.0.1:$port/lab?token=$token"
wait "$lab_pid"
