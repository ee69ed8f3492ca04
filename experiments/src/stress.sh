#!/bin/sh
# firedrill resource-stress pod (POSIX sh: busybox ash, dash): runs stress-ng with the
# arguments it is given ("$@"), and while it runs measures from /proc the load it holds,
# reported on its log for the runner to read back. Needs: sh, stress-ng, /proc.
#
# MEASURE cpu|memory|io|none   what to measure (none: only run stress-ng)
# WARM_SECONDS (default 1)  how long the workers get to start before measuring
# OVER_SECONDS (default 3)  how long the CPU time (or the I/O) is measured over
# PROC (default /proc)
# Report:
#   firedrill: effect cpu stress-ng=P% (C of N CPUs) node=Q% over=Ss
#       P: stress-ng's own CPU time (utime+stime of its processes, at 100 ticks a second)
#          over S seconds, as a share of the N CPUs it runs on; Q: the node's busy share
#          over the same seconds (/proc/stat: all but idle and iowait)
#   firedrill: effect memory held=HkB asked=AkB (L% of FkB free)
#       H: the most resident memory of stress-ng's processes (VmRSS) while sampled; A: what
#          --vm-bytes L% asks of the F kB free (MemFree) before it started
#   firedrill: effect io written=WkB/s read=RkB/s storage-written=SkB/s storage-read=TkB/s workers=K over=Ss
#       W, R: bytes stress-ng's processes passed to write and read calls (/proc/PID/io wchar,
#          rchar) a second over S seconds; S, T: what of it reached the storage layer
#          (write_bytes, read_bytes: page-cache hits and not yet dirtied pages excluded);
#          K: the --hdd workers asked
#   firedrill: effect cpu|memory|io not measured: WHY
#   firedrill: effect end
# Exit: stress-ng's. SIGTERM (the pod deleted) stops stress-ng and ends.
set -u
PROC="${PROC:-/proc}"
MEASURE="${MEASURE:-none}"
WARM_SECONDS="${WARM_SECONDS:-1}"
OVER_SECONDS="${OVER_SECONDS:-3}"
say() { printf 'firedrill: %s\n' "$*"; }

case $MEASURE in cpu | memory | io | none) ;; *) say "error: MEASURE '$MEASURE' must be cpu, memory, io or none" >&2; exit 1 ;; esac
for n in "$WARM_SECONDS" "$OVER_SECONDS"; do
  case $n in '' | *[!0-9]*) say "error: WARM_SECONDS and OVER_SECONDS must be whole seconds" >&2; exit 1 ;; esac
done

# kB of a "Key: N kB" line of /proc/meminfo
meminfo() { sed -n "s/^$1:[^0-9]*\\([0-9]*\\) kB\$/\\1/p" "$PROC/meminfo"; }
free_before=$(meminfo MemFree)

stress-ng "$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 143' TERM INT HUP

# stress-ng's processes (itself and its workers): every process whose name starts stress-ng
# (the pod's own pid namespace holds no other).
ours() {
  for dir in "$PROC"/[0-9]*; do
    IFS= read -r line <"$dir/stat" 2>/dev/null || continue
    name=${line#*(}
    name=${name%%)*}
    case $name in stress-ng*) printf '%s\n' "${dir##*/}" ;; esac
  done
}
# utime + stime of stress-ng's processes, in ticks
ticks() {
  sum=0
  for p in $(ours); do
    IFS= read -r line <"$PROC/$p/stat" 2>/dev/null || continue
    # shellcheck disable=SC2086
    set -- ${line##*) }
    [ $# -ge 13 ] && sum=$((sum + ${12} + ${13}))
  done
  echo "$sum"
}
# busy and total jiffies of the node (/proc/stat's first line)
node_cpu() {
  # shellcheck disable=SC2046
  set -- $(sed -n 's/^cpu  *//p' "$PROC/stat" | head -n 1)
  total=0
  for v in "$@"; do total=$((total + v)); done
  echo "$((total - ${4:-0} - ${5:-0})) $total"
}
rss() {
  sum=0
  for p in $(ours); do
    kb=$(sed -n 's/^VmRSS:[^0-9]*\([0-9]*\) kB$/\1/p' "$PROC/$p/status" 2>/dev/null)
    sum=$((sum + ${kb:-0}))
  done
  echo "$sum"
}
# "wchar rchar write_bytes read_bytes" of process $1 (nothing when its io file is unreadable)
io_of() {
  wc="" rc="" wb="" rb=""
  while read -r key value; do
    case $key in wchar:) wc=$value ;; rchar:) rc=$value ;; write_bytes:) wb=$value ;; read_bytes:) rb=$value ;; esac
  done 2>/dev/null <"$PROC/$1/io" || return 0
  [ -n "$wc" ] && echo "$wc ${rc:-0} ${wb:-0} ${rb:-0}"
  return 0
}
alive() { kill -0 "$child" 2>/dev/null; }

