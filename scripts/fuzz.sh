#!/usr/bin/env bash
# Fuzzes one target with cargo-fuzz and libFuzzer for DURATION seconds (default 300):
#   scripts/fuzz.sh [template_definition|mail_intake]   (default template_definition)
# template_definition: JSON → definition parser → linter → engine, seeded with the catalog's
# definitions. mail_intake: raw message → mail::parse → classify → subject key, seeded with
# tests/fixtures/mail/*.eml.
# On a fresh machine it installs what it needs: the nightly toolchain (rustup, minimal profile)
# for cargo-fuzz's nightly compiler flags, and cargo-fuzz (`cargo install --locked`, ~1 min,
# kept in ~/.cargo/bin). Where no nightly can be fetched, the stable toolchain runs it with
# RUSTC_BOOTSTRAP=1. The fuzz build has its own target directory (see below).
# Crashes land in fuzz/artifacts/<target>/ and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:-template_definition}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
toolchain=(+nightly)
if ! rustup run nightly rustc --version >/dev/null 2>&1 &&
  ! rustup toolchain install nightly --profile minimal >/dev/null 2>&1; then
  echo "no nightly toolchain: fuzzing with stable and RUSTC_BOOTSTRAP=1" >&2
  toolchain=()
  export RUSTC_BOOTSTRAP=1
fi
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
# A dev-profile build without a sanitizer (the code under test is safe Rust; `unsafe_code` is
# forbidden) in a target directory outside the clone, so a fresh clone reuses it: ~5.5 min the
# first time on 2 cores, the crate alone after. SANITIZER=address for the full build.
target_dir=${STAGEFLOW_FUZZ_TARGET_DIR:-$HOME/.cache/stageflow-fuzz-target}
cargo "${toolchain[@]}" fuzz run --dev --sanitizer "${SANITIZER:-none}" --target-dir "$target_dir" \
  "$target" "$corpus" -- \
  -max_total_time="${DURATION:-300}" -max_len="$max_len" -print_final_stats=1
