#!/usr/bin/env bash
# The monthly report's HTML form (format=html) in headless Chromium: a fresh server runs on a
# moved clock (libfaketime, a timestamp file the script rewrites), a month of inquiry work is
# done through the API day by day (May 2026, Tokyo time: tickets filed, started, resolved
# within and past their SLA, closed), and on 1 June the stored report is read as HTML,
# rendered, and checked: the three charts are drawn (inline SVG), the figures are on the
# page, and the page broke none of its content security policy. Leaves a screenshot
# (target/ci-artifacts/monthly-report.png), the page and the rendered DOM.
#   usage: scripts/check-report-page.sh [path/to/stageflow]   (default: target/debug/stageflow)
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/debug/stageflow}
out=target/ci-artifacts
mkdir -p "$out"

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
faketime_lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
[ -f "$faketime_lib" ] || missing+=(faketime)
# A Japanese font, so that the screenshot shows the names rather than empty boxes.
fc-list :lang=ja 2>/dev/null | grep -q . || missing+=(fonts-ipafont-gothic)
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

clock=$(mktemp)
echo "2026-05-01 00:30:00" >"$clock"
# shellcheck source=scripts/lib/test-server.sh
source scripts/lib/test-server.sh
# The server's wall clock reads the file at every call; its monotonic clock (timers, rate
# limits) stays real.
start_test_server "$binary" TZ=UTC LD_PRELOAD="$faketime_lib" FAKETIME_TIMESTAMP_FILE="$clock" \
  FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 STAGEFLOW_LOGIN_RATE_PER_MINUTE=100000 STAGEFLOW_ACCOUNT_RATE_PER_MINUTE=100000 \
  STAGEFLOW_ACCESS_TOKEN_TTL_SECONDS=86400
trap 'stop_test_server; rm -f "$clock"' EXIT

SF_CLOCK=$clock python3 - "$out" <<'PY'
import json, os, sys, urllib.error, urllib.request

base, clock, out = os.environ["SF_URL"], os.environ["SF_CLOCK"], sys.argv[1]

def call(method, path, body=None, token=None, raw=False):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request) as response:
            payload = response.read()
            return (payload, {k.lower(): v for k, v in response.headers.items()}) if raw else json.loads(payload or b"null")
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {path}: HTTP {e.code} {e.read().decode()}")

def at(when):
    with open(clock, "w") as f:
        f.write(when + "\n")

def login(user, password, tenant="acme"):
    return call("POST", "/api/v1/auth/token", {"tenant": tenant, "username": user, "password": password})["access_token"]

operator = call("POST", "/api/v1/auth/token", {"username": "operator", "password": os.environ["SF_OPERATOR_PASSWORD"]})["access_token"]
plan = call("POST", "/api/v1/plans", {"name": "Report", "max_tenants": 1, "max_processes": 5, "max_users": 10}, operator)["id"]
account = call("POST", "/api/v1/accounts", {"name": "Report", "plan_id": plan}, operator)["id"]
call("POST", "/api/v1/tenants", {"account_id": account, "slug": "acme", "name": "ACME <株式会社>", "time_zone": "Asia/Tokyo",
                                 "admin": {"username": "admin", "password": "report-passphrase-1"}}, operator)
admin = login("admin", "report-passphrase-1")
call("POST", "/api/v1/users", {"username": "pm", "display_name": "PM", "password": "report-passphrase-2", "roles": ["process_manager", "agent"]}, admin)
pm = login("pm", "report-passphrase-2")
call("POST", "/api/v1/masters", {"key": "priority", "name": {"ja": "優先度", "en": "Priority"},
     "items": [{"code": "p1", "label": {"ja": "緊急", "en": "P1"}}, {"code": "p2", "label": {"ja": "通常", "en": "P2"}}]}, pm)
with open("tests/fixtures/report-desk.json") as f:
    call("POST", "/api/v1/templates", {"key": "inquiry", "definition": json.load(f)}, pm)
call("POST", "/api/v1/templates/inquiry/versions/1/publish", {}, pm)
call("POST", "/api/v1/sla-policies", {"template": "inquiry", "name": "8 hours", "first_response_minutes": 120, "resolution_minutes": 480}, pm)