measure_cpu() {
  cpus=$(nproc 2>/dev/null || grep -c '^cpu[0-9]' "$PROC/stat")
  t0=$(ticks)
  n0=$(node_cpu)
  s0=$(date +%s)
  sleep "$OVER_SECONDS"
  t1=$(ticks)
  n1=$(node_cpu)
  s1=$(date +%s)
  alive || { say "effect cpu not measured: stress-ng ended before $OVER_SECONDS s of it could be measured"; return; }
  secs=$((s1 - s0))
  [ "$secs" -gt 0 ] || secs=1
  # per mille of the CPUs: ticks / 100 / secs / cpus
  share=$(((t1 - t0) * 10 / secs / cpus))
  used=$(((t1 - t0) / secs))
  set -- $n0
  b0=$1 a0=$2
  set -- $n1
  node=0
  [ "$(($2 - a0))" -gt 0 ] && node=$((($1 - b0) * 100 / ($2 - a0)))
  say "effect cpu stress-ng=$((share / 10)).$((share % 10))% ($((used / 100)).$(printf '%02d' $((used % 100))) of $cpus CPUs) node=$node% over=${secs}s"
}

measure_memory() {
  # --vm-bytes L%: the share asked, from stress-ng's arguments
  asked=""
  prev=""
  for a in "$@"; do
    [ "$prev" = --vm-bytes ] && asked=${a%\%}
    prev=$a
  done
  held=0
  i=0
  while [ "$i" -lt "$OVER_SECONDS" ] && alive; do
    r=$(rss)
    [ "$r" -gt "$held" ] && held=$r
    sleep 1
    i=$((i + 1))
  done
  alive || [ "$held" -gt 0 ] || { say "effect memory not measured: stress-ng ended before it was sampled"; return; }
  case ${asked:-x} in *[!0-9]*) say "effect memory held=${held}kB (no --vm-bytes percentage to judge it by)"; return ;; esac
  say "effect memory held=${held}kB asked=$((free_before / 100 * asked))kB ($asked% of ${free_before}kB free)"
}

measure_io() {
  # --hdd K: the workers asked, from stress-ng's arguments
  workers="?"
  prev=""
  for a in "$@"; do
    [ "$prev" = --hdd ] && workers=$a
    prev=$a
  done
  # Each process's counters at the start, "pid wchar rchar write_bytes read_bytes" a line:
  # only processes seen at both ends count (a worker that ended takes its counters with it).
  start=""
  for p in $(ours); do
    v=$(io_of "$p")
    [ -n "$v" ] && start="$start$p $v
"
  done
  s0=$(date +%s)
  sleep "$OVER_SECONDS"
  s1=$(date +%s)
  alive || { say "effect io not measured: stress-ng ended before $OVER_SECONDS s of it could be measured"; return; }
  [ -n "$start" ] || { say "effect io not measured: no /proc/PID/io of stress-ng's processes could be read"; return; }
  wsum=0 rsum=0 swsum=0 srsum=0 n=0
  for p in $(ours); do
    was=$(printf '%s' "$start" | sed -n "s/^$p //p")
    now=$(io_of "$p")
    [ -n "$was" ] && [ -n "$now" ] || continue
    # shellcheck disable=SC2086
    set -- $was $now
    wsum=$((wsum + $5 - $1))
    rsum=$((rsum + $6 - $2))
    swsum=$((swsum + $7 - $3))
    srsum=$((srsum + $8 - $4))
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || { say "effect io not measured: none of stress-ng's processes was there at both ends of ${OVER_SECONDS}s"; return; }
  secs=$((s1 - s0))
  [ "$secs" -gt 0 ] || secs=1
  say "effect io written=$((wsum / secs / 1024))kB/s read=$((rsum / secs / 1024))kB/s storage-written=$((swsum / secs / 1024))kB/s storage-read=$((srsum / secs / 1024))kB/s workers=$workers over=${secs}s"
}

if [ "$MEASURE" != none ]; then
  sleep "$WARM_SECONDS"
  if alive; then
    case $MEASURE in
      cpu) measure_cpu ;;
      memory) measure_memory "$@" ;;
      io) measure_io "$@" ;;
    esac
  else
    say "effect $MEASURE not measured: stress-ng ended within $WARM_SECONDS s"
  fi
  say "effect end"
fi
wait "$child"
