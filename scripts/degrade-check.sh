#!/usr/bin/env bash
# End-to-end check of network-degrade's helper script (experiments/src/degrade.sh, what the helper
# pod runs) in throw-away network namespaces, with real traffic (run as root; runner/tests/degrade.rs
# runs it). Loss, partition, rate, the netem command where the kernel lacks netem, removal on
# SIGTERM/SIGINT/SIGHUP and at the deadline, what a SIGKILL leaves (loss still ends at the
# deadline), and the three capabilities the helper keeps.
# Needs: ip, tc, nft, ping, setpriv, python3, dash (falls back to sh).
# Layout: netns fd-a (10.99.0.1, eth0) <-veth-> netns fd-b (10.99.0.2, eth0).
# degrade.sh runs inside fd-a (ip netns exec fd-a sh degrade.sh: no container
# id, it acts on its own netns), except the capability check, which runs it
# from the root netns with only NET_ADMIN, SYS_ADMIN, SYS_PTRACE against a
# uid-1000 process in fd-b, found by container id through a fake proc root.
set -u
here=$(cd "$(dirname "$0")" && pwd)
SCRIPT=${SCRIPT:-$here/../experiments/src/degrade.sh}
SH=${SH:-$(command -v dash || echo sh)} # e.g. SH="busybox sh"
read -ra SHC <<<"$SH"
A=fd-a B=fd-b C=fd-c IPA=10.99.0.1 IPB=10.99.0.2
work=$(mktemp -d /tmp/degrade-test.XXXXXX)
fails=0 passes=0 started=$SECONDS
bg_pids=()

cleanup() {
  for p in "${bg_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null; ip netns del $C 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
ok() { passes=$((passes + 1)); echo "  ok: $*"; }
bad() { fails=$((fails + 1)); echo "  FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
in_range() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }

cat >"$work/net.py" <<'EOF'
import socket, sys, time
mode = sys.argv[1]
if mode == "udprecv":   # port window_s -> datagrams received in the window
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("0.0.0.0", int(sys.argv[2])))
    end = time.time() + float(sys.argv[3]); n = 0
    while True:
        left = end - time.time()
        if left <= 0: break
        s.settimeout(left)
        try: s.recv(2048); n += 1
        except socket.timeout: break
    print(n)
elif mode == "udpsend":  # host port count (a refused send counts as lost)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(int(sys.argv[4])):
        try: s.sendto(b"x" * 64, (sys.argv[2], int(sys.argv[3])))
        except OSError: pass
        if i % 20 == 0: time.sleep(0.002)
elif mode == "tcprecv":  # port window_s -> bits/s over window from first byte
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", int(sys.argv[2]))); l.listen(1); l.settimeout(5)
    c, _ = l.accept(); c.settimeout(5)
    first = c.recv(65536); t0 = time.time(); n = 0
    end = t0 + float(sys.argv[3])
    while time.time() < end:
        c.settimeout(max(end - time.time(), 0.01))
        try:
            b = c.recv(65536)
            if not b: break
            n += len(b)
        except socket.timeout: break
    print(int(n * 8 / (time.time() - t0)))
    c.close()
elif mode == "tcpsend":  # host port max_s
    c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5)
    end = time.time() + float(sys.argv[4]); buf = b"y" * 65536
    try:
        while time.time() < end: c.send(buf)
    except OSError: pass
EOF

