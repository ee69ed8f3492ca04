#!/usr/bin/env bash
# Peak memory (max RSS) and wall time of the release binary on hostile and large inputs, as
# `/usr/bin/time -v` reports them for the whole process:
#   validate of a ~430-byte "billion laughs" alias bomb   (expected: exit 1 quickly, naming a limit)
#   plan --next 10 of a 30,000-drill file
#   plan --at of the example drills against a 100,000-pod cluster snapshot (~470 MiB of YAML)
#   plan of one every-minute drill over ten years (5,260,320 fires), as a table and as JSON
#   report over a past year of one every-minute drill (525,600 planned fires; a history of 3 runs,
#     so every fire is a gap and a follow-up), Markdown and JSON
# (Those four write hundreds of MiB to GiB: their output goes to /dev/null, not to results/.)
# Inputs come from scripts/gen-inputs.py into target/bench-inputs/ and are reused when present
# (delete that directory after changing the generator); what each command printed is kept in
# target/bench-inputs/results/. A measured command's non-zero exit is recorded in the table, not
# treated as a failure.
#
# The measured commands run under an address-space cap (ulimit -v; default half the machine's
# memory) so that an input that defeats firedrill's limits fails alone instead of starving the
# machine: a command that hits the cap aborts ("memory allocation of N bytes failed", signal 6).
#
# Usage: scripts/bench-memory.sh [--quick]      --quick: 20,000 pods and 3,000 drills
# FIREDRILL_BIN overrides the binary (default target/release/firedrill, built when missing);
# BENCH_MEMORY_CAP_MIB overrides the cap, 0 for none.
set -euo pipefail
cd "$(dirname "$0")/.."

pods=100000
drills=30000
case "${1:-}" in
  --quick) pods=20000 drills=3000 ;;
  "") ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

if [ ! -x /usr/bin/time ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time
fi

bin=${FIREDRILL_BIN:-target/release/firedrill}
if [ ! -x "$bin" ] && [ -z "${FIREDRILL_BIN:-}" ]; then
  cargo build --release -q
fi
if [ ! -x "$bin" ]; then
  echo "error: $bin does not exist (set FIREDRILL_BIN to the firedrill binary)" >&2
  exit 2
fi

cap_mib=${BENCH_MEMORY_CAP_MIB:-$(awk '/^MemTotal:/ { printf "%d", $2 / 2048 }' /proc/meminfo)}

inputs=target/bench-inputs
python3 scripts/gen-inputs.py --out "$inputs" --pods "$pods" --drills "$drills"

# What each measured command printed, kept for a look afterwards.
results=$inputs/results
mkdir -p "$results"

# 1234567 -> 1,234,567
commas() { sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$1"; }

bytes() {
  awk -v b="$(stat -c %s "$1")" 'BEGIN {
    if (b < 1024) printf "%d B", b
    else if (b < 1048576) printf "%.1f KiB", b / 1024
    else if (b < 1073741824) printf "%.1f MiB", b / 1048576
    else printf "%.2f GiB", b / 1073741824 }'
}

rows=()
notes=()
# measure NAME WHAT SIZE COMMAND...: one table row from /usr/bin/time -v; the command's output
# goes to $results/NAME.{stdout,stderr,time} (its stdout to /dev/null when discard=1).
measure() {
  local name=$1 what=$2 size=$3 rc=0
  shift 3
  local out=$results/$name
  local sink=$out.stdout
  if [ "${discard:-0}" = 1 ]; then sink=/dev/null; fi
  echo "running: $*" >&2
  (
    if [ "$cap_mib" -gt 0 ]; then ulimit -v $((cap_mib * 1024)); fi
    exec /usr/bin/time -v -o "$out.time" "$@"
  ) >"$sink" 2>"$out.stderr" || rc=$?
  local wall rss status
  # "Elapsed (wall clock) time (h:mm:ss or m:ss): 1:02.34" -> seconds
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {
    n = split($NF, t, ":"); s = 0
    for (i = 1; i <= n; i++) s = s * 60 + t[i]
    printf "%.2f s", s }' "$out.time")
  rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f MiB", $NF / 1024 }' "$out.time")
  status=$rc
  if grep -q '^Command terminated by signal' "$out.time"; then
    status="signal $(sed -n 's/^Command terminated by signal //p' "$out.time")"
  fi
  rows+=("| $what | $size | ${wall:-?} | ${rss:-?} | $status |")
  if [ "$rc" -ne 0 ]; then
    notes+=("- $what (exit $status): $(head -n 1 "$out.stderr")")
  fi
}

alias_file=$inputs/alias.yaml
drill_file=$inputs/drills-$drills.yaml
cluster_file=$inputs/cluster-$pods.yaml

measure alias "validate, billion-laughs alias bomb" "9 levels of 9 aliases, $(bytes "$alias_file")" \
  "$bin" validate --config "$alias_file"
measure drills "plan --next 10" "$(commas "$drills") drills, $(bytes "$drill_file")" \
  "$bin" plan --config "$drill_file" --next 10
measure cluster "plan --cluster --at, example drills" "$(commas "$pods") pods, $(bytes "$cluster_file")" \
  "$bin" plan --config deploy/examples/firedrill.yaml --cluster "$cluster_file" --at 2027-01-15T10:00:00Z

# One drill firing every minute: the calendar is streamed, so ten years cost what a day does.
minute=$inputs/every-minute
mkdir -p "$minute"
cat >"$minute/firedrill.yaml" <<'YAML'
store: sqlite://history.db
drills:
  - { name: every-minute, kind: probe, schedule: "* * * * *", duration: 30s }
YAML
if [ ! -f "$minute/history.db" ]; then
  # The report needs a history: three dry runs of the same drill cut to a second each (a probe
  # without probes; no cluster needed), recorded as manual runs in the year. The year is past,
  # so every fire nobody recorded is a gap with its follow-up, not "not yet due".
  sed 's/duration: 30s/duration: 1s/' "$minute/firedrill.yaml" >"$minute/seed.yaml"
  for t in 2025-02-01T10:00:00Z 2025-06-01T10:00:00Z 2025-10-01T10:00:00Z; do
    KUBECONFIG=/nonexistent FIREDRILL_LOG=json "$bin" execute --config "$minute/seed.yaml" \
      --drill every-minute --dry-run --scheduled "$t" >/dev/null 2>>"$results/seed.stderr"
  done
fi
for format in table json; do
  discard=1 measure "plan-10y-$format" "plan, one every-minute drill, ten years, $format" "5,260,320 fires" \
    "$bin" plan --config "$minute/firedrill.yaml" --from 2027-01-01T00:00:00Z --until 2037-01-01T00:00:00Z --format "$format"
done
for format in md json; do
  discard=1 measure "report-1y-$format" "report, one every-minute drill, a past year, $format" "525,600 planned fires, 3 runs" \
    "$bin" report --config "$minute/firedrill.yaml" --since 2025-01-01T00:00:00Z --until 2026-01-01T00:00:00Z --format "$format"
done

echo
echo "| what | input size | wall time | max RSS | exit |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
if [ "$cap_mib" -gt 0 ]; then
  echo
  echo "Address-space cap: $(commas "$cap_mib") MiB (BENCH_MEMORY_CAP_MIB)."
fi
if [ "${#notes[@]}" -gt 0 ]; then
  echo
  echo "First line of stderr of each command that exited non-zero:"
  printf '%s\n' "${notes[@]}"
fi
