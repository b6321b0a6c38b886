#!/usr/bin/env bash
# Bulk import throughput (#19): on a fresh database per backend, a tenant with the impact
# master, a CMDB library and an inquiry template; then two CSV files of ROWS rows each, made
# before the clock starts, are POSTed as text/csv and applied by the `import.run` job:
#   tickets   件名 (Japanese title), 影響度 (a master label), 期限 (2026/12/01 dates)
#   records   名称, 資産番号, 影響度, 購入日 (the same kinds of cells)
# rows/s = rows ÷ (the import's finished_at − started_at), as GET /imports/{id} reports it,
# plus the wall time from the POST to done, CPU ms per row (/proc/stat, whole machine) and the
# server's peak RSS. Prints a Markdown table for docs/PERFORMANCE.md and appends it to
# target/bench-imports/results.md. 127.0.0.1 only.
#
#   bash bench/imports.sh                                   # 100,000 rows per file
#   ROWS=5000 BACKENDS=sqlite SKIP_BUILD=1 bash bench/imports.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-100000}
BACKENDS=${BACKENDS:-"sqlite postgres"}
PORT=${PORT:-18185}
BASE="http://127.0.0.1:$PORT"
OP_PASSWORD="bench-platform-passphrase"
OUT=${OUT:-target/bench-imports}
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

