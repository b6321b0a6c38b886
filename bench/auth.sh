#!/usr/bin/env bash
# What authentication costs per request: login throughput and the latency of an authenticated
# GET /api/v1/me, 16 concurrent clients, on SQLite and on PostgreSQL, with wrk as the load
# generator (a real HTTP client in a second process). Prints a Markdown table for
# docs/PERFORMANCE.md. Runs against 127.0.0.1 only; each run is bounded by DURATION.
#
#   bash bench/auth.sh            # both backends, 10 s per measurement
#   DURATION=5s BACKENDS=sqlite bash bench/auth.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
BACKENDS=${BACKENDS:-"sqlite postgres"}
PORT=${PORT:-18181}
BASE="http://127.0.0.1:$PORT"
OP_PASSWORD="bench-platform-passphrase"
ADMIN_PASSWORD="bench-tenant-passphrase-42"
work=$(mktemp -d)
# (never `kill 0`: with no server that would signal the whole process group, the caller too)
trap '[ -z "${server:-}" ] || kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet
bin=target/release/stageflow

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() {
  local auth=()
  [ -z "${3:-}" ] || auth=(-H "authorization: Bearer $3")
  curl -sf "$BASE$1" -H 'content-type: application/json' "${auth[@]}" -d "$2"
}

start_server() {
  DATABASE_URL=$1 STAGEFLOW_LISTEN=127.0.0.1:$PORT STAGEFLOW_OPERATOR_PASSWORD=$OP_PASSWORD \
    STAGEFLOW_LOGIN_RATE_PER_MINUTE=1000000 RUST_LOG=warn "$bin" serve >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 200); do
    curl -sf "$BASE/readyz" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  cat "$work/server.log" >&2
  return 1
}

provision() {
  local op plan account
  op=$(post /api/v1/auth/token "{\"username\":\"operator\",\"password\":\"$OP_PASSWORD\"}" | json '["access_token"]')
  plan=$(post /api/v1/plans '{"name":"bench","max_tenants":10,"max_processes":10,"max_users":1000}' "$op" | json '["id"]')
  account=$(post /api/v1/accounts "{\"name\":\"bench\",\"plan_id\":\"$plan\"}" "$op" | json '["id"]')
  post /api/v1/tenants "{\"account_id\":\"$account\",\"slug\":\"bench\",\"name\":\"Bench\",\"time_zone\":\"Asia/Tokyo\",\"admin\":{\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}}" "$op" >/dev/null
  post /api/v1/auth/token "{\"tenant\":\"bench\",\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" | json '["access_token"]'
}

# wrk → "requests/s p50 p99"
measure() {
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" >"$work/wrk.txt"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  errors=$(awk '/Non-2xx/ {print $5}' "$work/wrk.txt")
  echo "$rps $p50 $p99 ${errors:-0}"
}

cat >"$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"tenant":"bench","username":"admin","password":"$ADMIN_PASSWORD"}'
LUA

echo "| backend | request | clients | requests/s | p50 | p99 | non-2xx | server peak RSS |"
echo "|---|---|---|---|---|---|---|---|"
for backend in $BACKENDS; do
  case $backend in
    sqlite) url="$work/bench.db" ;;
    postgres)
      admin=$(bash scripts/local-postgres.sh)
      psql "$admin" -qc "DROP DATABASE IF EXISTS stageflow_bench WITH (FORCE)" -c "CREATE DATABASE stageflow_bench"
      url=${admin/\/postgres\?/\/stageflow_bench?}
      ;;
  esac
  start_server "$url"
  token=$(provision)
  read -r rps p50 p99 err < <(measure -s "$work/login.lua" "$BASE/api/v1/auth/token")
  login="| $backend | POST /auth/token (argon2id 19 MiB, t=2) | $CONNECTIONS | $rps | $p50 | $p99 | $err |"
  read -r rps p50 p99 err < <(measure -H "Authorization: Bearer $token" "$BASE/api/v1/me")
  rss=$(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' "/proc/$server/status")
  echo "$login $rss |"
  echo "| $backend | GET /me (JWT + account read) | $CONNECTIONS | $rps | $p50 | $p99 | $err | $rss |"
  kill -TERM "$server"; wait "$server" 2>/dev/null || true
done
