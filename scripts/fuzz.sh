#!/usr/bin/env bash
# Fuzzes one target with cargo-fuzz and libFuzzer for DURATION seconds (default 300):
#   scripts/fuzz.sh [template_definition|mail_intake]   (default template_definition)
# template_definition: JSON → definition parser → linter → engine, seeded with the catalog's
# definitions. mail_intake: raw message → mail::parse → classify → subject key, seeded with
# tests/fixtures/mail/*.eml.
# cargo-fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept
# them (this machine kind cannot fetch another toolchain). Crashes land in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:-template_definition}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
corpus=fuzz/corpus/$target
mkdir -p "$corpus"
case "$target" in
  template_definition)
    for file in catalog/*.json; do
      [ "$(basename "$file")" != libraries.json ] || continue
      python3 -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))['template']))" "$file" \
        >"$corpus/$(basename "$file")"
    done
    max_len=65536
    ;;
  mail_intake)
    cp tests/fixtures/mail/*.eml "$corpus/"
    max_len=131072
    ;;
  *)
    echo "unknown fuzz target: $target (template_definition or mail_intake)" >&2
    exit 2
    ;;
esac
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$corpus" -- \
  -max_total_time="${DURATION:-300}" -max_len="$max_len" -print_final_stats=1
