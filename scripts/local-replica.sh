#!/usr/bin/env bash
# A streaming read replica of the local PostgreSQL server, for the replica test and by hand.
#
#   export STAGEFLOW_TEST_REPLICA_URL=$(bash scripts/local-replica.sh)     # make and start it
#   bash scripts/local-replica.sh kill                                      # stop it at once
#   bash scripts/local-replica.sh remove                                    # stop, delete it
#
# The replica is a second PostgreSQL cluster of the same version on this machine: its data
# directory is a `pg_basebackup` of the primary (scripts/local-postgres.sh starts that one),
# `-R` writes `primary_conninfo` and `standby.signal`, so it streams the primary's WAL over the
# Unix socket (peer authentication as `postgres`, no password) and serves read-only queries
# (hot standby). It listens on the socket only, on port $REPLICA_PORT (5433). It is not a
# Debian-managed cluster (pg_lsclusters does not list it): this script is its only manager.
# A replica that cannot stream (the primary was re-created, or it was stopped so long that the
# WAL it needs is gone) is made again from a fresh base backup.
# Installs nothing: PostgreSQL comes with scripts/local-postgres.sh.
# Progress goes to stderr; only the URL to stdout.
set -euo pipefail

say() { echo "local-replica: $*" >&2; }

port=${REPLICA_PORT:-5433}
socket_dir=${PGHOST:-/var/run/postgresql}
primary_url=$(bash "$(dirname "$0")/local-postgres.sh")
version=$(pg_lsclusters --no-header | head -n 1 | awk '{print $1}')
bin=/usr/lib/postgresql/$version/bin
data=${REPLICA_DATA:-/var/lib/postgresql/$version/stageflow-replica}
log=/var/log/postgresql/stageflow-replica.log

as_postgres() { su postgres -c "$*"; }
replica_sql() { as_postgres "psql -h '$socket_dir' -p $port -tAc \"$1\"" 2>/dev/null; }
running() { as_postgres "$bin/pg_ctl -D '$data' status" >/dev/null 2>&1; }

stop() {
  local mode=$1
  if running; then
    say "stopping the replica ($mode)"
    as_postgres "$bin/pg_ctl -D '$data' stop -m $mode -w" >&2
  fi
}

make_replica() {
  say "taking a base backup of the primary into $data"
  rm -rf "$data"
  install -d -o postgres -g postgres -m 700 "$data"
  as_postgres "$bin/pg_basebackup -h '$socket_dir' -p 5432 -D '$data' -R -X stream -c fast" >&2
  # Debian keeps the primary's configuration in /etc, so the copy has none of its own.
  cat >"$data/postgresql.conf" <<EOF
port = $port
listen_addresses = ''
unix_socket_directories = '$socket_dir'
hot_standby = on
# Report the replica's oldest snapshot to the primary, so vacuum there does not remove rows a
# running read still needs (a query is then not cancelled for a conflict with recovery).
hot_standby_feedback = on
max_connections = 100
shared_buffers = 128MB
EOF
  cat >"$data/pg_hba.conf" <<EOF
local all all peer
EOF
  chown postgres:postgres "$data/postgresql.conf" "$data/pg_hba.conf"
}

start() {
  if ! running; then
    say "starting the replica on port $port"
    as_postgres "$bin/pg_ctl -D '$data' -l '$log' -w -t 60 start" >&2 || return 1
  fi
  # Streaming, in recovery, and the same system as the primary.
  for _ in $(seq 1 150); do
    if [ "$(replica_sql "SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')")" = "t" ]; then
      local ours theirs
      ours=$(replica_sql "SELECT system_identifier FROM pg_control_system()")
      theirs=$(psql "$primary_url" -tAc "SELECT system_identifier FROM pg_control_system()")
      [ "$ours" = "$theirs" ] && return 0
      say "the replica belongs to another primary"
      return 1
    fi
    sleep 0.2
  done
  say "the replica does not stream (see $log)"
  return 1
}

case "${1:-start}" in
  start)
    [ -f "$data/standby.signal" ] || make_replica
    if ! start; then
      stop immediate
      make_replica
      start
    fi
    echo "postgres:///postgres?host=${socket_dir}&port=${port}"
    ;;
  kill) stop immediate ;;
  stop) stop fast ;;
  remove)
    stop immediate
    rm -rf "$data"
    ;;
  *)
    say "usage: $0 [start|kill|stop|remove]"
    exit 2
    ;;
esac
