#!/usr/bin/env bash
# Checks the monitoring side: deploy/prometheus/ (alerting rules, their unit tests, the sample
# scrape configuration), deploy/grafana/stageflow-dashboard.json, and the /metrics exposition
# of a fresh server (clients/metrics/: the checker and its pinned requirements). See
# docs/operations.md, "Metrics and alerts".
#   usage: scripts/check-metrics.sh [path/to/stageflow]   (default: target/debug/stageflow)
# Needs promtool (installed from Debian's `prometheus` package when missing, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/debug/stageflow}
venv=target/metrics-venv
out=target/ci-artifacts/metrics
checker=clients/metrics/check_exposition.py
started=$(date +%s)
lap() { echo "--- $* ($(($(date +%s) - started))s)"; }

if [ ! -x "$binary" ]; then
  echo "no server binary at $binary (cargo build first, or pass its path)" >&2
  exit 1
fi
if ! command -v promtool >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool --version 2>&1 | head -n 1

requirements=clients/metrics/requirements.txt
if ! cmp -s "$requirements" "$venv/.requirements" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/.requirements"
fi
export PYTHONDONTWRITEBYTECODE=1
rm -rf "$out"
mkdir -p "$out"
lap "tools ready"

# --- the rules and the scrape configuration, offline --------------------------------------
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts.test.yml
"$venv/bin/python" "$checker" alerts deploy/prometheus/alerts.yml
# As shipped (the authorization block commented out; rule_files resolve beside the file) ...
promtool check config deploy/prometheus/prometheus.yml
# ... and with that block switched on: promtool insists that credentials_file exists.
mkdir -p "$out/config"
cp deploy/prometheus/alerts.yml "$out/config/"
echo "not-a-real-token-but-long-enough" >"$out/config/token"
sed -e 's|^    # authorization:|    authorization:|' -e 's|^    #   type: Bearer|      type: Bearer|' \
  -e "s|^    #   credentials_file: .*|      credentials_file: $PWD/$out/config/token|" \
  deploy/prometheus/prometheus.yml >"$out/config/prometheus.yml"
grep -q "credentials_file: $PWD/$out/config/token" "$out/config/prometheus.yml" || {
  echo "prometheus.yml: the commented authorization block is not where this script expects it" >&2
  exit 1
}
promtool check config "$out/config/prometheus.yml" >/dev/null
echo " SUCCESS: prometheus.yml with its authorization block switched on"
lap "rules, rule tests and scrape configuration"

# --- the dashboard -------------------------------------------------------------------------
# Every expression names known families only; promtool parses them (as recording rules, the
# Grafana variables replaced).
"$venv/bin/python" "$checker" dashboard deploy/grafana/stageflow-dashboard.json "$out/dashboard-rules.yml"
promtool check rules "$out/dashboard-rules.yml"
lap "dashboard"

# --- a live server's exposition ------------------------------------------------------------
token=$(python3 -c 'import secrets; print(secrets.token_hex(16))') # 32 characters
# shellcheck source=scripts/lib/test-server.sh
source scripts/lib/test-server.sh
start_test_server "$binary" STAGEFLOW_METRICS_TOKEN="$token"
lap "server started ($SF_URL)"

# expect STATUS WHAT CURL-ARGS...: one request, its status checked.
expect() {
  local want=$1 what=$2 got
  shift 2
  got=$(curl -sS -o /dev/null -w '%{http_code}' "$@")
  if [ "$got" != "$want" ]; then
    echo "FAIL $what: HTTP $got, expected $want" >&2
    exit 1
  fi
  echo "ok    $what: $got"
}
uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
for _ in 1 2 3; do expect 200 "GET /healthz" "$SF_URL/healthz"; done
expect 401 "GET /api/v1/tickets/$uuid without credentials" "$SF_URL/api/v1/tickets/$uuid"
# No route: must be counted as route="unmatched", not under its path.
expect 404 "GET /no-such-route/$uuid" "$SF_URL/no-such-route/$uuid"
expect 401 "POST /api/v1/auth/token with a wrong password" -X POST -H 'Content-Type: application/json' \
  --data '{"username":"nobody","password":"wrong-password-123"}' "$SF_URL/api/v1/auth/token"
expect 401 "GET /metrics without the token" "$SF_URL/metrics"
expect 401 "GET /metrics with another token" -H "Authorization: Bearer ${token//?/x}" "$SF_URL/metrics"
expect 200 "GET /metrics with the token" -H "Authorization: Bearer $token" "$SF_URL/metrics"
curl -fsS -D "$out/headers.txt" -o "$out/metrics.txt" -H "Authorization: Bearer $token" "$SF_URL/metrics"
if ! grep -qi '^content-type: text/plain; version=0.0.4' "$out/headers.txt"; then
  echo "FAIL /metrics Content-Type: $(grep -i '^content-type:' "$out/headers.txt")" >&2
  exit 1
fi
lap "traffic made and scraped ($(wc -l <"$out/metrics.txt") lines: $out/metrics.txt)"

"$venv/bin/python" "$checker" exposition "$out/metrics.txt"

# promtool's own parser, stricter than prometheus_client's. It exits 1 when the text does not
# parse ("error while linting: text format parsing error ...") and 3 when it parses but breaks
# a naming or HELP convention. Only the first fails this check: the names are the contract
# that check_exposition.py holds the scrape to (and the rules and dashboard use), so a lint
# remark is printed for the Rust side to weigh, not acted on here.
set +e
lint=$(promtool check metrics <"$out/metrics.txt" 2>&1)
lint_rc=$?
set -e
if [ "$lint_rc" -ne 0 ] && { [ "$lint_rc" -ne 3 ] || grep -q 'error while linting' <<<"$lint"; }; then
  echo "FAIL promtool check metrics (exit $lint_rc):" >&2
  echo "$lint" >&2
  exit 1
elif [ -n "$lint" ]; then
  echo "promtool check metrics: lint remarks (not failing):"
  # shellcheck disable=SC2001 # indent every line
  sed 's/^/  /' <<<"$lint"
else
  echo "promtool check metrics: clean"
fi
lap "exposition"
echo "metrics check OK"
