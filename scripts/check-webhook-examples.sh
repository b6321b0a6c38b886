#!/usr/bin/env bash
# Runs the signature-verification examples of docs/integration.md against real deliveries:
# a fresh server delivers two events (a ping and a user.created) to a local receiver, then the
# Python example (the standardwebhooks library) and the Java example (the JDK alone) must
# accept each genuine delivery and refuse it with a changed body.
#   usage: scripts/check-webhook-examples.sh [path/to/stageflow]   (default: target/debug/stageflow)
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-target/debug/stageflow}
examples=docs/examples/webhooks
started=$(date +%s)
lap() { echo "--- $* ($(($(date +%s) - started))s)"; }

venv=target/webhook-examples-venv
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$examples/requirements.txt" "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$examples/requirements.txt"
  cp "$examples/requirements.txt" "$venv/requirements.txt"
fi
if ! command -v javac >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq default-jdk-headless >/dev/null
fi
lap "tools ready"

# shellcheck source=scripts/lib/test-server.sh
source scripts/lib/test-server.sh
start_test_server "$binary" STAGEFLOW_WEBHOOK_ALLOW_PRIVATE=true STAGEFLOW_JOBS_TICK_MILLIS=100
out="$SF_WORK/deliveries"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 "$examples/receive.py" "$port" "$out" &
receiver=$!
trap 'kill $receiver 2>/dev/null || true; stop_test_server' EXIT

secret=$(SF_URL=$SF_URL SF_OPERATOR_PASSWORD=$SF_OPERATOR_PASSWORD RECEIVER="http://127.0.0.1:$port/hook" python3 - <<'PY'
import json, os, urllib.request

base = os.environ["SF_URL"]

def call(path, body, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, json.dumps(body).encode(), headers)
    with urllib.request.urlopen(request) as response:
        return json.load(response)

operator = call("/api/v1/auth/token", {"username": "operator", "password": os.environ["SF_OPERATOR_PASSWORD"]})["access_token"]
plan = call("/api/v1/plans", {"name": "Examples", "max_tenants": 1, "max_processes": 5, "max_users": 5}, operator)["id"]
account = call("/api/v1/accounts", {"name": "Examples", "plan_id": plan}, operator)["id"]
call("/api/v1/tenants", {"account_id": account, "slug": "examples", "name": "Examples", "time_zone": "Asia/Tokyo",
                         "admin": {"username": "admin", "password": "examples-passphrase-1"}}, operator)
admin = call("/api/v1/auth/token", {"tenant": "examples", "username": "admin", "password": "examples-passphrase-1"})["access_token"]
hook = call("/api/v1/webhooks", {"url": os.environ["RECEIVER"]}, admin)
call(f"/api/v1/webhooks/{hook['id']}/ping", {}, admin)
call("/api/v1/users", {"username": "newcomer", "display_name": "新人", "password": "agent-passphrase-7", "roles": ["agent"]}, admin)
print(hook["secret"])
PY
)
for _ in $(seq 1 100); do
  [ "$(ls "$out" 2>/dev/null | wc -l)" -ge 2 ] && break
  sleep 0.1
done
deliveries=("$out"/delivery-*)
[ "${#deliveries[@]}" -ge 2 ] || { echo "expected 2 deliveries, got ${#deliveries[@]}" >&2; exit 1; }
lap "2 deliveries received"

"$venv/bin/python" "$examples/verify.py" "$secret" "${deliveries[@]}"
lap "Python example (standardwebhooks)"
java "$examples/Verify.java" "$secret" "${deliveries[@]}"
lap "Java example (JDK)"
echo "webhook signature examples OK"