# ---- helpers ----------------------------------------------------------------
ping_loss() { # ns dst count [interval wait] -> loss percent (number)
  ip netns exec "$1" ping -q -c "$3" -i "${4:-0.002}" -W "${5:-0.5}" "$2" 2>/dev/null |
    sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p'
}
udp_loss() { # from_ns to_ns to_ip count [port] -> loss percent
  local port=${5:-$((20000 + RANDOM % 20000))}
  ip netns exec "$2" python3 "$work/net.py" udprecv $port 0.5 >"$work/udp" &
  local r=$!
  sleep 0.15
  ip netns exec "$1" python3 "$work/net.py" udpsend "$3" $port "$4"
  wait $r
  awk -v n="$(cat "$work/udp")" -v c="$4" 'BEGIN { printf "%.1f", 100 * (c - n) / c }'
}
tcp_rate() { # from_ns to_ns to_ip port window_s -> bits/s measured at receiver
  ip netns exec "$2" python3 "$work/net.py" tcprecv "$4" "$5" >"$work/tcp" &
  local r=$!
  sleep 0.15
  ip netns exec "$1" python3 "$work/net.py" tcpsend "$3" "$4" "$(awk -v w="$5" 'BEGIN{print w+1}')" &
  local s=$!
  wait $r; kill $s 2>/dev/null; wait $s 2>/dev/null
  cat "$work/tcp"
}
human() { awk -v b="$1" 'BEGIN { if (b >= 1e9) printf "%.2f Gbit/s", b/1e9; else if (b >= 1e6) printf "%.2f Mbit/s", b/1e6; else printf "%.0f kbit/s", b/1e3 }'; }
state() { # ns -> its qdiscs and nft tables
  ip netns exec "$1" tc qdisc show; ip netns exec "$1" nft list tables
}
start() { # ns env... : start degrade.sh in ns in background, wait until applied
  local ns=$1; shift
  : >"$work/out"; : >"$work/err"
  # bash starts background jobs with SIGINT ignored, and a shell cannot trap
  # a signal ignored at its start (POSIX); a container runtime starts its
  # process with default dispositions, as this wrapper does.
  ip netns exec "$ns" env HOST_PID=$$ "$@" python3 -c '
import os, signal, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP): signal.signal(s, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "${SHC[@]}" "$SCRIPT" >"$work/out" 2>"$work/err" &
  dpid=$!
  bg_pids+=("$dpid")
  for _ in $(seq 50); do
    grep -q "applied; waiting" "$work/out" && return 0
    kill -0 "$dpid" 2>/dev/null || break
    sleep 0.05
  done
  echo "  degrade.sh did not apply:"; sed 's/^/    /' "$work/out" "$work/err"; return 1
}
stop() { # signal -> waits for degrade.sh, sets drc
  kill -"$1" "$dpid"; { wait "$dpid"; } 2>/dev/null; drc=$?
}
clean_exit() { [ "$drc" = 0 ] && [ "$(state $A)" = "$before" ]; }
deadline() { echo $(($(date +%s) + ${1:-60})); }

# ---- setup ------------------------------------------------------------------
ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null; ip netns del $C 2>/dev/null
ip netns add $A && ip netns add $B && ip netns add $C &&
  ip -n $C link add eth0 type veth peer name eth1 && ip -n $C link set eth0 up &&
  ip link add eth0 netns $A type veth peer name eth0 netns $B &&
  ip -n $A addr add $IPA/24 dev eth0 && ip -n $B addr add $IPB/24 dev eth0 &&
  ip -n $A link set eth0 up && ip -n $B link set eth0 up &&
  ip -n $A link set lo up && ip -n $B link set lo up || { echo "setup failed"; exit 1; }
before=$(state $A)
echo "shell: $SH; $A before: $(echo "$before" | tr '\n' ';')"

# Section 5 runs meanwhile in netns C: deadline in 3 s, no signal.
beforeC=$(state $C); t5=$(date +%s.%N)
{ ip netns exec $C env HOST_PID=$$ LOSS_PERCENT=50 RATE=1mbit DEADLINE=$(($(date +%s) + 3)) "${SHC[@]}" "$SCRIPT" >"$work/out5" 2>&1
  echo "$? $(date +%s.%N)" >"$work/end5"; } &
d5=$!; bg_pids+=("$d5")
for _ in $(seq 40); do grep -q "applied; waiting" "$work/out5" 2>/dev/null && break; sleep 0.05; done
during5=no
ip netns exec $C nft list table netdev firedrill >/dev/null 2>&1 && ip netns exec $C tc qdisc show dev eth0 | grep -q fd01: && during5=yes

echo "== [$((SECONDS - started))s] 0. DRY_RUN prints, changes nothing"
out=$(ip netns exec $A env DRY_RUN=1 DEADLINE=1 DELAY_MS=100 JITTER_MS=10 RATE=1mbit LOSS_PERCENT=30 "${SHC[@]}" "$SCRIPT" 2>&1); rc=$?
echo "$out" | sed 's/^/    /'
check "dry run exits 0" [ $rc = 0 ]
check "dry run prints the netem command" grep -q "+ tc qdisc add dev eth0 root handle fd01: netem delay 100ms 10ms" <<<"$out"
check "dry run changed nothing" [ "$(state $A)" = "$before" ]

