#!/usr/bin/env bash
# Ticket throughput and latency at scale: seeds TICKETS tickets (default 1,000,000) over two
# tenants and three templates with `stageflow seed-tickets` (the ticket use case in
# transactions of 1,000, no HTTP), starts the server and measures with wrk (a real HTTP client
# in a second process), each at 1, 16 and 64 connections for DURATION seconds:
#   create       POST /api/v1/tickets                      (itil_incident, minimum fields)
#   transition   POST /api/v1/tickets/{id}/transitions     (start_triage, each ticket once)
#   get-one      GET  /api/v1/tickets/{id}                 (random seeded tickets)
#   list         GET  /api/v1/tickets?template=itil_incident&state=in_progress&field.impact=high
#   search ja    GET  /api/v1/tickets?q=障害
#   search en    GET  /api/v1/tickets?q=printer
# on SQLite and on PostgreSQL, plus the server's peak RSS (VmHWM). Prints a Markdown table for
# docs/PERFORMANCE.md and appends it to target/bench-tickets/results.md. 127.0.0.1 only.
#
#   bash bench/tickets.sh                                   # 1M tickets, both backends, 10 s
#   TICKETS=20000 DURATION=3 BACKENDS=sqlite SKIP_BUILD=1 bash bench/tickets.sh
#   REQUESTS="transition get" CLIENTS=16 bash bench/tickets.sh   # a subset
#
# Any 409/412 (a transition pool ticket already moved) or other non-2xx is counted in the
# table; a run that exhausts the pool of initial-state tickets shows it there as 404s.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
DURATION=${DURATION%s}
TICKETS=${TICKETS:-1000000}
BACKENDS=${BACKENDS:-"sqlite postgres"}
CLIENTS=${CLIENTS:-"1 16 64"}
REQUESTS=${REQUESTS:-"create transition get list ja en"}
PORT=${PORT:-18182}
BASE="http://127.0.0.1:$PORT"
OP_PASSWORD="bench-platform-passphrase"
OUT=${OUT:-target/bench-tickets}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d)
cleanup() {
  kill "${server:-0}" 2>/dev/null || true
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

# One request by curl, to fail early and loudly (with the problem document) before wrk runs.
check() {
  local method=$1 path=$2 body=${3:-} code
  code=$(curl -s -o "$work/check.txt" -w '%{http_code}' -X "$method" "$BASE$path" \
    -H "authorization: Bearer $token" -H 'content-type: application/json' ${body:+-d "$body"})
  if [ "${code:0:1}" != 2 ]; then
    echo "check $method $path: HTTP $code" >&2
    cat "$work/check.txt" >&2
    exit 1
  fi
}

# Lua for wrk. Pools of ticket ids are read by every wrk thread; thread t of n takes the
# pool's entries t, t+n, t+2n… after the offset, so no two requests share a ticket. done()
# stores the offset past every entry handed out, so the next run starts on untouched tickets.
write_lua() {
  cat >"$work/common.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
local threads, count = {}, 0
function setup(thread)
  thread:set("tid", count)
  count = count + 1
  table.insert(threads, thread)
end
function init(args)
  n = 0
  -- setup() runs in the main Lua state, so the thread count comes from measure().
  nthreads = tonumber(os.getenv("THREADS"))
end
function load_ids(path)
  local ids = {}
  for line in io.lines(path) do ids[#ids + 1] = line end
  return ids
end
function read_offset(path)
  local f = io.open(path)
  if not f then return 0 end
  local v = tonumber(f:read("*l")) or 0
  f:close()
  return v
end
function save_offset(path, offset)
  local most = 0
  for _, t in ipairs(threads) do
    local c = t:get("n") or 0
    if c > most then most = c end
  end
  local f = io.open(path, "w")
  f:write(tostring(offset + most * #threads))
  f:close()
end
LUA
  cat >"$work/create.lua" <<'LUA'
dofile(os.getenv("LUA_DIR") .. "/common.lua")
wrk.method = "POST"
local words = {"障害", "printer", "申請", "network", "遅延", "login", "接続", "timeout"}
function request()
  n = n + 1
  local k = tid * 1000003 + n
  local a, b = words[k % #words + 1], words[(k * 7) % #words + 1]
  local body = string.format(
    '{"template":"itil_incident","fields":{"title":"%s %s bench %d","description":"%sが発生しました (%d)","impact":"medium","urgency":"low"}}',
    a, b, k, b, k)
  return wrk.format(nil, "/api/v1/tickets", nil, body)
end
LUA
  cat >"$work/transition.lua" <<'LUA'
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local ids = load_ids(os.getenv("IDS"))
local offset_file = os.getenv("OFFSET_FILE")
local offset = read_offset(offset_file)
local body = '{"transition":"start_triage"}'
function request()
  local i = offset + tid + n * nthreads + 1
  n = n + 1
  -- Past the end of the pool: a ticket that does not exist, so the table shows 404s.
  local id = ids[i] or "00000000-0000-7000-8000-000000000000"
  return wrk.format("POST", "/api/v1/tickets/" .. id .. "/transitions", nil, body)
end
function done(summary, latency, requests)
  save_offset(offset_file, offset)
end
LUA
  cat >"$work/get.lua" <<'LUA'
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local ids = load_ids(os.getenv("IDS"))
function request()
  local i = (tid * 7919 + n * nthreads) % #ids + 1
  n = n + 1
  return wrk.format("GET", "/api/v1/tickets/" .. ids[i], nil, nil)
end
LUA
  cat >"$work/static.lua" <<'LUA'
dofile(os.getenv("LUA_DIR") .. "/common.lua")
LUA
}

header="| backend | request | clients | requests/s | p50 | p99 | non-2xx | socket errors | server peak RSS so far |"
rows=()
notes=()
for backend in $BACKENDS; do
  mkdir -p "$OUT/$backend"
  case $backend in
    sqlite)
      rm -f "$OUT"/sqlite/bench.db*
      url="$OUT/sqlite/bench.db"
      ;;
    postgres)
      admin=$(bash scripts/local-postgres.sh)
      psql "$admin" -qc "DROP DATABASE IF EXISTS stageflow_bench WITH (FORCE)" -c "CREATE DATABASE stageflow_bench"
      url=${admin/\/postgres\?/\/stageflow_bench?}
      ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
  seed="$OUT/$backend/seed.json"
  echo "== $backend: seeding $TICKETS tickets" >&2
  DATABASE_URL=$url RUST_LOG=warn "$bin" seed-tickets --tickets "$TICKETS" --out "$seed" \
    2>&1 | tee "$OUT/$backend/seed.log" | grep -E 'seeded|ANALYZE|wrote' >&2
  notes+=("$backend: $(grep -h '^seeded' "$OUT/$backend/seed.log")")
  case $backend in
    sqlite) notes+=("sqlite: database file $(du -sh "$OUT"/sqlite/bench.db | cut -f1)") ;;
    postgres) notes+=("postgres: database $(psql "$url" -tAc "SELECT pg_size_pretty(pg_database_size(current_database()))")") ;;
  esac

  start_server "$url"
  tenant=$(json "$seed" '["tenants"][0]["slug"]')
  user=$(json "$seed" '["tenants"][0]["agent"]["username"]')
  password=$(json "$seed" '["tenants"][0]["agent"]["password"]')
  transition_ids=$(json "$seed" '["tenants"][0]["transition_ids_file"]')
  get_ids=$(json "$seed" '["tenants"][0]["get_ids_file"]')
  token=$(curl -sf "$BASE/api/v1/auth/token" -H 'content-type: application/json' \
    -d "{\"tenant\":\"$tenant\",\"username\":\"$user\",\"password\":\"$password\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  write_lua
  rm -f "$work/offset"

  list_path="/api/v1/tickets?template=itil_incident&state=in_progress&field.impact=high&limit=50"
  ja_path="/api/v1/tickets?q=%E9%9A%9C%E5%AE%B3&limit=50"
  en_path="/api/v1/tickets?q=printer&limit=50"
  check POST /api/v1/tickets '{"template":"itil_incident","fields":{"title":"check","description":"check"}}'
  check POST "/api/v1/tickets/$(tail -n 1 "$transition_ids")/transitions" '{"transition":"start_triage"}'
  check GET "/api/v1/tickets/$(head -n 1 "$get_ids")"
  check GET "$list_path"
  check GET "$ja_path"
  check GET "$en_path"

  for spec in \
    "create|POST /tickets (itil_incident)|create.lua|$BASE/" \
    "transition|POST /tickets/{id}/transitions (start_triage)|transition.lua|$BASE/" \
    "get|GET /tickets/{id}|get.lua|$BASE/" \
    "list|GET /tickets?template&state&field.impact (limit 50)|static.lua|$BASE$list_path" \
    "ja|GET /tickets?q=障害 (limit 50)|static.lua|$BASE$ja_path" \
    "en|GET /tickets?q=printer (limit 50)|static.lua|$BASE$en_path"; do
    IFS='|' read -r name label script target <<<"$spec"
    [[ " $REQUESTS " == *" $name "* ]] || continue
    for clients in $CLIENTS; do
      IDS=$transition_ids
      [ "$script" != get.lua ] || IDS=$get_ids
      export IDS OFFSET_FILE="$work/offset" LUA_DIR=$work
      read -r rps p50 p99 err sock < <(measure "$clients" "$DURATION" "$script" "$target")
      row="| $backend | $label | $clients | $rps | $p50 | $p99 | $err | $sock | $(rss) |"
      echo "$row" >&2
      rows+=("$row")
    done
  done
  notes+=("$backend: transition pool $(wc -l <"$transition_ids") initial-state incidents, $(cat "$work/offset" 2>/dev/null || echo 0) handed out")
  kill -TERM "$server"
  wait "$server" 2>/dev/null || true
  server=
done

{
  echo
  echo "### $(date -u +%Y-%m-%dT%H:%MZ) — $TICKETS tickets, ${DURATION} s per line, $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo
  echo "$header"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  printf -- '- %s\n' "${notes[@]}"
} | tee -a "$OUT/results.md"
