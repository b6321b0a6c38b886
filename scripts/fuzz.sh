#!/usr/bin/env bash
# Fuzzes the template pipeline (JSON → definition parser → linter → engine) with cargo-fuzz and
# libFuzzer for DURATION seconds (default 300), seeded with the catalog's definitions.
# cargo-fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept
# them (this machine kind cannot fetch another toolchain). Crashes land in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
corpus=fuzz/corpus/template_definition
mkdir -p "$corpus"
for file in catalog/*.json; do
  [ "$(basename "$file")" != libraries.json ] || continue
  python3 -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))['template']))" "$file" \
    >"$corpus/$(basename "$file")"
done
RUSTC_BOOTSTRAP=1 cargo fuzz run template_definition "$corpus" -- \
  -max_total_time="${DURATION:-300}" -max_len=65536 -print_final_stats=1
