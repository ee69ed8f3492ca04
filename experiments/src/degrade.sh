#!/bin/sh
# firedrill network-degrade helper (POSIX sh: dash, busybox ash).
#
# Degrades one pod's network for a bounded time, then removes exactly what it
# added. Needs: sh, date, readlink, grep, nsenter, tc (iproute2), nft.
#
# Target (first that is set):
#   TARGET_PID (alias NETNS_PID)  enter the network namespace of this pid
#   CONTAINER_ID                  find a pid whose $PROC/PID/cgroup names this
#                                 id (scheme:// prefix allowed), enter its netns
#   neither                       act on the shell's own network namespace
#                                 (tests: ip netns exec NS sh degrade.sh)
#   A target sharing the netns of $PROC/$HOST_PID (default 1: the node's, as
#   for a hostNetwork pod) is refused; a test in a sandbox whose pid 1 is
#   unreadable passes HOST_PID=<a pid in the root netns>.
# Degradation (at least one; all apply to IFACE):
#   DELAY_MS, JITTER_MS, CORRELATION_PERCENT   tc netem delay, egress
#   LOSS_PERCENT (0-100, integer)              nft numgen drop
#   LOSS_DIRECTION ingress|egress|both         default ingress: packets that
#                    reach IFACE are dropped silently, like loss on the wire.
#                    An egress drop happens in the pod's own stack, which is
#                    told (ENOBUFS; EPERM in the inet family): ping resends at
#                    once, TCP takes it as local congestion (cwnd cut, no
#                    timeout); UDP sees nothing (netdev) or EPERM (inet).
#                    Partitions: LOSS_PERCENT=100 LOSS_DIRECTION=both.
#   RATE (e.g. 1mbit, 500kbit, 2mbps)          tc tbf, egress
#   BURST (default 32kb = 32 KiB), RATE_LATENCY_MS (default 100)   tbf knobs
#   DEST_CIDRS, DEST_PORTS   comma/space lists: only traffic to (egress) or
#                            from (ingress) these addresses / tcp+udp ports
# Other:
#   IFACE (default eth0)  PROC (default /proc)
#   DEADLINE (unix seconds) or HOLD_SECONDS (from now): one is required
#   TABLE (nft table name, default firedrill)
#   NFT_FAMILY auto|netdev|inet  where loss rules go (default auto: netdev,
#                 inet if the kernel has no netdev egress hook)
#   DRY_RUN=1     print the commands of apply and removal, change nothing
#   PING_ADDR     where the round-trip is measured to, from inside the target's
#                 network namespace (default: its default gateway)
# Report (what the runner reads back from the pod's log, after applying):
#   firedrill: effect rtt before|during MS ms to ADDR (N of 5 answered)
#   firedrill: effect rtt before|during not measured: WHY
#   firedrill: effect qdisc LINE          each line of tc qdisc show dev IFACE
#   firedrill: effect nft RULES|none      firedrill's nft table, on one line
#   firedrill: effect end
#   ACTION=remove remove what a helper killed with SIGKILL left behind (the
#                 nft table TABLE, a root qdisc with firedrill's handle fd01:)
# Exit: 0 = applied and removed again (deadline or SIGTERM/SIGINT/SIGHUP);
#       1 = bad configuration or apply failed (what was applied is removed);
#       3 = removal failed (something may be left: see stderr).
set -u

me=firedrill
say() { printf '%s: %s\n' "$me" "$*"; }
warn() { printf '%s: %s\n' "$me" "$*" >&2; }
die() { printf '%s: error: %s\n' "$me" "$*" >&2; exit 1; }