echo "== [$((SECONDS - started))s] 1. loss 30% (default direction: ingress)"
base=$(ping_loss $A $IPB 300); echo "  baseline ping loss: $base%"
check "baseline loss is 0 (<=1)" in_range "$base" 0 1
start $A LOSS_PERCENT=30 DEADLINE="$(deadline)" || bad "start"
l=$(ping_loss $A $IPB 300); echo "  ping $A->$IPB during (replies dropped on $A's ingress): $l%"
check "ping loss 30% +-12" in_range "$l" 18 42
u=$(udp_loss $B $A $IPA 1000); echo "  udp $B->$A (ingress of $A): $u%"
check "udp ingress loss 30% +-8" in_range "$u" 22 38
u=$(udp_loss $A $B $IPB 1000); echo "  udp $A->$B (egress of $A, not degraded): $u%"
check "egress untouched" in_range "$u" 0 1
stop TERM; echo "  degrade.sh exit after SIGTERM: $drc; its last lines:"; tail -2 "$work/out" | sed 's/^/    /'
check "exit 0 after SIGTERM" [ $drc = 0 ]
check "state back to before (qdiscs, no nft table)" [ "$(state $A)" = "$before" ]
l=$(ping_loss $A $IPB 300); echo "  ping loss after: $l%"
check "loss back to 0 (<=1)" in_range "$l" 0 1

echo "== [$((SECONDS - started))s] 1b. loss 30% egress"
start $A LOSS_PERCENT=30 LOSS_DIRECTION=egress DEADLINE="$(deadline)" || bad "start"
u=$(udp_loss $A $B $IPB 1000); echo "  udp $A->$B (egress of $A): $u%"
check "udp egress loss 30% +-8" in_range "$u" 22 38
l=$(ping_loss $A $IPB 100)
echo "  ping $A->$IPB: $l% (egress drops read as ENOBUFS to ping, which sends again)"
stop INT
check "exit 0 after SIGINT, state back" clean_exit

echo "== [$((SECONDS - started))s] 2. partition: loss 100% both ways"
start $A LOSS_PERCENT=100 LOSS_DIRECTION=both DEADLINE="$(deadline)" || bad "start"
l=$(ping_loss $A $IPB 30 0.01 0.3); echo "  ping $A->$IPB: $l%"
check "ping loss 100%" in_range "$l" 100 100
l=$(ping_loss $B $IPA 30 0.01 0.3); echo "  ping $B->$IPA: $l%"
check "ping loss 100% other way" in_range "$l" 100 100
u=$(udp_loss $A $B $IPB 300); echo "  udp $A->$B: $u%"
check "udp egress 100%" in_range "$u" 100 100
stop HUP
check "exit 0 after SIGHUP, state back" clean_exit

echo "== [$((SECONDS - started))s] 2b. loss in the inet family (old kernels), restricted: v4+v6 CIDRs, ports"
start $A LOSS_PERCENT=100 LOSS_DIRECTION=both NFT_FAMILY=inet DEST_CIDRS=$IPB,fd00::/8 DEST_PORTS=7001,7002 DEADLINE="$(deadline)" || bad "start"
ip netns exec $A nft list table inet firedrill | grep -E "@armed" | sed 's/^\t*/    /'
u=$(udp_loss $A $B $IPB 200 7001); echo "  udp to port 7001: $u%"
check "matching udp dropped" in_range "$u" 100 100
u=$(udp_loss $A $B $IPB 200 7003); echo "  udp to port 7003: $u%"
check "other port untouched" in_range "$u" 0 1
stop TERM
check "exit 0, state back" clean_exit

echo "== [$((SECONDS - started))s] 3. rate 1mbit (tbf)"
r0=$(tcp_rate $A $B $IPB 5001 0.3); echo "  tcp $A->$B before: $(human "$r0")"
start $A RATE=1mbit DEADLINE="$(deadline)" || bad "start"
ip netns exec $A tc qdisc show dev eth0 | sed 's/^/    /'
r1=$(tcp_rate $A $B $IPB 5002 1.5); echo "  tcp $A->$B during: $(human "$r1")"
check "throughput 0.8-1.4 Mbit/s (1mbit + 32 KiB burst)" in_range "$r1" 800000 1400000
stop TERM
check "exit 0, state back" clean_exit
r2=$(tcp_rate $A $B $IPB 5003 0.3); echo "  tcp $A->$B after: $(human "$r2")"
check "throughput back above 50 Mbit/s" in_range "$r2" 50000000 1e15

