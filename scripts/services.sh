#!/usr/bin/env bash
# Starts the real services the tests talk to, on loopback, with throwaway state:
#   Prometheus Pushgateway, Prometheus (scraping that Pushgateway every second), Alertmanager,
#   PostgreSQL (a throwaway cluster; tests create a database each; it allows streaming replication,
#     so a test can make a standby of it with scripts/pg-replica.sh),
#   moto's server (the Route53 API, for the DNS failover tests).
# Exports FIREDRILL_TEST_PUSHGATEWAY, FIREDRILL_TEST_PROMETHEUS, FIREDRILL_TEST_ALERTMANAGER,
#   FIREDRILL_TEST_POSTGRES, FIREDRILL_TEST_MOTO.
# Also installs stress-ng, which the resource-stress tests run for a few seconds, and nft / tc
# (nftables, iproute2) for the network-fault tests.
# Usage: scripts/services.sh start   -> writes .test-services/env (export lines) and prints it
#        scripts/services.sh stop    -> stops what start started, and any standby left behind
# Installs the Debian packages, and moto[server] from PyPI, when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
state=.test-services

# shellcheck source=scripts/lib.sh
source scripts/lib.sh  # pg_bin, free_port

wait_ready() { # name url
  for _ in $(seq 1 150); do
    if curl -fsS -o /dev/null "$2"; then return 0; fi
    sleep 0.2
  done
  echo "error: $1 did not become ready at $2; its log:" >&2
  tail -n 30 "$state/$1.log" >&2 || true
  return 1
}

# Every program the tests and scripts run that a fresh Debian machine may lack, as program:package.
# tests/installs.rs fails when the code runs a program that is neither here nor on every Debian
# machine (essential or required), so a new one cannot be forgotten (a fresh machine once had no
# ping).
PROGRAMS=(
  prometheus:prometheus
  prometheus-pushgateway:prometheus-pushgateway
  prometheus-alertmanager:prometheus-alertmanager
  promtool:prometheus
  curl:curl
  stress-ng:stress-ng
  groff:groff-base
  nft:nftables
  tc:iproute2
  ip:iproute2
  ss:iproute2
  ping:iputils-ping
  nc:netcat-openbsd
  kill:procps
  time:time
  chromium:chromium
)

