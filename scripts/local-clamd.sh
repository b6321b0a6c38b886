#!/usr/bin/env bash
# Makes a local ClamAV daemon available for the tests and prints its address.
#
#   export STAGEFLOW_TEST_CLAMD=$(bash scripts/local-clamd.sh [DIR])
#
# Installs clamav-daemon (and clamdscan) with apt-get when clamd is missing, writes a private
# configuration and a one-line test signature database into DIR (default
# /tmp/stageflow-clamd), starts clamd when it does not answer PING yet, waits for it, checks
# that the EICAR test file is FOUND, and prints `unix:DIR/clamd.sock` — nothing else goes to
# stdout. Idempotent: when clamd already answers it only prints the address.
#
# The official signatures cannot be downloaded here, so freshclam is not run: the database is
# the EICAR test file's MD5 as an `.hdb` line (docs/mail.md, "clamd setup").
set -euo pipefail

say() { echo "local-clamd: $*" >&2; }

dir=$(realpath -m "${1:-/tmp/stageflow-clamd}")
conf="$dir/clamd.conf"
socket="$dir/clamd.sock"
eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'

ping() { clamdscan --config-file="$conf" --ping 1 >/dev/null 2>&1; }

if [ -S "$socket" ] && [ -f "$conf" ] && command -v clamdscan >/dev/null 2>&1 && ping; then
  echo "unix:$socket"
  exit 0
fi

if ! command -v clamd >/dev/null 2>&1 && [ ! -x /usr/sbin/clamd ]; then
  say "clamd is not installed; installing clamav-daemon with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # --no-install-recommends keeps the list short; clamdscan is named for the PING/EICAR check.
  apt-get install -y -qq --no-install-recommends clamav-daemon clamdscan >&2
fi
clamd=$(command -v clamd || echo /usr/sbin/clamd)

mkdir -p "$dir/db"
# The EICAR test file: MD5, size, name (clamd reports it as Eicar-Test-Signature.UNOFFICIAL).
echo "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature" >"$dir/db/test.hdb"

# Keep the TCP port of an earlier run; otherwise 3310, or the next port nothing listens on.
port=$(awk '$1 == "TCPSocket" {print $2}' "$conf" 2>/dev/null || true)
if [ -z "$port" ]; then
  for candidate in $(seq 3310 3399); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
      port=$candidate
      break
    fi
  done
fi

# No `User` line: clamd keeps the user that starts it (root here), and drops no privileges.
cat >"$conf" <<EOF
# Written by scripts/local-clamd.sh — a private clamd for Stageflow's tests.
Foreground no
PidFile $dir/clamd.pid
LocalSocket $socket
LocalSocketMode 660
FixStaleSocket yes
TCPSocket $port
TCPAddr 127.0.0.1
DatabaseDirectory $dir/db
StreamMaxLength 25M
LogSyslog no
LogFile $dir/clamd.log
LogTime yes
SelfCheck 0
EOF

running=false
if [ -f "$dir/clamd.pid" ] && kill -0 "$(cat "$dir/clamd.pid")" 2>/dev/null; then
  running=true
  say "clamd (pid $(cat "$dir/clamd.pid")) is running but not answering yet; waiting"
fi
if [ "$running" = false ]; then
  say "starting clamd with $conf"
  "$clamd" --config-file="$conf" >&2
fi

for _ in $(seq 1 300); do
  ping && break
  sleep 0.2
done
if ! ping; then
  say "clamd does not answer PING on $socket; see $dir/clamd.log"
  exit 1
fi

verdict=$(printf '%s' "$eicar" | clamdscan --config-file="$conf" --no-summary --stream - 2>&1 || true)
case "$verdict" in
*"Eicar-Test-Signature"*FOUND*) ;;
*)
  say "clamd answers but does not find the EICAR test file: $verdict"
  exit 1
  ;;
esac

echo "unix:$socket"