echo "== [$((SECONDS - started))s] 3b. rate 1mbit restricted to $IPB port 5005 (htb + u32)"
start $A RATE=1mbit DEST_CIDRS=$IPB/32 DEST_PORTS=5005 DEADLINE="$(deadline)" || bad "start"
r1=$(tcp_rate $A $B $IPB 5005 1); echo "  tcp to port 5005: $(human "$r1")"
check "matching traffic shaped" in_range "$r1" 700000 1500000
r2=$(tcp_rate $A $B $IPB 5006 0.3); echo "  tcp to port 5006: $(human "$r2")"
check "other traffic not shaped" in_range "$r2" 50000000 1e15
stop TERM
check "exit 0, state back" clean_exit

echo "== [$((SECONDS - started))s] 4. delay 100ms without netem: clean failure"
ip netns exec $A env HOST_PID=$$ DELAY_MS=100 DEADLINE="$(deadline)" "${SHC[@]}" "$SCRIPT" >"$work/out" 2>"$work/err"; rc=$?
sed 's/^/    out: /' "$work/out"; sed 's/^/    err: /' "$work/err"
check "exit 1" [ $rc = 1 ]
check "stderr names netem" grep -q "could not add netem" "$work/err"
check "nothing left" [ "$(state $A)" = "$before" ]
echo "  -- half way: htb root, class, filter added, then netem fails"
ip netns exec $A env HOST_PID=$$ DELAY_MS=100 LOSS_PERCENT=10 DEST_CIDRS=$IPB DEADLINE="$(deadline)" "${SHC[@]}" "$SCRIPT" >"$work/out" 2>"$work/err"; rc=$?
sed 's/^/    out: /' "$work/out"; sed 's/^/    err: /' "$work/err"
check "exit 1" [ $rc = 1 ]
check "htb removed again" grep -q "+ tc qdisc del dev eth0 root" "$work/out"
check "nothing left" [ "$(state $A)" = "$before" ]

echo "== [$((SECONDS - started))s] 5. deadline now+3, no signal (run in netns $C since section 0)"
{ wait "$d5" 2>/dev/null; } ; read -r rc5 end5 <"$work/end5"
el=$(awk -v a="$t5" -v b="$end5" 'BEGIN { printf "%.2f", b - a }')
echo "  degrade.sh exited $rc5 after ${el}s without a signal: $(grep reached "$work/out5")"
check "table and qdisc were there while it ran" [ "$during5" = yes ]
check "exit 0 within 2-3.5 s" eval '[ "$rc5" = 0 ] && in_range "$el" 2 3.5'
check "state of $C back" [ "$(state $C)" = "$beforeC" ]
check "passed deadline refused" bash -c "! ip netns exec $A env HOST_PID=$$ LOSS_PERCENT=5 DEADLINE=1 $SH $SCRIPT 2>/dev/null"

echo "== [$((SECONDS - started))s] 6. kill -9: rules stay; loss expires at DEADLINE by itself; ACTION=remove clears the rest"
dl=$(($(date +%s) + 2))
start $A LOSS_PERCENT=100 RATE=1mbit DEADLINE=$dl || bad "start"
stop KILL
l=$(ping_loss $A $IPB 20 0.01 0.2); echo "  ping right after kill -9: $l%"
check "still degraded after SIGKILL" in_range "$l" 100 100
while [ "$(date +%s)" -le $dl ]; do sleep 0.1; done
echo "  left behind after DEADLINE:"; state $A | sed 's/^/    /'
check "table and qdisc left (SIGKILL cannot be trapped)" bash -c "ip netns exec $A nft list table netdev firedrill >/dev/null && ip netns exec $A tc qdisc show dev eth0 | grep -q fd01:"
l=$(ping_loss $A $IPB 100); echo "  ping after DEADLINE: $l% (set element expired)"
check "loss over at DEADLINE without the helper" in_range "$l" 0 1
ip netns exec $A env HOST_PID=$$ LOSS_PERCENT=30 RATE=1mbit DEADLINE="$(deadline)" "${SHC[@]}" "$SCRIPT" >"$work/out" 2>"$work/err"; rc=$?
echo "  a new run: rc $rc: $(cat "$work/err")"
check "a new run refuses the leftover" [ $rc = 1 ]
check "and leaves it be" bash -c "ip netns exec $A tc qdisc show dev eth0 | grep -q fd01:"
ip netns exec $A env HOST_PID=$$ ACTION=remove "${SHC[@]}" "$SCRIPT" | sed 's/^/    /'
check "ACTION=remove restores the state" [ "$(state $A)" = "$before" ]