install_missing() {
  local missing=() entry
  for entry in "${PROGRAMS[@]}"; do
    command -v "${entry%%:*}" >/dev/null || missing+=("${entry#*:}")
  done
  pg_bin >/dev/null || missing+=(postgresql)
  if [ ${#missing[@]} -gt 0 ]; then
    # One package may serve several programs.
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

moto_cmd() { # prints how to run moto's server, installing moto[server] from PyPI when it is missing
  if moto_server -h >/dev/null 2>&1; then echo moto_server; return 0; fi
  echo "installing moto[server]" >&2
  local pip=(python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore) out
  if ! out=$("${pip[@]}" 'moto[server]' 2>&1); then
    # A Python that Debian manages refuses pip's installs unless told so.
    if grep -q externally-managed <<<"$out"; then
      "${pip[@]}" --break-system-packages 'moto[server]' >&2
    else
      echo "$out" >&2
      return 1
    fi
  fi
  hash -r
  # pip may have put the script where PATH does not look: the module runs the same server.
  if moto_server -h >/dev/null 2>&1; then echo moto_server; else echo python3 -m moto.server; fi
}

start() {
  # A run that failed half-way leaves its services and state behind: stop them first. An older
  # firedrill could turn /dev/null into a regular file (`report --output /dev/null` as root),
  # after which initdb fails: put the device back.
  if [ ! -c /dev/null ]; then
    echo "/dev/null is not a character device: recreating it" >&2
    rm -f /dev/null && mknod -m 666 /dev/null c 1 3
  fi
  stop >/dev/null 2>&1 || true
  install_missing
  local moto
  moto=$(moto_cmd)
  rm -rf "$state" && mkdir -p "$state"
  local pg prom am mp
  pg=$(free_port); prom=$(free_port); am=$(free_port); mp=$(free_port)

  prometheus-pushgateway --web.listen-address="127.0.0.1:$pg" >"$state/pushgateway.log" 2>&1 &
  echo $! >>"$state/pids"

  cat >"$state/prometheus.yml" <<YAML
global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs: [ { targets: ['127.0.0.1:$pg'] } ]
YAML
  prometheus --config.file="$state/prometheus.yml" --storage.tsdb.path="$state/prometheus-data" \
    --web.listen-address="127.0.0.1:$prom" >"$state/prometheus.log" 2>&1 &
  echo $! >>"$state/pids"

  cat >"$state/alertmanager.yml" <<YAML
route: { receiver: blackhole, group_wait: 1s }
receivers: [ { name: blackhole } ]
YAML
  prometheus-alertmanager --config.file="$state/alertmanager.yml" --storage.path="$state/alertmanager-data" \
    --web.listen-address="127.0.0.1:$am" --cluster.listen-address= >"$state/alertmanager.log" 2>&1 &
  echo $! >>"$state/pids"

  # $moto is one word or three (python3 -m moto.server): split on purpose.
  # shellcheck disable=SC2086
  $moto -H 127.0.0.1 -p "$mp" >"$state/moto.log" 2>&1 &
  echo $! >>"$state/pids"

  # PostgreSQL refuses to run as root: its cluster belongs to the postgres user, under /tmp.
  local pgport pgdata bin
  pgport=$(free_port); bin=$(pg_bin)
  pgdata=$(mktemp -d /tmp/firedrill-pg.XXXXXX)
  chown postgres:postgres "$pgdata"
  echo "$pgdata" >"$state/pgdata"
  runuser -u postgres -- "$bin/initdb" -D "$pgdata/data" -A trust -U postgres >"$state/postgres-init.log" 2>&1
  # In postgresql.conf, not on the command line, so that a standby's base backup
  # (scripts/pg-replica.sh) carries them: a hot standby needs max_connections and
  # max_wal_senders at least the primary's. initdb -A trust already lets 127.0.0.1 replicate;
  # the hba line below says so whatever initdb's template does.
  cat >>"$pgdata/data/postgresql.conf" <<'CONF'

# firedrill test services
listen_addresses = '127.0.0.1'
fsync = off
max_connections = 200
wal_level = replica
max_wal_senders = 20
max_replication_slots = 20
hot_standby = on
wal_keep_size = 128MB
CONF
  echo "host replication all 127.0.0.1/32 trust" >>"$pgdata/data/pg_hba.conf"
  runuser -u postgres -- "$bin/pg_ctl" -D "$pgdata/data" -l "$pgdata/postgres.log" -w \
    -o "-p $pgport -k $pgdata" start >"$state/postgres.log" 2>&1

  wait_ready pushgateway "http://127.0.0.1:$pg/-/ready"
  wait_ready prometheus "http://127.0.0.1:$prom/-/ready"
  wait_ready alertmanager "http://127.0.0.1:$am/-/ready"
  wait_ready moto "http://127.0.0.1:$mp/moto-api/"

  cat >"$state/env" <<ENV
export FIREDRILL_TEST_PUSHGATEWAY=http://127.0.0.1:$pg/
export FIREDRILL_TEST_PROMETHEUS=http://127.0.0.1:$prom/
export FIREDRILL_TEST_ALERTMANAGER=http://127.0.0.1:$am/
export FIREDRILL_TEST_POSTGRES=postgres://postgres@127.0.0.1:$pgport/postgres
export FIREDRILL_TEST_MOTO=http://127.0.0.1:$mp
ENV
  cat "$state/env"
}

stop() {
  # Standbys that tests made with scripts/pg-replica.sh and did not destroy.
  if [ -d "$state/standbys" ]; then
    local port f
    for f in "$state"/standbys/*; do
      [ -f "$f" ] || continue
      port=$(basename "$f")
      scripts/pg-replica.sh destroy "$port" || true
    done
    rmdir "$state/standbys" 2>/dev/null || true
  fi
  if [ -f "$state/pgdata" ]; then
    local pgdata bin
    pgdata=$(cat "$state/pgdata"); bin=$(pg_bin)
    runuser -u postgres -- "$bin/pg_ctl" -D "$pgdata/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pgdata" "$state/pgdata"
  fi
  [ -f "$state/pids" ] || return 0
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$state/pids"
  rm -f "$state/pids"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