QH=fd01 # major handle of firedrill's root qdisc; fd02/fd03 below it
PROC="${PROC:-/proc}"
IFACE="${IFACE:-eth0}"
DELAY_MS="${DELAY_MS:-0}"
JITTER_MS="${JITTER_MS:-0}"
CORRELATION_PERCENT="${CORRELATION_PERCENT:-0}"
LOSS_PERCENT="${LOSS_PERCENT:-0}"
LOSS_DIRECTION="${LOSS_DIRECTION:-ingress}"
RATE="${RATE:-}"
BURST="${BURST:-32kb}"
RATE_LATENCY_MS="${RATE_LATENCY_MS:-100}"
DEST_CIDRS="${DEST_CIDRS:-}"
DEST_PORTS="${DEST_PORTS:-}"
TABLE="${TABLE:-firedrill}"
DEADLINE="${DEADLINE:-}"
# The helper pod says how long to hold (HOLD_SECONDS): its deadline counts from its own start.
if [ -z "$DEADLINE" ] && [ -n "${HOLD_SECONDS:-}" ]; then
  case "$HOLD_SECONDS" in '' | *[!0-9]*) die "HOLD_SECONDS '$HOLD_SECONDS' must be whole seconds" ;; esac
  DEADLINE=$(($(date +%s) + HOLD_SECONDS))
fi
DRY_RUN="${DRY_RUN:-}"
ACTION="${ACTION:-apply}"
NFT_FAMILY="${NFT_FAMILY:-auto}"
TARGET_PID="${TARGET_PID:-${NETNS_PID:-}}"
HOST_PID="${HOST_PID:-1}"
CONTAINER_ID="${CONTAINER_ID:-}"

# ---- validation ---------------------------------------------------------
uint() { # uint VALUE MAX
  case $1 in '' | *[!0-9]*) return 1 ;; esac
  [ "${#1}" -le 10 ] && [ "$1" -le "$2" ]
}
lists() { printf '%s' "$1" | tr ',' ' '; }

case $IFACE in '' | *[!A-Za-z0-9_.-]*) die "IFACE '$IFACE' is not an interface name" ;; esac
[ "${#IFACE}" -le 15 ] || die "IFACE '$IFACE' is longer than 15 characters"
case $TABLE in '' | *[!A-Za-z0-9_]*) die "TABLE '$TABLE' must be letters, digits, _" ;; esac
uint "$DELAY_MS" 60000 || die "DELAY_MS '$DELAY_MS' must be an integer 0-60000"
uint "$JITTER_MS" 60000 || die "JITTER_MS '$JITTER_MS' must be an integer 0-60000"
uint "$CORRELATION_PERCENT" 100 || die "CORRELATION_PERCENT '$CORRELATION_PERCENT' must be 0-100"
uint "$LOSS_PERCENT" 100 || die "LOSS_PERCENT '$LOSS_PERCENT' must be an integer 0-100"
uint "$RATE_LATENCY_MS" 60000 || die "RATE_LATENCY_MS '$RATE_LATENCY_MS' must be an integer 1-60000"
case $LOSS_DIRECTION in egress | ingress | both) ;; *) die "LOSS_DIRECTION '$LOSS_DIRECTION' must be egress, ingress or both" ;; esac
if [ "$DELAY_MS" -eq 0 ] && [ "$JITTER_MS" -gt 0 ]; then die "JITTER_MS needs DELAY_MS"; fi
if [ "$JITTER_MS" -eq 0 ] && [ "$CORRELATION_PERCENT" -gt 0 ]; then die "CORRELATION_PERCENT needs JITTER_MS"; fi
if [ -n "$RATE" ]; then
  num="${RATE%%[!0-9.]*}"
  unit="${RATE#"$num"}"
  case $num in '' | .* | *. | *.*.*) die "RATE '$RATE' must be a number and a unit, e.g. 1mbit" ;; esac
  case $unit in bit | kbit | mbit | gbit | tbit | bps | kbps | mbps | gbps | tbps) ;;
    *) die "RATE '$RATE': unit must be one of bit kbit mbit gbit tbit bps kbps mbps gbps tbps" ;; esac
  [ "$num" != 0 ] || die "RATE must be more than 0"
  bnum="${BURST%%[!0-9]*}"
  case ${BURST#"$bnum"} in '' | b | k | kb | m | mb | kbit | mbit) ;; *) bnum= ;; esac
  { uint "$bnum" 1000000000 && [ "$bnum" -gt 0 ]; } || die "BURST '$BURST' must be e.g. 32kb (bytes) or 256kbit"
  [ "$RATE_LATENCY_MS" -gt 0 ] || die "RATE_LATENCY_MS must be more than 0"
fi
cidr4="" cidr6=""
for c in $(lists "$DEST_CIDRS"); do
  case $c in *[!0-9A-Fa-f.:/]*) die "DEST_CIDRS: '$c' is not an address or CIDR" ;; esac
  case $c in
    *:*) cidr6="$cidr6${cidr6:+ }$c" ;;
    *.*.*.*) cidr4="$cidr4${cidr4:+ }$c" ;;
    *) die "DEST_CIDRS: '$c' is not an address or CIDR" ;;
  esac
