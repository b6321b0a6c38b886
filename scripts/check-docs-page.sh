#!/usr/bin/env bash
# Renders the API reference page (/api/docs) in headless Chromium against a fresh server and
# checks that the operation list is there and that the page broke none of its content security
# policy. Leaves a screenshot (target/ci-artifacts/api-docs.png) and the rendered DOM.
#   usage: scripts/check-docs-page.sh [path/to/stageflow]   (default: target/debug/stageflow)
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/debug/stageflow}
out=target/ci-artifacts
mkdir -p "$out"

if ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

# shellcheck source=scripts/lib/test-server.sh
source scripts/lib/test-server.sh
start_test_server "$binary"

url="$SF_URL/api/docs"
browser=(chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage
  --virtual-time-budget=20000 --window-size=1400,1000)
"${browser[@]}" --enable-logging=stderr --v=0 --dump-dom "$url" >"$out/api-docs.html" 2>"$out/api-docs.console.log"
"${browser[@]}" --screenshot="$out/api-docs.png" "$url" >/dev/null 2>&1

operations=$(python3 -c 'import json,sys; d=json.load(open("openapi/openapi.json")); print(sum(1 for p in d["paths"].values() for m in p if m in ("get","post","put","patch","delete")))')
rendered=$(grep -o 'data-item-id="[^"]*operation/[^"]*"' "$out/api-docs.html" | sort -u | wc -l)
echo "operations in the document: $operations; operations in the rendered menu: $rendered"
if [ "$rendered" -lt "$operations" ]; then
  echo "the page did not render every operation (see $out/api-docs.html)" >&2
  exit 1
fi
# The policy is meant to block Redoc's one outside request (the Redocly logo in the menu
# footer, an image from cdn.redoc.ly); anything blocked that the page needs to work is an error.
if grep -E "script-src|style-src|worker-src|connect-src|font-src" "$out/api-docs.console.log"; then
  echo "the page broke its content security policy (see $out/api-docs.console.log)" >&2
  exit 1
fi
ls -l "$out/api-docs.png"
echo "docs page OK"
