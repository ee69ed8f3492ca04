#!/usr/bin/env bash
# Benchmarks, with the targets from the issues, and firedrill against what it replaces; everything
# ends in ONE table of ratios, every number measured by this run (scripts/bench/table.py):
#
# (c) the README's benchmark figures:
#   validate of a 50-drill file as a whole process   (target < 20 ms)
#   plan of 1,000 drills over one year               (target < 200 ms)
#   one safety verdict over 100,000 pods              (target < 100 ms)
#   stop, the fault proxy against direct, the idle scheduler with and without an every-minute
#   drill (scripts/measure-scheduler.sh),
#   execute to its `first probe` log line (target < 1 s), peak memory (scripts/bench-memory.sh)
#   Criterion measures the library calls; hyperfine times the release binary as users run it.
#
# (a) validate: firedrill against chaostoolkit's `chaos validate`, on the example programme
#   (deploy/examples/firedrill.yaml) and its equivalent experiments, scripts/bench/chaostoolkit/
#   (one JSON file per drill, same faults, gates and abort conditions as far as chaostoolkit's
#   extensions can say them). chaostoolkit validates one experiment per call, so like for like is
#   what a user runs to check the whole programme: ONE `firedrill validate` of the 5-drill file
#   against FIVE `chaos validate` calls, one after the other (a bash loop; its own start, ~2 ms,
#   counts against chaostoolkit). A second row compares one drill with one experiment
#   (pod-kill-monthly: a 1-drill file cut from the example against one `chaos validate`), which
#   shows the per-process floor of each. Both warm (files and Python bytecode in the page cache),
#   hyperfine medians; chaostoolkit runs in target/bench-venv with the extensions the experiments
#   import (scripts/bench/chaostoolkit-validate.txt), version check and log file off.
#
# (b) a drill Job's start until its first steady-state probe reaches the service, timed by
#   scripts/bench/first-request.py: from just before the process is spawned until a loopback HTTP
#   server (in that script) has read the first request.
#   firedrill: `firedrill execute --config F --drill api-probe` of a `probe` drill
#     (scripts/bench/probe-drill.yaml) as a Job runs it: reads the drill file, opens a new SQLite
#     store in a fresh directory, reaches the Kubernetes API, which a Job has (here the stand-in
#     scripts/kube-stub.py through KUBECONFIG: it reads the ledgers for the cooldown and the kill
#     switch before probing; without any API a probe still runs, with a warning), then probes.
#   the seed's Job: its manifest runs `pip install kubernetes pyyaml aiohttp requests && python
#     /scripts/network-partition.py` (seed 004); here, in a fresh venv made beforehand (not
#     timed), that pip install with --no-cache-dir and no local wheel directory (a new pod has
#     neither), then the imports such a script makes and one HTTP GET (scripts/bench/job-seed.sh).
#   a chaostoolkit Job: the same with scripts/bench/chaostoolkit-job.txt (chaostoolkit and the
#     extensions of the Kubernetes/Prometheus experiments), then `chaos run` of
#     scripts/bench/probe-experiment.json, the same single probe (scripts/bench/job-chaostoolkit.sh).
#   Neither side includes the image pull or pod scheduling. Medians of BENCH_PROBE_RUNS (5, after
#   one warm-up) for firedrill and BENCH_PIP_RUNS (3) for each pip baseline, which depend on PyPI's
#   speed from here at that moment.
#
# Usage: scripts/bench.sh [--compare-only] [--quick]
#   --compare-only  no cargo: skip the criterion benches and the build, use the existing binary
#                   (FIREDRILL_BIN, default target/release/firedrill); criterion's rows say "not run"
#   --quick         the smaller input set of scripts/bench-memory.sh, a 20 s scheduler measurement
# Environment: FIREDRILL_BIN, BENCH_PROBE_RUNS, BENCH_PIP_RUNS, BENCH_SCHEDULER_SECONDS (60),
#   BENCH_DRILLS (the drill file of (a); default deploy/examples/firedrill.yaml: its drills must
#   be those of scripts/bench/chaostoolkit/, one experiment per drill).
# Results (hyperfine JSON, logs) stay in target/bench-results/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh  # start_kube_stub

