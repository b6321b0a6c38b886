#!/usr/bin/env bash
# CI's short fuzzing pass (issue #15 point 6): each target for FUZZ_SECONDS (default 30) through
# scripts/fuzz.sh, which installs cargo-fuzz when missing and seeds the corpus. A crash fails
# the step (libFuzzer exits non-zero) and leaves its input in fuzz/artifacts/<target>/.
# Longer runs by hand: DURATION=3600 scripts/fuzz.sh mail_intake
set -euo pipefail
cd "$(dirname "$0")/.."

for target in mail_intake template_definition; do
  echo "--- fuzz $target for ${FUZZ_SECONDS:-30}s"
  DURATION="${FUZZ_SECONDS:-30}" bash scripts/fuzz.sh "$target"
done
