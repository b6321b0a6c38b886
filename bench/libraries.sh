#!/usr/bin/env bash
# Library record throughput and latency: a tenant with a knowledge-base library is filled over
# HTTP (wrk at 16 connections for SEED_SECONDS, each request one record with Japanese and
# English words, a category and an internal note), then measured with wrk, each at 1 and 16
# connections for DURATION seconds:
#   create   POST /api/v1/libraries/kb/records
#   get-one  GET  /api/v1/libraries/kb/records/{id}        (1,000 records, round robin)
#   list     GET  /api/v1/libraries/kb/records?field.category=known_error (limit 50)
#   search   GET  /api/v1/libraries/kb/records?q=障害       (limit 50)
#   stale    GET  /api/v1/libraries/kb/records?stale=true   (limit 50; 10 % backdated)
# on SQLite and on PostgreSQL, plus the server's peak RSS. Prints a Markdown table for
# docs/PERFORMANCE.md and appends it to target/bench-libraries/results.md. 127.0.0.1 only.
#
#   bash bench/libraries.sh                                  # 60 s of seeding, 10 s per line
#   SEED_SECONDS=5 DURATION=3 BACKENDS=sqlite SKIP_BUILD=1 bash bench/libraries.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
SEED_SECONDS=${SEED_SECONDS:-60}
BACKENDS=${BACKENDS:-"sqlite postgres"}
CLIENTS=${CLIENTS:-"1 16"}
PORT=${PORT:-18183}
BASE="http://127.0.0.1:$PORT"
OP_PASSWORD="bench-platform-passphrase"
OUT=${OUT:-target/bench-libraries}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d)
cleanup() {
  # Never `kill 0` (an unset pid): that signals the whole process group, the caller too.
  [ -z "${server:-}" ] || kill "$server" 2>/dev/null || true
  rm -rf "$work"
  rm -f "$OUT"/sqlite/bench.db*
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet
bin=$PWD/target/release/stageflow
# shellcheck source=bench/common.sh
source bench/common.sh


# A tenant with an agent, the kb_category master and the kb library; sets $token.
setup_tenant() {
  local op plan account admin
  op=$(call POST /api/v1/auth/token "" "{\"username\":\"operator\",\"password\":\"$OP_PASSWORD\"}" | field '["access_token"]')
  plan=$(call POST /api/v1/plans "$op" '{"name":"Bench","max_tenants":5,"max_processes":50,"max_users":100}' | field '["id"]')
  account=$(call POST /api/v1/accounts "$op" "{\"name\":\"Bench Corp.\",\"plan_id\":\"$plan\"}" | field '["id"]')
  call POST /api/v1/tenants "$op" "{\"account_id\":\"$account\",\"slug\":\"bench\",\"name\":\"Bench\",\"time_zone\":\"Asia/Tokyo\",\"admin\":{\"username\":\"admin\",\"password\":\"bench-tenant-passphrase\"}}" >/dev/null
  admin=$(call POST /api/v1/auth/token "" '{"tenant":"bench","username":"admin","password":"bench-tenant-passphrase"}' | field '["access_token"]')
  call POST /api/v1/users "$admin" '{"username":"agent1","password":"bench-agent-passphrase","display_name":"Agent","roles":["agent"]}' >/dev/null
  call POST /api/v1/masters "$admin" '{"key":"kb_category","name":{"ja":"分類","en":"Category"},"items":[{"code":"howto","label":{"ja":"手順","en":"How-to"}},{"code":"known_error","label":{"ja":"既知のエラー","en":"Known error"}},{"code":"faq","label":{"ja":"FAQ","en":"FAQ"}}]}' >/dev/null
  call POST /api/v1/libraries "$admin" '{"key":"kb","definition":{"name":{"ja":"ナレッジ","en":"Knowledge"},"title_field":"title","review_interval_days":180,"access":{"read":["agent"],"write":["agent"]},"fields":[{"key":"title","type":"text","required":true,"label":{"ja":"件名","en":"Title"}},{"key":"body","type":"long_text","label":{"ja":"本文","en":"Body"}},{"key":"category","type":"select","master":"kb_category","label":{"ja":"分類","en":"Category"}},{"key":"note","type":"text","internal":true,"label":{"ja":"メモ","en":"Note"}}]}}' >/dev/null
  token=$(call POST /api/v1/auth/token "" '{"tenant":"bench","username":"agent1","password":"bench-agent-passphrase"}' | field '["access_token"]')
}

write_lua() {
  cat >"$work/common.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
local count = 0
function setup(thread)
  thread:set("tid", count)
  count = count + 1
end
function init(args) n = 0 end
LUA
  cat >"$work/create.lua" <<'LUA'
dofile(os.getenv("LUA_DIR") .. "/common.lua")
wrk.method = "POST"
local words = {"障害", "printer", "申請", "network", "遅延", "login", "接続", "timeout"}
local categories = {"howto", "known_error", "faq"}
function request()
  n = n + 1
  local k = tid * 1000003 + n
  local a, b = words[k % #words + 1], words[(k * 7) % #words + 1]
  local body = string.format(
    '{"fields":{"title":"%s %s 記事 %d","body":"%sの対処手順 (%d): 再起動して%sを確認する","category":"%s","note":"社内 %d"}}',
    a, b, k, a, k, b, categories[k % 3 + 1], k)
  return wrk.format(nil, "/api/v1/libraries/kb/records", nil, body)
end
LUA
  cat >"$work/get.lua" <<'LUA'
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local ids = {}
for line in io.lines(os.getenv("IDS")) do ids[#ids + 1] = line end
function request()
  n = n + 1
  return wrk.format("GET", "/api/v1/libraries/kb/records/" .. ids[(tid * 7919 + n) % #ids + 1], nil, nil)
end
LUA
  cat >"$work/static.lua" <<'LUA'
dofile(os.getenv("LUA_DIR") .. "/common.lua")
LUA
}

# SQL on the bench database (backdating reviews, counting records).
sql() {
  case $backend in
    sqlite) python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute(sys.argv[2]).fetchall(); c.commit(); print(r[0][0] if r else '')" "$OUT/sqlite/bench.db" "$1" ;;
    postgres) psql "$url" -tAc "$1" ;;
  esac
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
      admin_url=$(bash scripts/local-postgres.sh)
      psql "$admin_url" -qc "DROP DATABASE IF EXISTS stageflow_bench_lib WITH (FORCE)" -c "CREATE DATABASE stageflow_bench_lib"
      url=${admin_url/\/postgres\?/\/stageflow_bench_lib?}
      ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
  start_server "$url"
  setup_tenant
  write_lua
  export LUA_DIR=$work IDS=$work/ids.txt
  echo "== $backend: seeding for ${SEED_SECONDS} s" >&2
  read -r seed_rps _ _ seed_err _ < <(measure 16 "$SEED_SECONDS" create.lua "$BASE/")
  records=$(sql "SELECT count(*) FROM library_records")
  notes+=("$backend: seeded $records records over HTTP in ${SEED_SECONDS} s ($seed_rps/s at 16 connections, $seed_err non-2xx)")
  # Every tenth record is past its review date.
  case $backend in
    sqlite) sql "UPDATE library_records SET review_due_at = '2000-01-01T00:00:00.000000Z' WHERE rowid % 10 = 0" >/dev/null ;;
    postgres) sql "UPDATE library_records SET review_due_at = '2000-01-01T00:00:00Z' WHERE ('x' || substr(md5(id::text), 1, 2))::bit(8)::int % 10 = 0" >/dev/null ;;
  esac
  notes+=("$backend: $(sql "SELECT count(*) FROM library_records WHERE review_due_at < '2001-01-01'") records stale")
  call GET "/api/v1/libraries/kb/records?limit=500" "$token" | python3 -c 'import json,sys; [print(r["id"]) for r in json.load(sys.stdin)["items"]]' >"$IDS"
  call GET "/api/v1/libraries/kb/records?limit=50&field.category=known_error" "$token" >/dev/null
  call GET "/api/v1/libraries/kb/records?limit=50&q=%E9%9A%9C%E5%AE%B3" "$token" >/dev/null
  call GET "/api/v1/libraries/kb/records?limit=50&stale=true" "$token" >/dev/null
  for spec in \
    "POST /libraries/kb/records|create.lua|$BASE/" \
    "GET /libraries/kb/records/{id}|get.lua|$BASE/" \
    "GET …/records?field.category=known_error (limit 50)|static.lua|$BASE/api/v1/libraries/kb/records?limit=50&field.category=known_error" \
    "GET …/records?q=障害 (limit 50)|static.lua|$BASE/api/v1/libraries/kb/records?limit=50&q=%E9%9A%9C%E5%AE%B3" \
    "GET …/records?stale=true (limit 50)|static.lua|$BASE/api/v1/libraries/kb/records?limit=50&stale=true"; do
    IFS='|' read -r label script target <<<"$spec"
    for clients in $CLIENTS; do
      read -r rps p50 p99 err sock < <(measure "$clients" "$DURATION" "$script" "$target")
      row="| $backend | $label | $clients | $rps | $p50 | $p99 | $err | $sock | $(rss) |"
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
  echo "### $(date -u +%Y-%m-%dT%H:%MZ) — library records, seeding ${SEED_SECONDS} s, ${DURATION} s per line, $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo
  echo "$header"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  printf -- '- %s\n' "${notes[@]}"
} | tee -a "$OUT/results.md"