done
ports=""
for p in $(lists "$DEST_PORTS"); do
  { uint "$p" 65535 && [ "$p" -gt 0 ]; } || die "DEST_PORTS: '$p' is not a port 1-65535"
  ports="$ports${ports:+ }$p"
done
uint "$HOST_PID" 9999999999 || die "HOST_PID '$HOST_PID' is not a pid"
case $NFT_FAMILY in auto | netdev | inet) ;; *) die "NFT_FAMILY '$NFT_FAMILY' must be auto, netdev or inet" ;; esac
case $ACTION in apply | remove) ;; *) die "ACTION '$ACTION' must be apply or remove" ;; esac
want_tc=0
if [ "$DELAY_MS" -gt 0 ] || [ -n "$RATE" ]; then want_tc=1; fi
if [ "$ACTION" = apply ]; then
  if [ "$want_tc" = 0 ] && [ "$LOSS_PERCENT" -eq 0 ]; then
    die "nothing to degrade: set DELAY_MS, LOSS_PERCENT or RATE"
  fi
  uint "$DEADLINE" 9999999999 || die "DEADLINE '$DEADLINE' must be unix seconds"
fi

# ---- target --------------------------------------------------------------
nsfd=0   # 1 when fd 3 holds the target's network namespace
where="its own network namespace"
if [ -n "$TARGET_PID" ]; then
  uint "$TARGET_PID" 9999999999 || die "TARGET_PID '$TARGET_PID' is not a pid"
  pid="$TARGET_PID"
  where="the network namespace of pid $pid"
elif [ -n "$CONTAINER_ID" ]; then
  id="${CONTAINER_ID##*://}"
  case $id in *[!0-9a-f]*) die "CONTAINER_ID '$CONTAINER_ID' is not a runtime id (hex)" ;; esac
  [ "${#id}" -ge 12 ] || die "CONTAINER_ID '$CONTAINER_ID' is too short"
  pid=""
  if [ -z "$DRY_RUN" ]; then
    for dir in "$PROC"/[0-9]*; do
      p="${dir##*/}"
      [ "$p" = "$$" ] && continue
      if grep -q -- "$id" "$dir/cgroup" 2>/dev/null; then pid="$p"; break; fi
    done
    [ -n "$pid" ] || die "no process of container $id on this node (searched $PROC/*/cgroup)"
  fi
  where="the network namespace of container $id${pid:+ (pid $pid)}"
else
  pid=""
fi

if [ -n "$pid" ] && [ -z "$DRY_RUN" ]; then
  # Hold the namespace open: every later command (and the removal) acts on
  # this very namespace even if the pid exits or is reused.
  command exec 3<"$PROC/$pid/ns/net" ||
    die "cannot open $PROC/$pid/ns/net (no such process, or CAP_SYS_PTRACE missing)"
  nsfd=1
  if [ -n "$CONTAINER_ID" ] && ! grep -q -- "$id" "$PROC/$pid/cgroup" 2>/dev/null; then
    die "pid $pid left container $id while it was being opened; try again"
  fi
