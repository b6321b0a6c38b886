#!/usr/bin/env bash
# The generated Python client as a test (#13 point 5): generates a client from
# openapi/openapi.json with openapi-python-client (pinned in clients/python/requirements.txt,
# configured by clients/python/generator.yaml, no hand edits), type-checks it and the scenario
# with `mypy --strict`, and runs the end-to-end scenario (clients/python/scenario.py) with it
# against a fresh server. Fails on any generator warning, any mypy error or a failed step.
# The venv, the generated client and mypy's cache live under clients/python (gitignored) and
# are reused while their inputs are unchanged, so a re-run takes a few seconds.
#   usage: scripts/client-python.sh [path/to/stageflow]   (default: target/debug/stageflow)
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/debug/stageflow}
dir=clients/python
venv=$dir/.venv
python=${PYTHON:-$(command -v python3.11 || command -v python3)}

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" "$1" "$(now)"; }
timings=()
phase_start=$(now)
phase_done() { timings+=("$1: $(elapsed "$phase_start")"); phase_start=$(now); }
total_start=$phase_start

# 1. The venv, rebuilt when the pinned requirements change.
stamp=$venv/.requirements.sha256
want=$(sha256sum "$dir/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$dir/requirements.txt"
  echo "$want" >"$stamp"
fi
phase_done "venv"
# The generator runs ruff from PATH to format what it writes.
export PATH="$PWD/$venv/bin:$PATH"

# 2. The client, regenerated when the document, the configuration or the tools change.
gen_stamp=$dir/generated/.inputs.sha256
gen_want=$(cat openapi/openapi.json "$dir/generator.yaml" "$dir/requirements.txt" "$dir/generate.py" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$gen_stamp" 2>/dev/null)" != "$gen_want" ]; then
  rm -rf "$dir/generated"
  "$venv/bin/python" "$dir/generate.py" openapi/openapi.json "$dir/generator.yaml" "$dir/generated"
  echo "$gen_want" >"$gen_stamp"
else
  echo "generator warnings: 0, errors: 0 (client unchanged since the last generation)"
fi
phase_done "generate"

# 3. mypy --strict over the generated package, the scenario and the generator wrapper; ruff over
# the latter two (clients/python/ruff.toml).
(cd "$dir" && .venv/bin/mypy --strict --cache-dir .mypy_cache \
  generated/stageflow_client scenario.py generate.py)
(cd "$dir" && .venv/bin/ruff check --quiet . && .venv/bin/ruff format --check --quiet .)
phase_done "mypy --strict, ruff"

# 4. The scenario against a fresh server.
# shellcheck source=scripts/lib/test-server.sh
source scripts/lib/test-server.sh
start_test_server "$binary"
phase_done "server start"
PYTHONPATH="$dir/generated" "$venv/bin/python" "$dir/scenario.py" "$SF_URL" "$SF_OPERATOR_PASSWORD"
phase_done "scenario"

echo "timings: ${timings[*]/%/;} total: $(elapsed "$total_start")"
echo "python client OK"