categories = ["請求", "ログイン", "VPN", "メール", "<b>markup</b>"]
def fire(token, ticket, transition):
    call("POST", f"/api/v1/tickets/{ticket}/transitions", {"transition": transition}, token)

new, working, resolved = [], [], []
filed = 0
for day in range(1, 32):
    # 10:00 JST: file the day's tickets (3 to 7), start yesterday's, close what was resolved.
    at(f"2026-05-{day:02d} 01:00:00")
    agent = login("pm", "report-passphrase-2")
    for ticket in resolved:
        fire(agent, ticket, "close")
    resolved = []
    for ticket in new:
        fire(agent, ticket, "start")
        working.append(ticket)
    new = []
    for k in range(3 + day % 5):
        t = call("POST", "/api/v1/tickets", {"template": "inquiry", "fields": {
            "title": f"問い合わせ {day}-{k}", "priority": "p1" if k == 0 else "p2",
            "category": categories[(day + k) % len(categories)]}}, agent)
        filed += 1
        if k % 3 == 0:
            new.append(t["id"])  # started tomorrow: late first response, late resolution
        else:
            fire(agent, t["id"], "start")
            working.append(t["id"])
    # 14:00 JST: resolve within the day (met) or the day after (breached), every other one.
    at(f"2026-05-{day:02d} 05:00:00")
    keep = []
    for n, ticket in enumerate(working):
        if n % 2 == 0:
            fire(agent, ticket, "resolve")
            resolved.append(ticket)
        else:
            keep.append(ticket)
    working = keep

at("2026-06-01 01:00:00")
admin = login("admin", "report-passphrase-1")
report = call("GET", "/api/v1/reports/monthly?month=2026-05", token=admin)
assert report["final"] is True, report
i = report["inquiries"]
assert i["opened"] == filed, (i["opened"], filed)
assert len(i["daily"]) == 31 and sum(d["opened"] for d in i["daily"]) == filed, i["daily"]
met = {c["target"]: (c["met"], c["breached"]) for c in i["sla"]}
assert all(m > 0 and b > 0 for m, b in met.values()), met
page, headers = call("GET", "/api/v1/reports/monthly?month=2026-05&format=html", token=admin, raw=True)
assert headers["content-type"].startswith("text/html"), headers
with open(f"{out}/monthly-report.html", "wb") as f:
    f.write(page)
print(f"{filed} tickets filed in May; closed {i['closed']}, open at the end {i['backlog']}; SLA {met}")
PY

url="file://$PWD/$out/monthly-report.html"
browser=(chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage
  --virtual-time-budget=5000 --window-size=1200,2600)
"${browser[@]}" --enable-logging=stderr --v=0 --dump-dom "$url" >"$out/monthly-report.dom.html" 2>"$out/monthly-report.console.log"
"${browser[@]}" --screenshot="$out/monthly-report.png" "$url" >/dev/null 2>&1

dom="$out/monthly-report.dom.html"
for id in cumulative-flow state-distribution sla-compliance; do
  # The figure holds a drawn chart: an <svg> with paths or rectangles in it.
  figure=$(python3 - "$dom" "$id" <<'PY'
import re, sys
html = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r'<figure id="%s">(.*?)</figure>' % sys.argv[2], html, re.S)
print(0 if not m or "<svg" not in m.group(1) else len(re.findall(r"<(?:rect|path|polyline|polygon)\b", m.group(1))))
PY
)
  echo "figure $id: $figure shapes"
  if [ "$figure" -lt 3 ]; then
    echo "the $id chart was not drawn (see $dom)" >&2
    exit 1
  fi
done
grep -q '&lt;b&gt;markup&lt;/b&gt;' "$dom" || { echo "a category was not escaped (see $dom)" >&2; exit 1; }
grep -q 'ACME &lt;株式会社&gt;' "$dom" || { echo "the tenant name is missing or unescaped (see $dom)" >&2; exit 1; }
if grep -iE "content security policy|refused to" "$out/monthly-report.console.log"; then
  echo "the page broke its content security policy (see $out/monthly-report.console.log)" >&2
  exit 1
fi
size=$(stat -c %s "$out/monthly-report.png")
echo "screenshot: $out/monthly-report.png ($size bytes)"
[ "$size" -gt 20000 ] || { echo "the screenshot is suspiciously small" >&2; exit 1; }
echo "report page OK"