fi
if [ -z "$DRY_RUN" ]; then
  if [ "$nsfd" = 1 ]; then target_ns=$(readlink /proc/self/fd/3); else target_ns=$(readlink /proc/self/ns/net); fi
  host_ns=$(readlink "$PROC/$HOST_PID/ns/net") ||
    die "cannot read $PROC/$HOST_PID/ns/net, so cannot tell the target from the node's network (CAP_SYS_PTRACE missing?)"
  [ -n "$target_ns" ] || die "cannot read the target's network namespace"
  [ "$target_ns" != "$host_ns" ] ||
    die "the target is in the node's network namespace ($host_ns: hostNetwork pod, or not run in a test netns); refusing"
  where="$where, $target_ns"
fi

# inside: run a command in the target's network namespace.
inside() {
  if [ "$nsfd" = 1 ]; then nsenter --net=/proc/self/fd/3 "$@"; else "$@"; fi
}
# act: print a changing command, run it unless DRY_RUN.
act() {
  say "+ $*"
  [ -n "$DRY_RUN" ] && return 0
  inside "$@"
}
# act_nft RULES: print and load an nft script atomically (all or nothing).
act_nft() {
  say "+ nft -f - <<EOF"
  printf '%s\n' "$1" | sed 's/^/    /'
  say "  EOF"
  [ -n "$DRY_RUN" ] && return 0
  printf '%s\n' "$1" | inside nft -f -
}
root_qdisc() { # prints "KIND HANDLE" of IFACE's root qdisc
  line=$(inside tc qdisc show dev "$IFACE" root) || return 1
  # shellcheck disable=SC2086
  set -- $line
  [ "${1:-}" = qdisc ] || return 1
  printf '%s %s\n' "$2" "$3"
}
has_table() { inside nft list table "$1" "$TABLE" >/dev/null 2>&1; }

if [ -z "$DRY_RUN" ]; then
  need="tc nft"
  [ "$nsfd" = 1 ] && need="$need nsenter"
  for tool in $need; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed in this image"
  done
  if [ "$nsfd" = 1 ] && ! err=$(inside true 2>&1); then
    die "cannot enter $where: $err (setns needs CAP_SYS_ADMIN)"
  fi
  inside tc qdisc show dev "$IFACE" >/dev/null 2>&1 || die "no interface $IFACE in $where"
fi

# ---- removal -------------------------------------------------------------
tc_tried=0 nft_family="" prior_qdisc="" cleaned=0 sleeper=""
remove() {
  [ "$cleaned" = 1 ] && return 0
  cleaned=1
  trap '' TERM INT HUP
  [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
  bad=0
  if [ -n "$DRY_RUN" ]; then
    [ -n "$nft_family" ] && act nft delete table "$nft_family" "$TABLE"
    [ "$tc_tried" = 1 ] && act tc qdisc del dev "$IFACE" root
    return 0
  fi
  if [ -n "$nft_family" ] && has_table "$nft_family"; then
    act nft delete table "$nft_family" "$TABLE" || true
    if has_table "$nft_family"; then
      warn "error: nft table $nft_family $TABLE is still there"; bad=1
    fi
  fi
  if [ "$tc_tried" = 1 ]; then
    now_q=$(root_qdisc)
    case $now_q in
      *" $QH:")
        act tc qdisc del dev "$IFACE" root || true
        now_q=$(root_qdisc)
        case $now_q in *" $QH:") warn "error: firedrill's qdisc is still the root of $IFACE"; bad=1 ;; esac
        ;;
    esac
    if [ "$now_q" = "$prior_qdisc" ]; then
      say "root qdisc of $IFACE is back to: $now_q"
    elif [ "$bad" = 0 ]; then
      warn "note: root qdisc of $IFACE was '$prior_qdisc' before, is '$now_q' now"
    fi
  fi
  return "$bad"
}
# shellcheck disable=SC2317 # (trap handlers)
on_exit() {
  st=$?
  remove || st=3
  exit "$st"
}
# shellcheck disable=SC2317
on_signal() {
  say "got SIG$1: removing the degradation"
  st=0
  remove || st=3
  exit "$st"
}
trap on_exit EXIT
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT
trap 'on_signal HUP' HUP

