#!/usr/bin/env bash
# CI's short fuzzing pass (issue #15 point 6): each target for FUZZ_SECONDS (default 30) through
# scripts/fuzz.sh, which installs cargo-fuzz when missing and seeds the corpus. A crash fails
# the step (libFuzzer exits non-zero) and leaves its input in fuzz/artifacts/<target>/.
# Longer runs by hand: DURATION=3600 scripts/fuzz.sh mail_intake
set -euo pipefail
cd "$(dirname "$0")/.."

# The fuzz build's target directory lives outside the clone (scripts/fuzz.sh) so dependencies
# are built once per machine; but every change of the crate adds its own artifacts there, and
# incremental state on top, ~1.5 GB a build. Left alone it filled the disk and failed CI
# (session 32: 26 GB). So CI builds without incremental state and first drops the artifacts of
# earlier builds of the crate and of the fuzz targets; the dependencies stay.
export CARGO_INCREMENTAL=0
target_dir=${STAGEFLOW_FUZZ_TARGET_DIR:-$HOME/.cache/stageflow-fuzz-target}
for profile_dir in "$target_dir"/*/debug "$target_dir"/debug; do
  [ -d "$profile_dir" ] || continue
  rm -rf "$profile_dir/incremental"
  find "$profile_dir/deps" -maxdepth 1 \( -name '*stageflow-*' -o -name 'mail_intake-*' \
    -o -name 'template_definition-*' \) -exec rm -rf {} +
done
du -sh "$target_dir" 2>/dev/null || true

for target in mail_intake template_definition; do
  echo "--- fuzz $target for ${FUZZ_SECONDS:-30}s"
  DURATION="${FUZZ_SECONDS:-30}" bash scripts/fuzz.sh "$target"
done
