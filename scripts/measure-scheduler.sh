#!/usr/bin/env bash
# Scheduler idle cost: RSS and CPU of `firedrill scheduler` over 60 s with 50 drills configured,
# ticking every 5 s against a stand-in API server (scripts/kube-stub.py) on loopback.
# Usage: scripts/measure-scheduler.sh [SECONDS] [--every-minute]   (default 60)
#   --every-minute  one more drill, firing every minute (30 s long): each tick has the fires due
#                   since the last to take from its calendar (a scheduler that planned 45 days
#                   ahead every tick held 64,800 fires of it each time)
# FIREDRILL_BIN: the binary to measure (default target/release/firedrill, built first).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh  # start_kube_stub
seconds=60
every_minute=false
for arg in "$@"; do
  case $arg in
    --every-minute) every_minute=true ;;
    *[!0-9]* | "") echo "usage: $0 [SECONDS] [--every-minute]" >&2; exit 2 ;;
    *) seconds=$arg ;;
  esac
done
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

bin=${FIREDRILL_BIN:-target/release/firedrill}
if [ -z "${FIREDRILL_BIN:-}" ]; then
  cargo build --release -q -p firedrill
fi
start_kube_stub "$work"
{
  echo "store: sqlite://$work/history.db"
  echo "drills:"
  for i in $(seq 0 49); do
    printf '  - { name: drill-%02d, kind: probe, schedule: "%d %d %d * *", duration: 10m }\n' \
      "$i" $((i % 60)) $((8 + i % 10)) $((1 + i % 28))
  done
  if $every_minute; then
    echo '  - { name: every-minute, kind: probe, schedule: "* * * * *", duration: 30s }'
  fi
} >"$work/firedrill.yaml"
drills="50 drills"
if $every_minute; then drills="51 drills (one every minute)"; fi

KUBECONFIG="$work/kubeconfig" FIREDRILL_LOG=json "$bin" scheduler \
  --config "$work/firedrill.yaml" --listen 127.0.0.1:0 --tick 5s 2>"$work/log" &
pid=$!
sleep 2
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks)
sleep "$seconds"
after=$(ticks)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
grep -m3 "tick failed" "$work/log" || true
curl -fsS "http://127.0.0.1:$(ss -ltnp | awk -v p="pid=$pid," '$0 ~ p {split($4,a,":"); print a[length(a)]; exit}')/metrics" | grep -E '^firedrill_scheduler_(leader|tick_errors_total)' || true
echo "scheduler, $drills, ${seconds}s idle: RSS ${rss} KiB (peak ${hwm} KiB), CPU $(( (after - before) * 1000 / hz )) ms = $(awk -v t=$((after - before)) -v h="$hz" -v s="$seconds" 'BEGIN { printf "%.3f%%", t / h / s * 100 }') of one core"
