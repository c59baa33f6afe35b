#!/usr/bin/env bash
# Smoke run of the benchmarks at tiny scale (kernel/test.sh runs it): proves the harness works
# end to end — both engines run every step and agree on the results. No timing is asserted; it
# fails only when a step crashes or bde_kit and PySpark give different results.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/bench.sh" --smoke "$@"