# ---- ACTION=remove: clear what a SIGKILLed helper left -----------------------
if [ "$ACTION" = remove ]; then
  say "removing firedrill's leftovers on $IFACE in $where"
  if [ -n "$DRY_RUN" ]; then
    act nft delete table netdev "$TABLE"
    act nft delete table inet "$TABLE"
    act tc qdisc del dev "$IFACE" root
    say "(dry run: each only if present; the qdisc only if its handle is $QH:)"
    exit 0
  fi
  for fam in netdev inet; do
    if has_table "$fam"; then
      act nft delete table "$fam" "$TABLE" || die "cannot delete nft table $fam $TABLE"
    fi
  done
  q=$(root_qdisc) || q=""
  case $q in *" $QH:") act tc qdisc del dev "$IFACE" root || die "cannot delete the root qdisc of $IFACE" ;; esac
  say "nothing of firedrill's is left on $IFACE (root qdisc: ${q:-?} before)"
  exit 0
fi

# ---- the round-trip, from inside the target's network namespace ---------------
PING_ADDR="${PING_ADDR:-}"
case $PING_ADDR in *[!0-9A-Fa-f.:]*) die "PING_ADDR '$PING_ADDR' is not an address" ;; esac
# rtt before|during: ping 5 times; the average said, or why there is none (never a guess).
rtt() {
  if ! command -v ping >/dev/null 2>&1; then
    say "effect rtt $1 not measured: ping is not in this image"; return 0
  fi
  addr=$PING_ADDR
  if [ -z "$addr" ]; then
    addr=$(inside ip route show default 2>/dev/null | sed -n 's/^default via \([^ ]*\).*/\1/p' | head -n 1)
  fi
  if [ -z "$addr" ]; then
    say "effect rtt $1 not measured: no default gateway in $where (PING_ADDR names a peer)"; return 0
  fi
  out=$(inside ping -n -q -c 5 -i 0.2 -W 1 -w 3 "$addr" 2>&1)
  got=$(printf '%s\n' "$out" | sed -n 's/^.* \([0-9][0-9]*\) \(packets \)\{0,1\}received.*$/\1/p' | head -n 1)
  avg=$(printf '%s\n' "$out" | sed -n 's/^.*= [0-9.]*\/\([0-9.]*\)\/.*$/\1/p' | head -n 1)
  if [ -n "$avg" ]; then
    say "effect rtt $1 $avg ms to $addr (${got:-?} of 5 answered)"
  else
    say "effect rtt $1 not measured: no answer from $addr (${got:-0} of 5 answered): $(printf '%s' "$out" | tail -n 1)"
  fi
}
[ -z "$DRY_RUN" ] && rtt before

# ---- apply ---------------------------------------------------------------
now=$(date +%s)
if [ -z "$DRY_RUN" ] && [ "$DEADLINE" -le "$now" ]; then
  die "DEADLINE $DEADLINE has already passed (now $now); nothing applied"
fi
if [ "$DEADLINE" -gt "$now" ]; then left=" (in $((DEADLINE - now)) s)"; else left=""; fi
say "degrading $IFACE in $where until $DEADLINE$left${DRY_RUN:+ [dry run]}"

