#!/usr/bin/env bash
# Renders the diagram of every catalog template with the real tools: Graphviz `dot` and
# mermaid-cli (`mmdc`, which drives Debian's chromium through puppeteer). Installs what is
# missing: graphviz and chromium with apt-get, mermaid-cli with npm into a cache folder
# (puppeteer's own browser download is skipped; it cannot be fetched here). Fails on the first
# diagram that does not render. Usage: render-diagrams.sh [stageflow binary]. Output: target/diagrams/<key>.{svg,mermaid.svg}.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v dot >/dev/null || need_apt+=(graphviz)
command -v chromium >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

tools=${STAGEFLOW_TOOLS_DIR:-$HOME/.cache/stageflow-tools}
mmdc="$tools/node_modules/.bin/mmdc"
if [ ! -x "$mmdc" ]; then
  mkdir -p "$tools"
  PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix "$tools" --no-audit --no-fund --silent @mermaid-js/mermaid-cli@11.9.0 >&2
fi
puppeteer_config=$(mktemp)
trap 'rm -f "$puppeteer_config"' EXIT
cat >"$puppeteer_config" <<JSON
{"executablePath": "$(command -v chromium)",
 "args": ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--no-first-run"]}
JSON

# The binary to ask for the diagrams: the first argument (CI passes the one it already built;
# a plain `cargo build` here would rebuild dependencies with other features than `cargo test`).
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --quiet --bin stageflow
  bin=target/debug/stageflow
fi
out=target/diagrams
mkdir -p "$out"
for file in catalog/*.json; do
  key=$(basename "$file" .json)
  # libraries.json holds the catalog's library definitions, not a template.
  [ "$key" != libraries ] || continue
  "$bin" diagram "$key" --format dot >"$out/$key.dot"
  dot -Tsvg "$out/$key.dot" -o "$out/$key.svg"
  "$bin" diagram "$key" --format mermaid >"$out/$key.mmd"
  "$mmdc" -q -p "$puppeteer_config" -i "$out/$key.mmd" -o "$out/$key.mermaid.svg" >&2
  grep -q "<svg" "$out/$key.svg" && grep -q "<svg" "$out/$key.mermaid.svg"
  echo "rendered $key (dot, mermaid)"
done