[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet
bin=$PWD/target/release/stageflow
# shellcheck source=bench/common.sh
source bench/common.sh


setup_tenant() {
  local op plan account
  op=$(call POST /api/v1/auth/token "" "{\"username\":\"operator\",\"password\":\"$OP_PASSWORD\"}" | field '["access_token"]')
  plan=$(call POST /api/v1/plans "$op" '{"name":"Bench","max_tenants":5,"max_processes":50,"max_users":100}' | field '["id"]')
  account=$(call POST /api/v1/accounts "$op" "{\"name\":\"Bench Corp.\",\"plan_id\":\"$plan\"}" | field '["id"]')
  call POST /api/v1/tenants "$op" "{\"account_id\":\"$account\",\"slug\":\"bench\",\"name\":\"Bench\",\"time_zone\":\"Asia/Tokyo\",\"admin\":{\"username\":\"admin\",\"password\":\"bench-tenant-passphrase\"}}" >/dev/null
  token=$(call POST /api/v1/auth/token "" '{"tenant":"bench","username":"admin","password":"bench-tenant-passphrase"}' | field '["access_token"]')
  call POST /api/v1/masters "$token" '{"key":"impact","name":{"ja":"影響度","en":"Impact"},"items":[{"code":"high","label":{"ja":"高","en":"High"}},{"code":"low","label":{"ja":"低","en":"Low"}}]}' >/dev/null
  call POST /api/v1/libraries "$token" '{"key":"cmdb","definition":{"name":{"ja":"構成管理","en":"CMDB"},"title_field":"name","access":{"read":["agent"],"write":["agent"]},"fields":[{"key":"name","type":"text","required":true,"label":{"ja":"名称","en":"Name"}},{"key":"asset_tag","type":"text","label":{"ja":"資産番号","en":"Asset tag"}},{"key":"impact","type":"select","master":"impact","label":{"ja":"影響度","en":"Impact"}},{"key":"bought","type":"date","label":{"ja":"購入日","en":"Bought"}}]}}' >/dev/null
  call POST /api/v1/templates "$token" '{"key":"inquiry","definition":{"name":{"ja":"問い合わせ","en":"Inquiry"},"key_prefix":"INQ","fields":[{"key":"title","type":"text","required":true,"label":{"ja":"件名","en":"Title"}},{"key":"impact","type":"select","master":"impact","label":{"ja":"影響度","en":"Impact"}},{"key":"due","type":"date","label":{"ja":"期限","en":"Due"}}],"stages":[{"key":"all","label":{"ja":"全体","en":"All"},"states":[{"key":"open","label":{"ja":"受付","en":"Open"},"initial":true},{"key":"closed","label":{"ja":"完了","en":"Closed"},"terminal":true}]}],"transitions":[{"key":"close","label":{"ja":"完了","en":"Close"},"from":["open"],"to":"closed","allowed":{"roles":["agent"]}}]}}' >/dev/null
  call POST /api/v1/templates/inquiry/versions/1/publish "$token" '{}' >/dev/null
}

make_files() {
  python3 - "$ROWS" "$work" <<'PY'
import sys
rows, work = int(sys.argv[1]), sys.argv[2]
with open(f"{work}/tickets.csv", "w", encoding="utf-8") as f:
    f.write("件名,影響度,期限\n")
    for i in range(rows):
        f.write(f"プリンタ障害 {i} printer,{'高' if i % 2 else '低'},2026/12/{i % 28 + 1:02d}\n")
with open(f"{work}/records.csv", "w", encoding="utf-8") as f:
    f.write("名称,資産番号,影響度,購入日\n")
    for i in range(rows):
        f.write(f"サーバー {i} server,PC-{i:06d},{'高' if i % 2 else '低'},2025/4/{i % 28 + 1}\n")
PY
}

# POSTs a file, waits for the import, prints "rows/s wall_s cpu_ms_per_row created failed".
run_import() {
  local query=$1 file=$2 code id status before after started
  before=$(busy_ms)
  started=$(date +%s.%N)
  code=$(curl -s -o "$work/reply.json" -w '%{http_code}' -X POST "$BASE/api/v1/imports?$query" \
    -H "authorization: Bearer $token" -H 'content-type: text/csv; charset=utf-8' --data-binary "@$file")
  [ "${code:0:1}" = 2 ] || { echo "import: HTTP $code" >&2; cat "$work/reply.json" >&2; exit 1; }
  id=$(field '["id"]' <"$work/reply.json")
  while :; do
    curl -s "$BASE/api/v1/imports/$id" -H "authorization: Bearer $token" >"$work/status.json"
    status=$(field '["status"]' <"$work/status.json")
    [ "$status" = done ] || [ "$status" = failed ] && break
    sleep 0.5
  done
  after=$(busy_ms)
  python3 - "$work/status.json" "$started" "$(date +%s.%N)" "$before" "$after" <<'PY'
import json, sys, datetime
s = json.load(open(sys.argv[1]))
parse = lambda t: datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
seconds = max((parse(s["finished_at"]) - parse(s["started_at"])).total_seconds(), 1e-3)
rows = s["total_rows"]
wall = float(sys.argv[3]) - float(sys.argv[2])
cpu = (int(sys.argv[5]) - int(sys.argv[4])) / max(rows, 1)
print(f"{rows / seconds:,.0f} {wall:.1f} {cpu:.2f} {s['counts']['created']} {s['counts']['failed']} {s['status']}")
PY
}

header="| backend | file | rows | rows/s (job) | wall s (POST → done) | CPU ms/row | created | failed | server peak RSS |"
rows=()
make_files
for backend in $BACKENDS; do
  mkdir -p "$OUT/$backend"
  case $backend in
    sqlite)
      rm -f "$OUT"/sqlite/bench.db*
      url="$OUT/sqlite/bench.db"
      ;;
    postgres)
      admin_url=$(bash scripts/local-postgres.sh)
      psql "$admin_url" -qc "DROP DATABASE IF EXISTS stageflow_bench_imports WITH (FORCE)" -c "CREATE DATABASE stageflow_bench_imports"
      url=${admin_url/\/postgres\?/\/stageflow_bench_imports?}
      ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
  start_server "$url"
  setup_tenant
  for target in tickets records; do
    case $target in
      tickets) query="target=tickets&template=inquiry" ;;
      records) query="target=library_records&library=cmdb" ;;
    esac
    read -r rate wall cpu created failed status < <(run_import "$query" "$work/$target.csv")
    rows+=("| $backend | $target | $ROWS | $rate | $wall | $cpu | $created | $failed | $(rss) |")
    echo "${rows[-1]}" >&2
    [ "$status" = done ] || { echo "import of $target ended $status" >&2; exit 1; }
  done
  kill "$server"; wait "$server" 2>/dev/null || true; server=
done
{
  echo "$header"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee -a "$OUT/results.md"
