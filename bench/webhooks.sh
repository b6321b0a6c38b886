#!/usr/bin/env bash
# Webhooks under load (docs/PERFORMANCE.md, "Webhooks"). Per backend, on a fresh database with
# SEED tickets (`stageflow seed-tickets`, for the tenant, its users and templates), with a
# local receiver (bench/webhook_receiver.py, asyncio) on 127.0.0.1 and
# STAGEFLOW_WEBHOOK_ALLOW_PRIVATE=true:
#   1. create, no subscription: POST /api/v1/tickets with wrk, CLIENTS connections, DURATION s
#      (the "before": events are written, nothing is delivered);
#   2. create, one subscription to ticket.created: the same run; every ticket is delivered,
#      and the receiver's arrival time minus the event's `at` gives the delivery lag
#      (p50/p99/max over every delivery of the run);
#   2b. the subscription disabled, the create run once more: the subscription's cost is run 2
#      against the mean of runs 1 and 2b (the database grows over the runs, which would
#      otherwise count against run 2 alone);
#   3. delivery rate: the receiver answers 503 with `Retry-After: <one HTTP date>` while
#      HOLD_CREATES tickets are created, so every delivery becomes due at the same instant;
#      then it answers 200, and deliveries/s = held deliveries ÷ (last − first arrival).
# Prints a Markdown table and appends it to target/bench-webhooks/results.md.
#
#   bash bench/webhooks.sh                                  # both backends
#   BACKENDS=sqlite DURATION=5 SKIP_BUILD=1 bash bench/webhooks.sh
#   PERF=1 BACKENDS=sqlite SKIP_BUILD=1 bash bench/webhooks.sh   # also profiles run 2 with perf
#   BEFORE_BIN=/path/to/stageflow BEFORE_LABEL=9b45ec0 bash bench/webhooks.sh
#       # adds the create run of a binary built before the event log (on its own fresh database)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
DURATION=${DURATION%s}
SEED=${SEED:-1000}
BACKENDS=${BACKENDS:-"sqlite postgres"}
CLIENTS=${CLIENTS:-16}
HOLD_CREATES=${HOLD_CREATES:-5000}
HOLD_SECONDS=${HOLD_SECONDS:-40}
PORT=${PORT:-18183}
RECEIVER_PORT=${RECEIVER_PORT:-18184}
BASE="http://127.0.0.1:$PORT"
RECEIVER="http://127.0.0.1:$RECEIVER_PORT"
OP_PASSWORD="bench-platform-passphrase"
OUT=${OUT:-target/bench-webhooks}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d)
cleanup() {
  # Never `kill 0` (an unset pid): that signals the whole process group, the caller too.
  for pid in "${server:-}" "${receiver:-}"; do
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
  rm -f "$OUT"/sqlite/bench.db*
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bin stageflow
bin=$PWD/target/release/stageflow
export STAGEFLOW_WEBHOOK_ALLOW_PRIVATE=true
# shellcheck source=bench/common.sh
source bench/common.sh

json() { python3 -c "import json,sys; d=json.load(open('$1')); print(d$2)"; }
stats() { curl -sf "$RECEIVER/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
login() {
  curl -sf "$BASE/api/v1/auth/token" -H 'content-type: application/json' \
    -d "{\"tenant\":\"$tenant\",\"username\":\"$1\",\"password\":\"$2\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
# Waits until the receiver has answered $1 deliveries with 200 (at most 120 s).
await_ok() {
  for _ in $(seq 1 1200); do
    [ "$(stats ok)" -ge "$1" ] && return 0
    sleep 0.1
  done
  echo "only $(stats ok) of $1 deliveries arrived" >&2
  return 1
}
created() { awk '/requests in/ {print $1}' "$work/wrk.txt"; }

cat >"$work/create.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.headers["Content-Type"] = "application/json"
local n = 0
function request()
  n = n + 1
  local body = string.format(
    '{"template":"itil_incident","fields":{"title":"webhook bench %d","description":"障害 %d","impact":"medium","urgency":"low"}}',
    n, n)
  return wrk.format(nil, "/api/v1/tickets", nil, body)
end
LUA

python3 bench/webhook_receiver.py "$RECEIVER_PORT" &
receiver=$!
for _ in $(seq 1 100); do curl -sf "$RECEIVER/stats" >/dev/null 2>&1 && break; sleep 0.1; done

header="| backend | measurement | clients | creates/s | create p99 | deliveries | delivery lag p50 | lag p99 | lag max | deliveries/s |"
rows=()
# A fresh database for $backend in $url.
fresh_db() {
  case $backend in
    sqlite) rm -f "$OUT"/sqlite/bench.db*; rm -rf "$OUT/sqlite/data"; url="$OUT/sqlite/bench.db" ;;
    postgres)
      admin=$(bash scripts/local-postgres.sh)
      psql "$admin" -qc "DROP DATABASE IF EXISTS stageflow_bench_webhooks WITH (FORCE)" \
        -c "CREATE DATABASE stageflow_bench_webhooks"
      url=${admin/\/postgres\?/\/stageflow_bench_webhooks?}
      ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
}
# Seeds the fresh database with $bin, starts it and logs in the agent and the admin.
seed_and_start() {
  local seed="$OUT/$backend/seed.json"
  DATABASE_URL=$url RUST_LOG=warn "$bin" seed-tickets --tickets "$SEED" --out "$seed" >"$OUT/$backend/seed.log" 2>&1
  start_server "$url"
  tenant=$(json "$seed" '["tenants"][0]["slug"]')
  TOKEN=$(login "$(json "$seed" '["tenants"][0]["agent"]["username"]')" "$(json "$seed" '["tenants"][0]["agent"]["password"]')")
  admin_token=$(login "$(json "$seed" '["tenants"][0]["admin"]["username"]')" "$(json "$seed" '["tenants"][0]["admin"]["password"]')")
  export TOKEN
}
stop_server() {
  kill -TERM "$server"
  wait "$server" 2>/dev/null || true
  server=
}

for backend in $BACKENDS; do
  mkdir -p "$OUT/$backend"
  # 0. the binary before the event log (BEFORE_BIN, built from the commit before it), if given.
  if [ -n "${BEFORE_BIN:-}" ]; then
    current=$bin bin=$BEFORE_BIN
    fresh_db
    seed_and_start
    read -r rps _ p99 err sock < <(measure "$CLIENTS" "$DURATION" create.lua "$BASE/")
    rows+=("| $backend | create, before the event log (${BEFORE_LABEL:-BEFORE_BIN}) | $CLIENTS | $rps | $p99 | – | – | – | – | – |")
    echo "${rows[-1]}" >&2
    stop_server
    bin=$current
  fi
  fresh_db
  seed_and_start
  curl -sf "$RECEIVER/mode?ok" >/dev/null

  # 1. before: no subscription.
  read -r rps _ p99 err sock < <(measure "$CLIENTS" "$DURATION" create.lua "$BASE/")
  rows+=("| $backend | create, events, no subscription | $CLIENTS | $rps | $p99 | – | – | – | – | – |")
  echo "${rows[-1]}" >&2
  before_rps=$rps

  # 2. with a subscription: throughput and lag.
  hook_id=$(curl -sf "$BASE/api/v1/webhooks" -H "authorization: Bearer $admin_token" \
    -H 'content-type: application/json' \
    -d "{\"url\":\"$RECEIVER/hook\",\"event_types\":[\"ticket.created\"]}" | field '["id"]')
  curl -sf "$RECEIVER/dump?path=$work/discard.tsv" >/dev/null
  base=$(stats ok)
  # HELD=1: the receiver answers 503 with a long Retry-After during this run, so the run
  # shows what the outbox costs the creating transactions alone (nothing is sent).
  [ -z "${HELD:-}" ] || curl -sf "$RECEIVER/mode?hold=$(($(date +%s) + 3600))" >/dev/null
  if [ -n "${PERF:-}" ]; then
    # PERF=1: a system-wide profile of the middle of this run (perf report -i $OUT/$backend/perf.data --sort comm,dso).
    (sleep 1; perf record -a -g -o "$OUT/$backend/perf.data" -- sleep $((DURATION - 2)) >/dev/null 2>&1) &
  fi
  read -r rps _ p99 err sock < <(measure "$CLIENTS" "$DURATION" create.lua "$BASE/")
  n=$(($(created) - err))
  if [ -n "${HELD:-}" ]; then
    rows+=("| $backend | create, 1 subscription, receiver holding (503) | $CLIENTS | $rps | $p99 | – | – | – | – | – |")
    echo "${rows[-1]}" >&2
    stop_server
    continue
  fi
  await_ok $((base + n)) || true
  curl -sf "$RECEIVER/dump?path=$OUT/$backend/lag.tsv" >/dev/null
  read -r count lag50 lag99 lagmax < <(python3 - "$OUT/$backend/lag.tsv" <<'PY'
import statistics, sys
lags = sorted(float(a) - float(b) for a, b, _ in (l.split("\t") for l in open(sys.argv[1])))
q = lambda p: lags[min(len(lags) - 1, int(p * len(lags)))] * 1000
print(len(lags), f"{q(0.5):.1f}ms", f"{q(0.99):.1f}ms", f"{lags[-1] * 1000:.1f}ms")
PY
)
  rows+=("| $backend | create, 1 subscription (ticket.created) | $CLIENTS | $rps | $p99 | $count | $lag50 | $lag99 | $lagmax | – |")
  echo "${rows[-1]}" >&2
  with_rps=$rps

  # 2b. the subscription disabled: the "before" again, now on the database runs 1 and 2 grew,
  # so the cost of the subscription is run 2 against the mean of runs 1 and 2b (a drift over
  # the runs, e.g. a larger database, then counts against neither side).
  curl -sf -X PATCH "$BASE/api/v1/webhooks/$hook_id" -H "authorization: Bearer $admin_token" \
    -H 'content-type: application/json' -d '{"enabled":false}' >/dev/null
  read -r rps _ p99 err sock < <(measure "$CLIENTS" "$DURATION" create.lua "$BASE/")
  rows+=("| $backend | create, subscription disabled again | $CLIENTS | $rps | $p99 | – | – | – | – | – |")
  echo "${rows[-1]}" >&2
  cost=$(python3 -c "print(f'{(1 - $with_rps / (($before_rps + $rps) / 2)) * 100:.1f}')")
  rows+=("| $backend | cost of the subscription: run 2 against the mean of 1 and 2b | – | −$cost % | – | – | – | – | – | – |")
  echo "${rows[-1]}" >&2
  curl -sf -X PATCH "$BASE/api/v1/webhooks/$hook_id" -H "authorization: Bearer $admin_token" \
    -H 'content-type: application/json' -d '{"enabled":true}' >/dev/null

  # 3. delivery rate: every delivery of HOLD_CREATES new tickets is answered 503 with
  # `Retry-After: <hold_until>`, so all come back at that instant (the runner finds them at
  # its next tick); from then on the receiver answers 200.
  hold_until=$(($(date +%s) + HOLD_SECONDS))
  curl -sf "$RECEIVER/mode?hold=$hold_until" >/dev/null
  base=$(stats ok)
  python3 - "$BASE" "$TOKEN" "$HOLD_CREATES" <<'PY'
import concurrent.futures, json, sys, urllib.request
base, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
def create(i):
    body = json.dumps({"template": "itil_incident", "fields": {"title": f"held {i}", "description": "held"}}).encode()
    req = urllib.request.Request(base + "/api/v1/tickets", body, {"authorization": "Bearer " + token, "content-type": "application/json"})
    urllib.request.urlopen(req).read()
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    list(pool.map(create, range(count)))
PY
  held=$(stats held)
  [ "$(date +%s)" -lt "$hold_until" ] || echo "warning: HOLD_SECONDS=$HOLD_SECONDS too short, $held held" >&2
  await_ok $((base + HOLD_CREATES)) || true
  curl -sf "$RECEIVER/dump?path=$OUT/$backend/rate.tsv" >/dev/null
  read -r count rate < <(python3 - "$OUT/$backend/rate.tsv" "$hold_until" <<'PY'
import sys
# Only what came back after the hold (not a straggler of the previous run).
arrivals = sorted(a for a in (float(l.split("\t")[0]) for l in open(sys.argv[1])) if a >= float(sys.argv[2]))
print(len(arrivals), f"{(len(arrivals) - 1) / (arrivals[-1] - arrivals[0]):.0f}")
PY
)
  rows+=("| $backend | backlog of $HOLD_CREATES deliveries due at once ($held answered 503) | – | – | – | $count | – | – | – | $rate |")
  echo "${rows[-1]}" >&2
  curl -sf "$RECEIVER/mode?ok" >/dev/null
  echo "$backend: $(rss) server peak RSS" >&2
  stop_server
done

{
  echo
  echo "### $(date -u +%Y-%m-%dT%H:%MZ) — ${DURATION} s per create run, $(nproc) cores, batch ${STAGEFLOW_JOBS_BATCH_SIZE:-16}, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo
  echo "$header"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee -a "$OUT/results.md"
