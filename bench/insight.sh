#!/usr/bin/env bash
# Process insight at scale (#16): seeds TICKETS tickets (default 1,000,000) over two tenants
# with `stageflow seed-tickets` (placed tickets carry a history entry), starts the server and
# measures, as tenant bench-a's admin:
#   as_of      GET /tickets/{id}?as_of=2026-11-28T00:00:00Z  (wrk, random seeded tickets)
#   stats      GET /stats/templates/itil_incident            (wrk, the default 30 days)
#   report     GET /reports/monthly?month=2026-10            (made and stored by this read),
#              the same again (stored), and the current month (made on demand)
#   migration  itil_service_request version 1 → 2 (a copy), the run left to the job
#              (STAGEFLOW_MIGRATION_INLINE_SECONDS=0), followed until done: tickets/s
# on SQLite and on PostgreSQL. Prints a Markdown table for docs/PERFORMANCE.md and appends it
# to target/bench-insight/results.md. 127.0.0.1 only.
#
#   bash bench/insight.sh                                    # 1M tickets, both backends
#   TICKETS=20000 DURATION=3 BACKENDS=sqlite SKIP_BUILD=1 bash bench/insight.sh
#   REUSE=1 KEEP_DB=1 bash bench/insight.sh  # the databases of an earlier KEEP_DB=1 run (or
#                                            # seed-tickets): migrate them, then measure;
#                                            # SKIP_WRITES=1 leaves out report and migration
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
TICKETS=${TICKETS:-1000000}
BACKENDS=${BACKENDS:-"sqlite postgres"}
CLIENTS=${CLIENTS:-"1 16"}
PORT=${PORT:-18183}
BASE="http://127.0.0.1:$PORT"
OP_PASSWORD="bench-platform-passphrase"
AS_OF="2026-11-28T00:00:00Z"
OUT=${OUT:-target/bench-insight}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d)
cleanup() {
  # Never `kill 0` (an unset pid): that signals the whole process group, the caller too.
  [ -z "${server:-}" ] || kill "$server" 2>/dev/null || true
  rm -rf "$work"
  [ -n "${KEEP_DB:-}" ] || rm -f "$OUT"/sqlite/bench.db*
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet
bin=$PWD/target/release/stageflow
# shellcheck source=bench/common.sh
source bench/common.sh

json() { python3 -c "import json,sys; d=json.load(open('$1')); print(d$2)"; }
api() { # METHOD PATH [BODY] → body on stdout; fails loudly on a non-2xx
  local code
  code=$(curl -s -o "$work/reply.json" -w '%{http_code}' -X "$1" "$BASE$2" \
    -H "authorization: Bearer $token" -H 'content-type: application/json' ${3:+-d "$3"})
  if [ "${code:0:1}" != 2 ]; then
    echo "$1 $2: HTTP $code" >&2
    cat "$work/reply.json" >&2
    exit 1
  fi
  cat "$work/reply.json"
}
seconds() { # METHOD PATH → the request's total time in seconds
  curl -s -o /dev/null -w '%{time_total}' -X "$1" "$BASE$2" -H "authorization: Bearer $token"
}

cat >"$work/asof.lua" <<'LUA'
local ids = {}
for line in io.lines(os.getenv("IDS")) do ids[#ids + 1] = line end
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
local n = 0
function request()
  n = n + 1
  local id = ids[(n * 7919) % #ids + 1]
  return wrk.format("GET", "/api/v1/tickets/" .. id .. "?as_of=" .. os.getenv("AS_OF"), nil, nil)
end
LUA
cat >"$work/static.lua" <<'LUA'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
LUA

header="| backend | measurement | clients | requests/s | p50 | p99 | non-2xx |"
rows=()
notes=()
for backend in $BACKENDS; do
  mkdir -p "$OUT/$backend"
  case $backend in
    sqlite)
      [ -n "${REUSE:-}" ] || rm -f "$OUT"/sqlite/bench.db*
      url="$OUT/sqlite/bench.db"
      ;;
    postgres)
      admin=$(bash scripts/local-postgres.sh)
      [ -n "${REUSE:-}" ] ||
        psql "$admin" -qc "DROP DATABASE IF EXISTS stageflow_insight WITH (FORCE)" -c "CREATE DATABASE stageflow_insight"
      url=${admin/\/postgres\?/\/stageflow_insight?}
      ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
  seed="$OUT/$backend/seed.json"
  if [ -n "${REUSE:-}" ]; then
    started=$(date +%s.%N)
    DATABASE_URL=$url RUST_LOG=warn "$bin" migrate >&2
    notes+=("$backend: reused the seeded database; pending migrations applied in $(python3 -c "print(round($(date +%s.%N) - $started, 1))") s")
    [ "$backend" = sqlite ] || psql "$url" -qc "VACUUM ANALYZE"
  else
    echo "== $backend: seeding $TICKETS tickets" >&2
    started=$(date +%s)
    DATABASE_URL=$url RUST_LOG=warn "$bin" seed-tickets --tickets "$TICKETS" --out "$seed" \
      2>&1 | tee "$OUT/$backend/seed.log" | grep -E 'seeded|ANALYZE|wrote' >&2
    notes+=("$backend: seeded $TICKETS tickets in $(($(date +%s) - started)) s")
  fi

  export STAGEFLOW_MIGRATION_INLINE_SECONDS=0
  start_server "$url"
  tenant=$(json "$seed" '["tenants"][0]["slug"]')
  user=$(json "$seed" '["tenants"][0]["admin"]["username"]')
  password=$(json "$seed" '["tenants"][0]["admin"]["password"]')
  get_ids=$(json "$seed" '["tenants"][0]["get_ids_file"]')
  token=$(curl -sf "$BASE/api/v1/auth/token" -H 'content-type: application/json' \
    -d "{\"tenant\":\"$tenant\",\"username\":\"$user\",\"password\":\"$password\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  export TOKEN=$token IDS=$get_ids AS_OF

  # The report and the migration first: a statistics run at 16 clients leaves requests
  # holding the pool for seconds after wrk stops. SKIP_WRITES=1: a reused database that has
  # both already.
  if [ -z "${SKIP_WRITES:-}" ]; then
  made=$(seconds GET "/api/v1/reports/monthly?month=2026-10")
  stored=$(seconds GET "/api/v1/reports/monthly?month=2026-10")
  current=$(seconds GET "/api/v1/reports/monthly?month=2026-11")
  opened=$(api GET "/api/v1/reports/monthly?month=2026-10" | python3 -c 'import json,sys; print(json.load(sys.stdin)["inquiries"]["opened"])')
  notes+=("$backend: monthly report of 2026-10 (tenant $tenant, $opened tickets filed that month, every ticket of the tenant read): made and stored in ${made} s; read again (stored) in ${stored} s; the current month made on demand in ${current} s")

  api POST /api/v1/templates/itil_service_request/versions '{}' >/dev/null
  api POST /api/v1/templates/itil_service_request/versions/2/publish '{}' >/dev/null
  t0=$(date +%s.%N)
  run=$(api POST /api/v1/templates/itil_service_request/migrations '{"from_version": 1}')
  id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$run")
  while :; do
    state=$(api GET "/api/v1/templates/itil_service_request/migrations/$id")
    status=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["status"])' "$state")
    [ "$status" = done ] && break
    sleep 1
  done
  t1=$(date +%s.%N)
  moved=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["moved"])' "$state")
  rate=$(python3 -c "print(round($moved / ($t1 - $t0)))")
  notes+=("$backend: migration of itil_service_request 1 → 2 by the job: $moved tickets in $(python3 -c "print(round($t1 - $t0, 1))") s, $rate tickets/s")
  echo "${notes[-1]}" >&2
  fi
  api GET "/api/v1/tickets/$(head -n 1 "$get_ids")?as_of=$AS_OF" >/dev/null
  api GET "/api/v1/stats/templates/itil_incident" >/dev/null
  for spec in "as_of|GET /tickets/{id}?as_of=|asof.lua|$BASE/" \
    "stats|GET /stats/templates/itil_incident (30 days)|static.lua|$BASE/api/v1/stats/templates/itil_incident"; do
    IFS='|' read -r name label script target <<<"$spec"
    for clients in $CLIENTS; do
      read -r rps p50 p99 err _ < <(measure "$clients" "$DURATION" "$script" "$target")
      row="| $backend | $label | $clients | $rps | $p50 | $p99 | $err |"
      echo "$row" >&2
      rows+=("$row")
    done
  done

  kill -TERM "$server"
  wait "$server" 2>/dev/null || true
  server=
done

{
  echo
  echo "### $(date -u +%Y-%m-%dT%H:%MZ) — $TICKETS tickets, ${DURATION} s per line, $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo
  echo "$header"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  printf -- '- %s\n' "${notes[@]}"
} | tee -a "$OUT/results.md"
