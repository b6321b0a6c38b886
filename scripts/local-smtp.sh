#!/usr/bin/env bash
# Starts a local SMTP receiver (aiosmtpd, scripts/smtp_sink.py) in the background and prints
# its PID; stop it with `kill PID`.
#
#   pid=$(scripts/local-smtp.sh DIR PORT [--tls-cert PEM --tls-key PEM] [--auth USER:PASSWORD])
#
# Each accepted message lands in DIR/<n>.eml, its envelope in DIR/<n>.json. Recipients
# tempfail@… are answered 451 and reject@… 550. The virtual environment with aiosmtpd (from
# PyPI) is made once under the cargo target directory and reused; the receiver's log is
# DIR/sink.log. Exits non-zero when the receiver does not accept connections within 15 s.
set -euo pipefail

say() { echo "local-smtp: $*" >&2; }

if [ $# -lt 2 ]; then
  say "usage: $0 DIR PORT [--tls-cert PEM --tls-key PEM] [--auth USER:PASSWORD]"
  exit 2
fi
dir=$1
port=$2
shift 2

here=$(cd "$(dirname "$0")" && pwd)
target=${CARGO_TARGET_DIR:-$here/../target}
venv=$target/smtp-sink-venv
mkdir -p "$target" "$dir"

# Tests start receivers in parallel: one of them builds the environment, the others wait.
(
  flock 9
  if [ ! -f "$venv/.ready" ]; then
    say "creating $venv with aiosmtpd"
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'aiosmtpd>=1.4,<2' >&2
    touch "$venv/.ready"
  fi
) 9>"$target/smtp-sink-venv.lock"

nohup "$venv/bin/python" "$here/smtp_sink.py" "$dir" "$port" "$@" >"$dir/sink.log" 2>&1 &
pid=$!

for _ in $(seq 1 150); do
  if ! kill -0 "$pid" 2>/dev/null; then
    say "the receiver exited; its log:"
    cat "$dir/sink.log" >&2
    exit 1
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "$pid"
    exit 0
  fi
  sleep 0.1
done
say "the receiver does not accept connections on port $port"
kill "$pid" 2>/dev/null || true
exit 1
