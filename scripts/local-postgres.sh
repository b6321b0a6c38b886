#!/usr/bin/env bash
# Makes a local PostgreSQL server available for the tests and prints its admin URL.
#
#   export STAGEFLOW_TEST_POSTGRES_URL=$(scripts/local-postgres.sh)
#
# Installs PostgreSQL with apt-get when it is missing, starts the cluster when it is down, and
# creates a superuser role for the current user (connections go over the Unix socket with peer
# authentication, so no password is involved). Progress goes to stderr; only the URL to stdout.
set -euo pipefail

say() { echo "local-postgres: $*" >&2; }

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  say "PostgreSQL is not installed; installing it with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi

cluster=$(pg_lsclusters --no-header | head -n 1)
if [ -z "$cluster" ]; then
  say "no PostgreSQL cluster exists" && exit 1
fi
version=$(awk '{print $1}' <<<"$cluster")
name=$(awk '{print $2}' <<<"$cluster")
status=$(awk '{print $4}' <<<"$cluster")
# Debian's clusters listen on this socket directory unless configured otherwise.
socket_dir=${PGHOST:-/var/run/postgresql}

if [ "$status" != "online" ]; then
  say "starting cluster $version/$name"
  pg_ctlcluster "$version" "$name" start >&2
fi

user=$(id -un)
for _ in $(seq 1 50); do
  su postgres -c "psql -h '$socket_dir' -tAc 'SELECT 1'" >/dev/null 2>&1 && break
  sleep 0.2
done
if [ "$(su postgres -c "psql -h '$socket_dir' -tAc \"SELECT 1 FROM pg_roles WHERE rolname = '$user'\"")" != "1" ]; then
  say "creating superuser role $user"
  su postgres -c "createuser -h '$socket_dir' -s '$user'" >&2
fi

echo "postgres:///postgres?host=${socket_dir}"
