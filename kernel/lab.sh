#!/usr/bin/env bash
# The README's first command: sets everything up, then opens the course in JupyterLab on
# 127.0.0.1 (notebooks/). With --headless it replays every notebook instead and prints the
# results (executed copies in build/notebooks/).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bash "$REPO/kernel/setup.sh"
if [ "${1:-}" = "--headless" ]; then
  exec "$VENV/bin/python" "$REPO/kernel/run_notebooks.py" "${@:2}"
fi
say "opening JupyterLab on http://127.0.0.1:${BDE_LAB_PORT:-8888} (Ctrl-C stops it; the services keep running)"
exec "$VENV/bin/jupyter" lab --ip 127.0.0.1 --port "${BDE_LAB_PORT:-8888}" --notebook-dir "$REPO/notebooks" ${BDE_LAB_ARGS:-}
