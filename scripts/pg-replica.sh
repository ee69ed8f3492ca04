#!/usr/bin/env bash
# A streaming-replication standby of the throwaway PostgreSQL that scripts/services.sh starts,
# for the RPO tests. Several may run at once: each test makes and destroys its own.
# Usage: scripts/pg-replica.sh create PRIMARY_PORT
#          -> a fresh standby (pg_basebackup -R) on a free loopback port, hot_standby on; returns
#             once it is in recovery and its WAL receiver is streaming, and prints one line, its
#             URL: postgres://postgres@127.0.0.1:PORT/postgres
#             (its cluster_name, so its application_name in the primary's pg_stat_replication,
#             is standby_PORT)
#        scripts/pg-replica.sh destroy PORT
#          -> stops that standby (immediate) and removes its data
# Each standby's directory is recorded in .test-services/standbys/PORT; `scripts/services.sh stop`
# destroys those still there. Runs as root: the cluster belongs to the postgres user (runuser).
set -euo pipefail
cd "$(dirname "$0")/.."
state=.test-services

# shellcheck source=scripts/lib.sh
source scripts/lib.sh  # pg_bin, free_port

die() { echo "error: $*" >&2; exit 1; }

create() {
  local primary=$1 bin dir port="" got=""
  [[ $primary =~ ^[0-9]+$ ]] || die "PRIMARY_PORT must be a port number, not '$primary'"
  bin=$(pg_bin) || die "no PostgreSQL server binaries under /usr/lib/postgresql"
  mkdir -p "$state/standbys"
  dir=$(mktemp -d /tmp/firedrill-pg-standby.XXXXXX)
  chown postgres:postgres "$dir"
  # Until the standby is recorded, a failure leaves nothing behind.
  # shellcheck disable=SC2064
  trap "runuser -u postgres -- '$bin/pg_ctl' -D '$dir/data' -m immediate stop >/dev/null 2>&1 || true; rm -rf '$dir'" EXIT

  # -c fast: no waiting for a spread checkpoint; -N: the copy is thrown away, no fsync;
  # -X stream: the WAL written meanwhile comes along; -R: standby.signal and primary_conninfo.
  if ! runuser -u postgres -- "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary" -U postgres \
      -D "$dir/data" -R -X stream -c fast -N >"$dir/basebackup.log" 2>&1; then
    cat "$dir/basebackup.log" >&2
    die "pg_basebackup from 127.0.0.1:$primary failed"
  fi

  # Two tests may be handed the same free port at once: the loser's start fails; try another.
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    if runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
        -o "-p $port -k $dir -c hot_standby=on -c cluster_name=standby_$port" start \
        >"$dir/pg_ctl.log" 2>&1; then
      break
    fi
    port=""
  done
  if [ -z "$port" ]; then
    tail -n 30 "$dir/postgres.log" >&2 || true
    die "the standby did not start"
  fi
  echo "$dir" >"$state/standbys/$port"
  trap - EXIT

  for _ in $(seq 1 300); do
    got=$("$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -XAtq -c \
      "select pg_is_in_recovery()::text || ' ' || coalesce((select status from pg_stat_wal_receiver), 'none')" \
      2>/dev/null || true)
    if [ "$got" = "true streaming" ]; then
      echo "postgres://postgres@127.0.0.1:$port/postgres"
      return 0
    fi
    sleep 0.1
  done
  tail -n 30 "$dir/postgres.log" >&2 || true
  destroy "$port"
  die "the standby on port $port is not streaming (last seen: '${got}')"
}

destroy() {
  local port=$1 f dir bin
  f=$state/standbys/$port
  [ -f "$f" ] || die "no standby recorded for port '$port'"
  dir=$(cat "$f")
  case "$dir" in
    /tmp/firedrill-pg-standby.*) ;;
    *) die "$f names '$dir', not a standby's directory" ;;
  esac
  bin=$(pg_bin) || die "no PostgreSQL server binaries under /usr/lib/postgresql"
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir" "$f"
}

case "${1:-}" in
  create) [ $# -eq 2 ] || die "usage: $0 create PRIMARY_PORT"; create "$2" ;;
  destroy) [ $# -eq 2 ] || die "usage: $0 destroy PORT"; destroy "$2" ;;
  *) echo "usage: $0 create PRIMARY_PORT | destroy PORT" >&2; exit 2 ;;
esac
