#!/usr/bin/env bash
# schemathesis over every operation of openapi/openapi.json against a fresh server, once as the
# tenant admin and once as the platform operator (clients/schemathesis/: setup, hooks, pinned
# requirements). Fails on any check failure or error. See docs/openapi.md, "schemathesis".
#   usage: scripts/schemathesis.sh [path/to/stageflow]   (default: target/debug/stageflow)
# Tuning (a longer run by hand): SCHEMATHESIS_MAX_EXAMPLES (default 12),
#   SCHEMATHESIS_PHASES (default examples,coverage,fuzzing,stateful),
#   SCHEMATHESIS_STATEFUL_EXAMPLES (stateful scenarios per identity, default 200),
#   SCHEMATHESIS_CHECKS (default: the five conformance checks; `all` for schemathesis' others),
#   SCHEMATHESIS_SEED (default: random; the seed is printed).
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/debug/stageflow}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-12}
phases=${SCHEMATHESIS_PHASES:-examples,coverage,fuzzing,stateful}
venv=target/schemathesis-venv
out=target/ci-artifacts/schemathesis
started=$(date +%s)
lap() { echo "--- $* ($(($(date +%s) - started))s)"; }

requirements=clients/schemathesis/requirements.txt
if ! cmp -s "$requirements" "$venv/.requirements" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/.requirements"
fi
"$venv/bin/st" --version
lap "venv ready"

# shellcheck source=scripts/lib/test-server.sh
source scripts/lib/test-server.sh
start_test_server "$binary"
rm -rf "$out"
mkdir -p "$out"
"$venv/bin/python" clients/schemathesis/setup.py "$SF_URL" "$SF_OPERATOR_PASSWORD" "$out"
lap "server started and set up ($SF_URL)"

export SCHEMATHESIS_HOOKS=clients/schemathesis/hooks.py PYTHONDONTWRITEBYTECODE=1
# hypothesis keeps its own files (constants, examples) in the working directory by default.
export HYPOTHESIS_STORAGE_DIRECTORY=target/schemathesis-hypothesis
SF_PROTECTED_USERS=$(cat "$out/protected-users")
export SF_PROTECTED_USERS
checks=not_a_server_error,status_code_conformance,content_type_conformance
checks=${SCHEMATHESIS_CHECKS:-$checks,response_schema_conformance,response_headers_conformance}
failed=0
# The tenant admin first: the operator's run may delete tenants (only the spare one is offered).
for identity in admin operator; do
  args=(run openapi/openapi.json --url "$SF_URL" --checks "$checks" --phases "$phases"
    --max-examples "$max_examples" --workers 2 --no-color --generation-database none
    --report junit,ndjson --report-dir "$out/$identity"
    # An endless response (15 minutes unless the client hangs up): tests/api/events.rs
    # reads it frame by frame instead (docs/openapi.md, "schemathesis").
    --exclude-path /api/v1/events/stream)
  if [ -n "${SCHEMATHESIS_SEED:-}" ]; then args+=(--seed "$SCHEMATHESIS_SEED"); fi
  if ! "$venv/bin/st" --config-file "$out/$identity.toml" "${args[@]}" >"$out/$identity.log" 2>&1; then
    failed=1
  fi
  sed -n '/=== SUMMARY ===/,$p' "$out/$identity.log"
  lap "schemathesis as $identity"
done
if [ "$failed" -ne 0 ]; then
  echo "schemathesis found failures: see $out/{admin,operator}.log (the server log follows)" >&2
  tail -n 50 "$SF_WORK/server.log" >&2
  exit 1
fi
echo "schemathesis OK"
