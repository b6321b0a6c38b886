#!/usr/bin/env bash
# The TypeScript client as a test (#13 point 5): generates the types from openapi/openapi.json
# with openapi-typescript (no hand edits; src/schema.d.ts is not committed), type-checks and
# compiles the scenario with tsc (strict), then runs it with openapi-fetch against a fresh
# server. Fails on a type error, a failed assertion, a response the document does not describe,
# a cast in the scenario, or a generated free-form object that reads as `Record<string, never>`.
#   usage: scripts/client-typescript.sh [path/to/stageflow]   (default: target/debug/stageflow)
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/debug/stageflow}
dir=clients/typescript
started=$(date +%s%N)
lap=$started
timing() {
  local now
  now=$(date +%s%N)
  printf '%-44s %6d ms\n' "$1" $(((now - lap) / 1000000))
  lap=$now
}

# npm ci only when package-lock.json changed since the last install.
lock_sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
stamp="$dir/node_modules/.stageflow-lock-sha256"
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" >"$stamp"
  timing "npm ci"
else
  timing "npm ci (node_modules current, skipped)"
fi

(cd "$dir" && npx --no-install openapi-typescript ../../openapi/openapi.json -o src/schema.d.ts --silent)
timing "openapi-typescript"

# Only the two empty top-level maps (`webhooks`, `$defs`) may be `Record<string, never>`: a
# property typed so cannot be written (the issue's 27 properties before the document was fixed).
empty_records=$(grep -c 'Record<string, never>' "$dir/src/schema.d.ts" || true)
never_members=$(grep -cE '^\s+("[^"]+"|[A-Za-z_$][A-Za-z0-9_$]*)\??: never;' "$dir/src/schema.d.ts" || true)
never_properties=$(grep -E '^\s+("[^"]+"|[A-Za-z_$][A-Za-z0-9_$]*)\??: never;' "$dir/src/schema.d.ts" |
  grep -cvE '^\s+(query|header|path|cookie|requestBody|content|parameters|requestBodies|headers|pathItems|get|put|post|delete|options|head|patch|trace)\??: never;' || true)
echo "generated types: $(wc -l <"$dir/src/schema.d.ts") lines; Record<string, never>: $empty_records" \
  "(webhooks, \$defs); members typed never: $never_members, of which outside the" \
  "operation/parameter skeleton: $never_properties"
if [ "$empty_records" -gt 2 ] || [ "$never_properties" -gt 0 ]; then
  grep -nE 'Record<string, never>|: never;' "$dir/src/schema.d.ts" | grep -vE '^\S+\s+(query|header|path|cookie|requestBody|content|parameters|requestBodies|headers|pathItems|get|put|post|delete|options|head|patch|trace)\??: never;' >&2
  echo "the document has properties generated clients cannot use (above)" >&2
  exit 1
fi

# The scenario reads API results through the generated types only: no cast, `!` or `any`.
(cd "$dir" && find src -name '*.ts' ! -name '*.d.ts' -print0 | sort -z | xargs -0 node no-casts.mjs)

(cd "$dir" && npx --no-install tsc -p tsconfig.json)
timing "tsc (strict) → dist/"

# The server's log is kept as a CI artifact (it has the request ids of any failure).
mkdir -p target/ci-artifacts
export SF_KEEP_LOG=${SF_KEEP_LOG:-target/ci-artifacts/client-typescript.server.log}
# shellcheck source=scripts/lib/test-server.sh
source scripts/lib/test-server.sh
start_test_server "$binary"
timing "server start"

node "$dir/dist/scenario.js"
timing "scenario"
printf '%-44s %6d ms\n' "total" $((($(date +%s%N) - started) / 1000000))
echo "TypeScript client OK"
