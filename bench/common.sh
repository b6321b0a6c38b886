# Shared by the wrk benchmarks (sourced): starting the server and reading wrk's report.
# Expects $bin, $PORT, $BASE, $OP_PASSWORD, $OUT, $backend and $work from the caller.

start_server() {
  DATABASE_URL=$1 STAGEFLOW_LISTEN=127.0.0.1:$PORT STAGEFLOW_OPERATOR_PASSWORD=$OP_PASSWORD \
    STAGEFLOW_DATA_DIR="$OUT/$backend/data" STAGEFLOW_LOGIN_RATE_PER_MINUTE=1000000 \
    STAGEFLOW_ACCESS_TOKEN_TTL_SECONDS=86400 RUST_LOG=warn "$bin" serve >"$OUT/$backend/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 600); do
    curl -sf "$BASE/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  cat "$OUT/$backend/server.log" >&2
  return 1
}

# Busy CPU time of the whole machine so far, in milliseconds (/proc/stat: user, nice, system,
# irq, softirq and steal of the "cpu" line; idle and iowait left out). Server, database and
# wrk share the machine, so a difference over a run is what that run cost all of them.
busy_ms() {
  awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" {printf "%.0f", ($2 + $3 + $4 + $7 + $8 + $9) * 1000 / hz}' /proc/stat
}

# wrk → "requests/s p50 p99 non-2xx socket-errors"; the CPU milliseconds per request of the
# run (busy_ms over wrk's request count) go to $work/cpu_ms.
measure() {
  local clients=$1 seconds=$2 script=$3 url=$4 threads=2
  [ "$clients" -ge 2 ] || threads=1
  local before after
  before=$(busy_ms)
  # THREADS tells the Lua scripts how many wrk threads share a pool of ids.
  THREADS=$threads wrk -t"$threads" -c"$clients" -d"${seconds}s" --timeout 10s --latency \
    -s "$work/$script" "$url" >"$work/wrk.txt"
  after=$(busy_ms)
  awk -v busy=$((after - before)) '/requests in/ {printf "%.2f\n", ($1 > 0 ? busy / $1 : 0)}' \
    "$work/wrk.txt" >"$work/cpu_ms"
  local rps p50 p99 errors socket
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  errors=$(awk '/Non-2xx/ {print $5}' "$work/wrk.txt")
  socket=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$work/wrk.txt")
  echo "$rps $p50 $p99 ${errors:-0} ${socket:-0}"
}

rss() { awk '/VmHWM/ {printf "%.0f MB", $2/1024}' "/proc/$server/status"; }

# POST/GET with a token; prints the body, fails loudly on a non-2xx answer.
call() {
  local method=$1 path=$2 auth=$3 body=${4:-} code
  code=$(curl -s -o "$work/reply.json" -w '%{http_code}' -X "$method" "$BASE$path" \
    ${auth:+-H "authorization: Bearer $auth"} -H 'content-type: application/json' ${body:+-d "$body"})
  if [ "${code:0:1}" != 2 ]; then
    echo "$method $path: HTTP $code" >&2
    cat "$work/reply.json" >&2
    exit 1
  fi
  cat "$work/reply.json"
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