# nft matches for DEST_CIDRS / DEST_PORTS (empty when unrestricted)
restrict() { # restrict ip|ip6 CIDRS daddr|saddr dport|sport
  m=""
  if [ -n "$2" ]; then m="$1 $3 { $(printf '%s' "$2" | sed 's/ /, /g') } "; fi
  if [ -n "$ports" ]; then m="${m}meta l4proto { tcp, udp } th $4 { $(printf '%s' "$ports" | sed 's/ /, /g') } "; fi
  printf '%s' "$m"
}
loss_rules() { # loss_rules FAMILY CHAIN daddr|saddr dport|sport IFMATCH
  drop="numgen random mod 100 < $LOSS_PERCENT counter drop"
  [ "$LOSS_PERCENT" -eq 100 ] && drop="counter drop"
  if [ -z "$cidr4$cidr6" ]; then
    echo "add rule $1 $TABLE $2 $5$(restrict ip '' "$3" "$4")$drop"
  else
    [ -n "$cidr4" ] && echo "add rule $1 $TABLE $2 $5$(restrict ip "$cidr4" "$3" "$4")$drop"
    [ -n "$cidr6" ] && echo "add rule $1 $TABLE $2 $5$(restrict ip6 "$cidr6" "$3" "$4")$drop"
  fi
}
nft_script() { # nft_script netdev|inet
  # The rules match only while IFACE is in the set "armed", whose element
  # expires at DEADLINE: loss ends on time even if this shell is SIGKILLed.
  ttl=$((DEADLINE - now))
  [ "$ttl" -ge 1 ] || ttl=1
  echo "create table $1 $TABLE"
  echo "add set $1 $TABLE armed { type ifname; flags timeout; }"
  echo "add element $1 $TABLE armed { \"$IFACE\" timeout ${ttl}s }"
  for dir in egress ingress; do
    [ "$LOSS_DIRECTION" = both ] || [ "$LOSS_DIRECTION" = "$dir" ] || continue
    if [ "$dir" = egress ]; then a=daddr pp=dport ifm="oifname @armed "; else a=saddr pp=sport ifm="iifname @armed "; fi
    if [ "$1" = netdev ]; then
      echo "add chain netdev $TABLE $dir { type filter hook $dir device \"$IFACE\" priority -300; policy accept; }"
    else
      if [ "$dir" = egress ]; then hook=output; else hook=input; fi
      echo "add chain inet $TABLE $dir { type filter hook $hook priority -300; policy accept; }"
    fi
    loss_rules "$1" "$dir" "$a" "$pp" "$ifm"
  done
}

at() { if [ "$1" = root ]; then echo root; else echo parent "$1"; fi; }
if [ "$want_tc" = 1 ]; then
  if [ -z "$DRY_RUN" ]; then
    prior_qdisc=$(root_qdisc) || die "cannot read the qdisc of $IFACE in $where (no such interface?)"
    case $prior_qdisc in
      *" 0:") ;;
      *" $QH:") die "$IFACE already has firedrill's qdisc ($prior_qdisc): another degrade is running, or a killed one left it (ACTION=remove clears it)" ;;
      *) die "$IFACE has a configured root qdisc ($prior_qdisc), not the kernel's default; refusing to replace what could not be restored exactly" ;;
    esac
  fi
  netem=""
  if [ "$DELAY_MS" -gt 0 ]; then
    netem="netem delay ${DELAY_MS}ms"
    [ "$JITTER_MS" -gt 0 ] && netem="$netem ${JITTER_MS}ms"
    [ "$CORRELATION_PERCENT" -gt 0 ] && netem="$netem ${CORRELATION_PERCENT}%"
  fi
  tbf=""
  [ -n "$RATE" ] && tbf="tbf rate $RATE burst $BURST latency ${RATE_LATENCY_MS}ms"
  tc_tried=1
  if [ -n "$cidr4$cidr6$ports" ]; then
    # Only matching traffic goes to class 1 (shaped); the rest goes htb's
    # direct queue (default 0), untouched.
    act tc qdisc add dev "$IFACE" root handle $QH: htb default 0 ||
      die "tc could not add the htb root qdisc on $IFACE"
    act tc class add dev "$IFACE" parent $QH: classid $QH:1 htb rate 100gbit quantum 60000 ||
      die "tc could not add the shaped htb class"
    parent="$QH:1" next=fd02
    for fam in ip ip6; do
      if [ $fam = ip ]; then cs="$cidr4" proto=ip; else cs="$cidr6" proto=ipv6; fi
      [ -z "$cidr4$cidr6" ] && { [ $fam = ip ] && cs=0.0.0.0/0 || cs=::/0; }
      for c in $cs; do
        if [ -z "$ports" ]; then
          act tc filter add dev "$IFACE" parent $QH: protocol $proto prio 1 u32 match $fam dst "$c" flowid $QH:1 ||
            die "tc could not add a filter for $c"
        else
          for p in $ports; do
            for l4 in 6 17; do
              act tc filter add dev "$IFACE" parent $QH: protocol $proto prio 1 u32 match $fam dst "$c" \
                match $fam protocol $l4 0xff match $fam dport "$p" 0xffff flowid $QH:1 ||
                die "tc could not add a filter for $c port $p"
            done
          done
        fi
      done
    done
  else
    parent=root next=$QH
  fi
  if [ -n "$netem" ]; then
    # shellcheck disable=SC2046,SC2086
    act tc qdisc add dev "$IFACE" $(at "$parent") handle $next: $netem ||
      die "tc could not add netem on $IFACE (is the sch_netem kernel module there?)"
    parent="$next:1"
    [ "$next" = $QH ] && next=fd02 || next=fd03
  fi
  if [ -n "$tbf" ]; then
    # shellcheck disable=SC2046,SC2086
    act tc qdisc add dev "$IFACE" $(at "$parent") handle $next: $tbf ||
      die "tc could not add tbf on $IFACE"
  fi
