#!/usr/bin/env bash
# Mail intake throughput with virus scanning (docs/PERFORMANCE.md, "Mail intake"). Per backend,
# on a fresh database (`stageflow seed-tickets` for the tenant, its admin and the catalog's
# customer_inquiry template), with a real clamd (scripts/local-clamd.sh, the EICAR-only test
# signature database) and one mail channel:
#   1. SMALL messages of ~2 KB Japanese text (UTF-8, base64), each from a new sender, so every
#      one is scanned, parsed, a requester created and a ticket filed;
#   2. LARGE messages with a 1 MiB attachment (a MIME-encoded Japanese file name): the raw
#      message and the decoded attachment are both streamed to clamd.
# Each case POSTs its messages to /api/v1/mail-channels/{id}/messages (message/rfc822) from
# CLIENTS concurrent clients (bench/mail_client.py) and prints msgs/s, p50/p99 latency and the
# outcome counts (all must be `filed`). Prints a Markdown table and appends it to
# target/bench-mail-intake/results.md.
#
#   bash bench/mail-intake.sh                                # both backends, release build
#   BACKENDS=sqlite SMALL=100 LARGE=10 SKIP_BUILD=1 bash bench/mail-intake.sh
#   BIN=target/debug/stageflow SKIP_BUILD=1 bash bench/mail-intake.sh   # another binary
set -euo pipefail
cd "$(dirname "$0")/.."

SMALL=${SMALL:-500}
LARGE=${LARGE:-50}
CLIENTS=${CLIENTS:-4}
BACKENDS=${BACKENDS:-"sqlite postgres"}
PORT=${PORT:-18185}
BASE="http://127.0.0.1:$PORT"
OP_PASSWORD="bench-platform-passphrase"
OUT=${OUT:-target/bench-mail-intake}
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

[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bin stageflow
bin=${BIN:-$PWD/target/release/stageflow}
STAGEFLOW_CLAMD=$(bash scripts/local-clamd.sh)
export STAGEFLOW_CLAMD
# shellcheck source=bench/common.sh
source bench/common.sh

json() { python3 -c "import json,sys; d=json.load(open('$1')); print(d$2)"; }

fresh_db() {
  case $backend in
    sqlite) rm -f "$OUT"/sqlite/bench.db*; rm -rf "$OUT/sqlite/data"; url="$OUT/sqlite/bench.db" ;;
    postgres)
      admin=$(bash scripts/local-postgres.sh)
      psql "$admin" -qc "DROP DATABASE IF EXISTS stageflow_bench_mail WITH (FORCE)" \
        -c "CREATE DATABASE stageflow_bench_mail"
      url=${admin/\/postgres\?/\/stageflow_bench_mail?}
      ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
}

header="| backend | case | messages | clients | msgs/s | p50 | p99 | outcomes |"
rows=()
for backend in $BACKENDS; do
  mkdir -p "$OUT/$backend"
  fresh_db
  seed="$OUT/$backend/seed.json"
  DATABASE_URL=$url RUST_LOG=warn "$bin" seed-tickets --tickets 100 --out "$seed" >"$OUT/$backend/seed.log" 2>&1
  start_server "$url"
  tenant=$(json "$seed" '["tenants"][0]["slug"]')
  token=$(curl -sf "$BASE/api/v1/auth/token" -H 'content-type: application/json' \
    -d "{\"tenant\":\"$tenant\",\"username\":\"$(json "$seed" '["tenants"][0]["admin"]["username"]')\",\"password\":\"$(json "$seed" '["tenants"][0]["admin"]["password"]')\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  channel=$(curl -sf "$BASE/api/v1/mail-channels" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' \
    -d '{"address":"bench@example.co.jp","template":"customer_inquiry","subject_field":"title","body_field":"inquiry_body","defaults":{"channel":"email"},"max_message_bytes":10485760}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  for case in small large; do
    count=$SMALL
    [ "$case" = small ] || count=$LARGE
    [ "$count" -gt 0 ] || continue
    read -r rate p50 p99 outcomes < <(python3 bench/mail_client.py "$BASE" "$token" "$channel" \
      "$case" "$count" "$CLIENTS" "$backend")
    label="~2 KB Japanese text"
    [ "$case" = small ] || label="1 MiB attachment"
    rows+=("| $backend | $label | $count | $CLIENTS | $rate | $p50 | $p99 | $outcomes |")
    echo "${rows[-1]}" >&2
  done
  echo "$backend: $(rss) server peak RSS" >&2
  kill -TERM "$server"
  wait "$server" 2>/dev/null || true
  server=
done

{
  echo
  echo "### $(date -u +%Y-%m-%dT%H:%MZ) — $(nproc) cores, $(basename "$(dirname "$bin")") binary, clamd $(clamd --version 2>/dev/null | cut -d/ -f1), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo
  echo "$header"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee -a "$OUT/results.md"
