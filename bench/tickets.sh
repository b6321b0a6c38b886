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
#   mixed        70 % reads (get-one 40, list 15, search 15), 30 % writes (create 15,
#                transition 10, comment 5), at MIXED_CLIENTS (64) for MIXED_DURATION (300 s),
#                the server's RSS sampled every 10 s (flat after the first minute, or not)
# on SQLite and on PostgreSQL, plus the server's peak RSS (VmHWM) and the machine's busy CPU
# per request (/proc/stat before and after each wrk run: server, database and wrk together).
# On PostgreSQL, pgbench's TPC-B (scale 16, PGBENCH_CLIENTS 16, DURATION) runs in the same
# session on a scratch database, and create and transition throughput at 16 clients are
# given as a share of it: absolute figures move between machines, ratios much less.
# Prints a Markdown table for docs/PERFORMANCE.md and appends it to
# target/bench-tickets/results.md. 127.0.0.1 only.
#
#   bash bench/tickets.sh                                   # 1M tickets, both backends, 10 s
#   TICKETS=20000 DURATION=3 BACKENDS=sqlite SKIP_BUILD=1 bash bench/tickets.sh
#   REQUESTS="transition get" CLIENTS=16 bash bench/tickets.sh   # a subset
#   REQUESTS=mixed MIXED_DURATION=60 bash bench/tickets.sh          # the mixed load alone
#   BIN=/path/to/other/stageflow SKIP_BUILD=1 bash bench/tickets.sh  # another build, to alternate
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
REQUESTS=${REQUESTS:-"create transition get list ja en mixed"}
MIXED_CLIENTS=${MIXED_CLIENTS:-64}
MIXED_DURATION=${MIXED_DURATION:-300}
MIXED_DURATION=${MIXED_DURATION%s}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-16}
PORT=${PORT:-18182}
BASE="http://127.0.0.1:$PORT"
OP_PASSWORD="bench-platform-passphrase"
OUT=${OUT:-target/bench-tickets}
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
bin=${BIN:-$PWD/target/release/stageflow}
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
  # The mixed load: each request drawn at random by the shares above. Transitions take the
  # tickets this thread created earlier in the run (creates outnumber transitions, so the
  # load sustains itself for any duration), the pool's next untouched seeded ones until the
  # first creates are answered; comments and reads take random seeded ones.
  cat >"$work/mixed.lua" <<LUA
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local get_ids = load_ids(os.getenv("GET_IDS"))
local transition_ids = load_ids(os.getenv("IDS"))
local offset_file = os.getenv("OFFSET_FILE")
local offset = read_offset(offset_file)
local list_path = "$list_path"
local ja_path = "$ja_path"
local en_path = "$en_path"
local seeded = false
local created = {}
local created_first, created_last = 1, 0
function response(status, headers, body)
  if status == 201 and body:find('"state":"new"', 1, true) then
    local id = body:match('^{"id":"([%x%-]+)"')
    if id then
      created_last = created_last + 1
      created[created_last] = id
    end
  end
end
local function next_transition_id()
  if created_first <= created_last then
    local id = created[created_first]
    created[created_first] = nil
    created_first = created_first + 1
    return id
  end
  local i = offset + tid + n * nthreads + 1
  n = n + 1
  return transition_ids[i] or "00000000-0000-7000-8000-000000000000"