fi

if [ "$LOSS_PERCENT" -gt 0 ]; then
  for fam in netdev inet; do
    if [ -z "$DRY_RUN" ] && has_table "$fam"; then
      die "nft table $fam $TABLE already exists: another degrade is running, or a killed one left it (ACTION=remove clears it)"
    fi
  done
  # netdev family: drops at the device, before tc (ingress hook: any kernel
  # with nftables; egress hook: Linux >= 5.16, where a drop reads ENOBUFS to
  # the sender). Older kernels, egress: inet output/input hooks on IFACE,
  # where a dropped packet fails its sendmsg with EPERM.
  if [ "$NFT_FAMILY" = inet ]; then
    nft_family=inet
    act_nft "$(nft_script inet)" || { nft_family=""; die "nft could not add the loss rules (inet table)"; }
  else
    nft_family=netdev
    if ! act_nft "$(nft_script netdev)"; then
      if [ "$NFT_FAMILY" = netdev ] || [ "$LOSS_DIRECTION" = ingress ]; then
        nft_family=""; die "nft could not add the loss rules (netdev table on $IFACE)"
      fi
      warn "the netdev egress hook is not there (Linux < 5.16?): falling back to inet output/input"
      nft_family=inet
      act_nft "$(nft_script inet)" || { nft_family=""; die "nft could not add the loss rules (inet table)"; }
    fi
  fi
fi

if [ -n "$DRY_RUN" ]; then
  say "(dry run: would now wait until $DEADLINE, then remove)"
  remove
  exit 0
fi
say "applied; waiting until $DEADLINE"
# What is in place now, as the kernel lists it, and the round-trip through it.
rtt during
inside tc qdisc show dev "$IFACE" 2>&1 | while IFS= read -r line; do say "effect qdisc $line"; done
if [ -n "$nft_family" ]; then
  say "effect nft $(inside nft list table "$nft_family" "$TABLE" 2>&1 | tr -s ' \t\n' ' ')"
else
  say "effect nft none"
fi
say "effect end"

# ---- wait ------------------------------------------------------------------
while :; do
  now=$(date +%s)
  [ "$now" -ge "$DEADLINE" ] && break
  sleep "$((DEADLINE - now))" &
  sleeper=$!
  wait "$sleeper"
  sleeper=""
done
say "deadline $DEADLINE reached: removing the degradation"
st=0
remove || st=3
exit "$st"