echo "== [$((SECONDS - started))s] 7. capabilities: only NET_ADMIN SYS_ADMIN SYS_PTRACE, from the root netns, container id, target uid 1000"
ip netns exec $B setpriv --reuid=1000 --regid=1000 --clear-groups sleep 60 &
victim=$!; bg_pids+=("$victim"); sleep 0.2
id=0123456789abcdef0123456789abcdef
proc=$work/proc
mkdir -p "$proc/$victim/ns" "$proc/$$/ns" "$proc/999999"
echo "0::/kubepods.slice/cri-containerd-$id.scope" >"$proc/$victim/cgroup"
ln -s /proc/$victim/ns/net "$proc/$victim/ns/net"
echo "0::/kubepods.slice/cri-containerd-ffffffffffffffff.scope" >"$proc/999999/cgroup"
echo "0::/" >"$proc/$$/cgroup"; ln -s /proc/$$/ns/net "$proc/$$/ns/net"
# shellcheck disable=SC2034 # (used in eval)
beforeB=$(state $B)
limited() { # limited "CAP..." cmd... -> exec cmd as root with only those capabilities
  local b=-all c; for c in $1; do b="$b,+$c"; done; shift
  exec setpriv --no-new-privs --inh-caps=-all --ambient-caps=-all --bounding-set="$b" "$@"
}
caps() { # caps "CAP..." env... -> exec degrade.sh with only those capabilities, by container id (call in a subshell)
  local list=$1; shift
  limited "$list" env PROC="$proc" HOST_PID=$$ CONTAINER_ID="containerd://$id" "$@" "${SHC[@]}" "$SCRIPT"
}
(limited "net_admin sys_admin sys_ptrace" grep Cap /proc/self/status) | sed 's/^/    under setpriv: /'
caps "net_admin sys_admin sys_ptrace" LOSS_PERCENT=100 LOSS_DIRECTION=both DEADLINE="$(deadline)" >"$work/out" 2>"$work/err" &
cp=$!; bg_pids+=("$cp")
for _ in $(seq 50); do grep -q "applied; waiting" "$work/out" && break; sleep 0.05; done
l=$(ping_loss $A $IPB 30 0.01 0.3); echo "  ping $A->$IPB with fd-b partitioned by the 3-cap helper: $l%"
check "3 caps: applied in the target's netns" in_range "$l" 100 100
kill -TERM $cp; wait $cp; rc=$?; head -1 "$work/out" | sed 's/^/    /'
check "3 caps: exit 0 after SIGTERM, fd-b back to before" eval '[ $rc = 0 ] && [ "$(state $B)" = "$beforeB" ]'
[ $rc = 0 ] || sed 's/^/    /' "$work/err"
for drop in sys_ptrace sys_admin net_admin; do
  list=$(echo net_admin sys_admin sys_ptrace | sed "s/$drop//")
  (caps "$list" LOSS_PERCENT=30 DEADLINE="$(deadline 2)" >"$work/out" 2>"$work/err"); rc=$?
  echo "  without $drop: rc $rc: $(grep -v '^firedrill: +' "$work/err" | tr '\n' ' ')"
  check "without $drop: fails (rc 1), fd-b untouched" eval '[ $rc = 1 ] && [ "$(state $B)" = "$beforeB" ]'
done
kill $victim 2>/dev/null

echo
echo "took $((SECONDS - started)) s"
echo "$passes passed, $fails failed"
[ $fails = 0 ]