compare_only=false
quick=false
for arg in "$@"; do
  case $arg in
    --compare-only) compare_only=true ;;
    --quick) quick=true ;;
    *) echo "usage: $0 [--compare-only] [--quick]" >&2; exit 2 ;;
  esac
done

probe_runs=${BENCH_PROBE_RUNS:-5}
pip_runs=${BENCH_PIP_RUNS:-3}
scheduler_seconds=${BENCH_SCHEDULER_SECONDS:-60}
if $quick; then scheduler_seconds=${BENCH_SCHEDULER_SECONDS:-20}; fi
drills=${BENCH_DRILLS:-deploy/examples/firedrill.yaml}

if ! command -v hyperfine >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine
fi

out=target/bench-results
rm -rf "$out"
mkdir -p "$out"
# Criterion results older than this file are an earlier run's: the table leaves them out.
touch "$out/started"

stub_pid=
cleanup() { if [ -n "$stub_pid" ]; then kill "$stub_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

# --- the criterion benches and the build (need cargo) ----------------------------------------
if ! $compare_only; then
  # Criterion first: it also writes the generated drill files to target/bench-data/.
  cargo bench -p firedrill --bench config_and_plan
  cargo bench -p firedrill-safety --bench verdict
  cargo bench -p firedrill --bench stop
  cargo bench -p firedrill-rollback --bench seal   # signing and verifying a 1,000-entry ledger (#22)
  cargo bench -p firedrill --bench fault_proxy | tee "$out/fault-proxy.txt"
  # The report over 105,120 runs, on SQLite and (with FIREDRILL_TEST_POSTGRES) PostgreSQL.
  cargo bench -p firedrill --bench report | tee "$out/report.txt"
  cargo build --release -q
fi

bin=$(realpath "${FIREDRILL_BIN:-target/release/firedrill}")
if [ ! -x "$bin" ]; then
  echo "error: $bin does not exist (build it, or set FIREDRILL_BIN)" >&2
  exit 2
fi
# A binary older than the drill file may refuse it; then no validate figure would mean anything.
if ! "$bin" validate --config "$drills" >"$out/validate-check.txt" 2>&1; then
  echo "error: $bin does not accept $drills (a binary older than the file? rebuild it):" >&2
  cat "$out/validate-check.txt" >&2
  exit 2
fi

# --- (c) the README's whole-process figures ---------------------------------------------------
data=target/bench-data
if [ -f "$data/drills-50.yaml" ] && [ -f "$data/drills-1000.yaml" ]; then
  hyperfine --warmup 5 --runs 50 -N --export-json "$out/readme-process.json" \
    "$bin validate --config $data/drills-50.yaml" \
    "$bin plan --config $data/drills-1000.yaml --from 2026-11-23T00:00:00Z --until 2027-11-23T00:00:00Z --format json"
else
  echo "note: no $data/drills-{50,1000}.yaml (the config_and_plan bench writes them): those rows are not run" >&2
fi

echo "measuring the idle scheduler for ${scheduler_seconds}s" >&2
FIREDRILL_BIN=$bin scripts/measure-scheduler.sh "$scheduler_seconds" | tee "$out/scheduler.txt"
echo "measuring the idle scheduler with an every-minute drill for ${scheduler_seconds}s" >&2
FIREDRILL_BIN=$bin scripts/measure-scheduler.sh "$scheduler_seconds" --every-minute | tee "$out/scheduler-every-minute.txt"

memory_args=()
if $quick; then memory_args=(--quick); fi
FIREDRILL_BIN=$bin scripts/bench-memory.sh "${memory_args[@]}" | tee "$out/memory.txt"

# --- (a) validate: firedrill against chaostoolkit ---------------------------------------------
venv=target/bench-venv
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install --quiet -r scripts/bench/chaostoolkit-validate.txt

experiments=(scripts/bench/chaostoolkit/*.json)
drill_count=$(sed -n 's/.*valid (\([0-9]*\) drills\{0,1\}.*/\1/p' "$out/validate-check.txt")
if [ "$drill_count" != "${#experiments[@]}" ]; then
  echo "error: $drills has ${drill_count:-?} drills but scripts/bench/chaostoolkit/ ${#experiments[@]} experiments" >&2
  exit 2
fi
# The drills' names, in order (blackouts have names too: only those after `drills:`).
drill_names=$(awk '/^drills:/ { d = 1; next } d && $1 == "-" && $2 == "name:" { print $3 }' "$drills")
for e in "${experiments[@]}"; do
  name=$(basename "$e" .json)
  if ! grep -qx "$name" <<<"$drill_names"; then
    echo "error: $e has no drill named $name in $drills" >&2
    exit 2
  fi
done
# Each experiment must be valid, or chaostoolkit's figure would be that of a quick refusal.
for e in "${experiments[@]}"; do
  "$venv/bin/chaos" --no-version-check --no-log-file validate "$e" >"$out/chaos-validate.log" 2>&1 || {
    echo "error: chaos validate $e failed:" >&2
    cat "$out/chaos-validate.log" >&2
    exit 2
  }
done

# All five, one after the other, as one command for hyperfine.
validate_all=$out/chaos-validate-all.sh
{
  echo 'set -e'
  for e in "${experiments[@]}"; do
    printf '%q --no-version-check --no-log-file validate %q >/dev/null 2>&1\n' "$PWD/$venv/bin/chaos" "$PWD/$e"
  done
} >"$validate_all"
hyperfine --warmup 2 --runs 10 -N --export-json "$out/validate-programme.json" \
  "$bin validate --config $drills" \
  "bash $validate_all"

# One drill: the first drill of the file (its header and the drill, cut at the second `  - name:`)
# against that drill's experiment.
one_drill=$(head -n 1 <<<"$drill_names")
one_file=$out/one-drill.yaml
awk '/^drills:/ { d = 1 } d && /^  - name: / { n++ } n < 2 { print }' "$drills" >"$one_file"
"$bin" validate --config "$one_file" >/dev/null
hyperfine --warmup 3 --runs 20 -N --export-json "$out/validate-one.json" \
  "$bin validate --config $one_file" \
  "$venv/bin/chaos --no-version-check --no-log-file validate scripts/bench/chaostoolkit/$one_drill.json"

# --- (b) a drill Job's start to its first probe ----------------------------------------------
start_kube_stub "$out"

echo "firedrill execute of a probe drill, to its first request: $probe_runs runs" >&2
KUBECONFIG=$PWD/$out/kubeconfig FIREDRILL_LOG=json python3 scripts/bench/first-request.py \
  --runs "$probe_runs" --warmup 1 --first-probe-log --out "$out/first-firedrill.json" \
  --template scripts/bench/probe-drill.yaml:firedrill.yaml \
  -- "$bin" execute --config '{dir}/firedrill.yaml' --drill api-probe
kill "$stub_pid" 2>/dev/null || true
stub_pid=

echo "the seed's Job start (pip install, no cache), to its first request: $pip_runs runs" >&2
python3 scripts/bench/first-request.py --runs "$pip_runs" --out "$out/first-seed.json" \
  --prepare 'python3 -m venv {dir}/venv' \
  -- bash "$PWD/scripts/bench/job-seed.sh" '{dir}/venv'

echo "a chaostoolkit Job start (pip install, no cache), to its first probe: $pip_runs runs" >&2
python3 scripts/bench/first-request.py --runs "$pip_runs" --out "$out/first-chaostoolkit.json" \
  --prepare 'python3 -m venv {dir}/venv' \
  -- bash "$PWD/scripts/bench/job-chaostoolkit.sh" '{dir}/venv' "$PWD/scripts/bench/probe-experiment.json"

# --- the table ------------------------------------------------------------------------------
python3 - "$out/meta.json" "$compare_only" "$drills" "$drill_count" "$one_drill" "$bin" <<'PY'
import json, sys
path, compare_only, drills, count, one, binary = sys.argv[1:]
json.dump({"compare_only": compare_only == "true", "drills_file": drills, "drill_count": int(count),
           "one_drill": one, "bin": binary}, open(path, "w"))
PY
echo
python3 scripts/bench/table.py "$out" | tee "$out/table.md"