end
function request()
  if not seeded then
    math.randomseed(tid * 7919 + os.time())
    seeded = true
  end
  local r = math.random(100)
  local any = get_ids[math.random(#get_ids)]
  if r <= 40 then
    return wrk.format("GET", "/api/v1/tickets/" .. any, nil, nil)
  elseif r <= 55 then
    return wrk.format("GET", list_path, nil, nil)
  elseif r <= 62 then
    return wrk.format("GET", ja_path, nil, nil)
  elseif r <= 70 then
    return wrk.format("GET", en_path, nil, nil)
  elseif r <= 85 then
    local k = tid * 1000003 + math.random(1000000)
    local body = string.format(
      '{"template":"itil_incident","fields":{"title":"mixed %d 障害","description":"printer %d","impact":"medium","urgency":"low"}}', k, k)
    return wrk.format("POST", "/api/v1/tickets", nil, body)
  elseif r <= 95 then
    local id = next_transition_id()
    return wrk.format("POST", "/api/v1/tickets/" .. id .. "/transitions", nil,
      '{"transition":"start_triage"}')
  else
    return wrk.format("POST", "/api/v1/tickets/" .. any .. "/comments", nil,
      '{"body":"確認しました (mixed load)"}')
  end
end
function done(summary, latency, requests)
  save_offset(offset_file, offset)
end
LUA
}

declare -A throughput failures

# pgbench's TPC-B on a scratch database of the same server, PGBENCH_CLIENTS clients: its
# transactions per second (without connection time).
pgbench_tps() {
  local admin=$1 db_url pgbench
  pgbench=$(ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -n 1)
  psql "$admin" -qc "DROP DATABASE IF EXISTS stageflow_pgbench WITH (FORCE)" -c "CREATE DATABASE stageflow_pgbench"
  db_url=${admin/\/postgres\?/\/stageflow_pgbench?}
  "$pgbench" -i -q -s 16 "$db_url" >/dev/null 2>&1
  "$pgbench" -n -c "$PGBENCH_CLIENTS" -j 2 -T "$DURATION" "$db_url" 2>/dev/null |
    awk '/^tps = .*without initial connection time/ {printf "%.0f", $3}'
  psql "$admin" -qc "DROP DATABASE stageflow_pgbench WITH (FORCE)"
}

header="| backend | request | clients | requests/s | p50 | p99 | non-2xx | socket errors | CPU ms/request | server peak RSS so far |"
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
  list_path="/api/v1/tickets?template=itil_incident&state=in_progress&field.impact=high&limit=50"
  ja_path="/api/v1/tickets?q=%E9%9A%9C%E5%AE%B3&limit=50"
  en_path="/api/v1/tickets?q=printer&limit=50"
  write_lua
  rm -f "$work/offset"
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
    "en|GET /tickets?q=printer (limit 50)|static.lua|$BASE$en_path" \
    "mixed|mixed: 70 % get/list/search, 30 % create/transition/comment|mixed.lua|$BASE/"; do
    IFS='|' read -r name label script target <<<"$spec"
    [[ " $REQUESTS " == *" $name "* ]] || continue
    clients_list=$CLIENTS
    seconds=$DURATION
    if [ "$name" = mixed ]; then
      clients_list=$MIXED_CLIENTS
      seconds=$MIXED_DURATION
      # RSS every 10 s while the mixed load runs.
      (while sleep 10; do awk '/VmRSS/ {printf "%.0f ", $2/1024}' "/proc/$server/status" 2>/dev/null || break; done) >"$work/rss_series" &
      sampler=$!
    fi
    for clients in $clients_list; do
      IDS=$transition_ids
      [ "$script" != get.lua ] || IDS=$get_ids
      export IDS GET_IDS=$get_ids OFFSET_FILE="$work/offset" LUA_DIR=$work
      read -r rps p50 p99 err sock < <(measure "$clients" "$seconds" "$script" "$target")
      row="| $backend | $label | $clients | $rps | $p50 | $p99 | $err | $sock | $(cat "$work/cpu_ms") | $(rss) |"
      echo "$row" >&2
      rows+=("$row")
      throughput[$name/$clients]=$rps
      failures[$name/$clients]=$err
    done
    if [ "$name" = mixed ]; then
      kill "$sampler" 2>/dev/null || true
      wait "$sampler" 2>/dev/null || true
      notes+=("$backend: mixed load, server RSS every 10 s (MB): $(cat "$work/rss_series")")
    fi
  done
  if [ "$backend" = postgres ]; then
    tps=$(pgbench_tps "$admin")
    notes+=("postgres: pgbench TPC-B (scale 16, $PGBENCH_CLIENTS clients, ${DURATION} s, same session): $tps tps")
    for name in create transition; do
      [ -n "${throughput[$name/16]:-}" ] || continue
      # A ratio only means something when every request did the work (no 404 from an
      # exhausted transition pool).
      if [ "${failures[$name/16]}" != 0 ]; then
        notes+=("postgres: $name at 16 clients: no ratio to pgbench (${failures[$name/16]} non-2xx)")
        continue
      fi
      notes+=("postgres: $name at 16 clients = $(python3 -c "print(f'{${throughput[$name/16]} / $tps * 100:.0f}')") % of pgbench")
    done
  fi
  notes+=("$backend: transition pool $(wc -l <"$transition_ids") initial-state incidents, $(cat "$work/offset" 2>/dev/null || echo 0) handed out")
  if [ "$backend" = sqlite ]; then
    # Group commit (ADR-35): how many request writes each SQLite transaction held, on average.
    groups=$(curl -sf "$BASE/metrics" | awk '/^stageflow_db_group_commit_writes_(sum|count) / {v[$1]=$2}
      END {if (v["stageflow_db_group_commit_writes_count"] > 0) printf "%d writes in %d transactions, %.1f per transaction",
        v["stageflow_db_group_commit_writes_sum"], v["stageflow_db_group_commit_writes_count"],
        v["stageflow_db_group_commit_writes_sum"] / v["stageflow_db_group_commit_writes_count"]}')
    notes+=("sqlite: group commit over the whole run: ${groups:-none}")
  fi
  kill -TERM "$server"
  wait "$server" 2>/dev/null || true
  server=
done

{
  echo
  echo "### $(date -u +%Y-%m-%dT%H:%MZ) — $TICKETS tickets, ${DURATION} s per line, $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo
  echo "$header"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  printf -- '- %s\n' "${notes[@]}"
} | tee -a "$OUT/results.md"
