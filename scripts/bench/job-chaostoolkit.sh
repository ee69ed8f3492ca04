#!/usr/bin/env bash
# A chaostoolkit drill Job's start: pip install of scripts/bench/chaostoolkit-job.txt into the fresh
# venv $1 with no cache, then `chaos run` of the experiment $2, whose steady-state probe goes to
# BENCH_URL (PROBE_URL in the experiment). Timed by scripts/bench/first-request.py until that
# probe's request arrives.
set -euo pipefail
venv=$1 experiment=$2
here=$(cd "$(dirname "$0")" && pwd)
env -u PIP_FIND_LINKS "$venv/bin/pip" install --no-cache-dir --quiet -r "$here/chaostoolkit-job.txt"
PROBE_URL=$BENCH_URL exec "$venv/bin/chaos" --no-version-check --no-log-file run "$experiment"
