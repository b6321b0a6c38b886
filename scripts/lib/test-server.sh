# Sourced by the CI scripts that drive a real server from outside (the docs page, the generated
# clients, schemathesis): starts the binary on a fresh SQLite database in a temporary directory,
# on a free local port, and waits until it is ready.
#   start_test_server BINARY [ENV=VALUE...]
# sets SF_URL, SF_OPERATOR_PASSWORD, SF_WORK (the directory, holding server.log) and stops the
# server and removes the directory when the calling script exits. Extra arguments are extra
# environment settings for the server (e.g. DATABASE_URL=postgres://... to use PostgreSQL).

start_test_server() {
  local binary=$1
  shift
  SF_WORK=$(mktemp -d)
  SF_OPERATOR_PASSWORD="ci-platform-passphrase-1"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  SF_URL="http://127.0.0.1:$port"
  env DATABASE_URL="$SF_WORK/stageflow.db" STAGEFLOW_DATA_DIR="$SF_WORK" \
    STAGEFLOW_LISTEN="127.0.0.1:$port" STAGEFLOW_OPERATOR_PASSWORD="$SF_OPERATOR_PASSWORD" \
    RUST_LOG="${RUST_LOG:-warn}" "$@" "$binary" >"$SF_WORK/server.log" 2>&1 &
  SF_SERVER_PID=$!
  trap 'stop_test_server' EXIT
  local _
  for _ in $(seq 1 200); do
    if curl -fsS "$SF_URL/readyz" >/dev/null 2>&1; then
      export SF_URL SF_OPERATOR_PASSWORD SF_WORK
      return 0
    fi
    if ! kill -0 "$SF_SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "the server did not become ready; its log:" >&2
  cat "$SF_WORK/server.log" >&2
  return 1
}

stop_test_server() {
  kill "$SF_SERVER_PID" 2>/dev/null || true
  wait "$SF_SERVER_PID" 2>/dev/null || true
  if [ -n "${SF_KEEP_LOG:-}" ]; then cp "$SF_WORK/server.log" "$SF_KEEP_LOG" || true; fi
  rm -rf "$SF_WORK"
}
