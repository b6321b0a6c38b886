#!/usr/bin/env bash
# Makes a private Dovecot IMAP server available for the tests and prints its address.
#
#   export STAGEFLOW_TEST_DOVECOT=$(bash scripts/local-dovecot.sh [DIR])
#
# Installs dovecot-imapd with apt-get when dovecot is missing, writes a private configuration
# into DIR (default /tmp/stageflow-dovecot) — not the system service: its own base and state
# directories, a log file, IMAP on 127.0.0.1 at a free port from 10143, no TLS (plaintext
# LOGIN is allowed: loopback only), passwd-file authentication with one test user and
# Maildir storage under DIR/home — starts it when it does not answer yet, and prints
# `127.0.0.1:<port>` — nothing else goes to stdout. The test user is `stageflow` with the
# password `imap-test-password` (tests/api/dovecot.rs). Idempotent: when the server already
# answers it only prints the address. `bash scripts/local-dovecot.sh DIR stop` stops it.
#
# TLS is not set up: the tests use `security: none`, which Stageflow allows only for a loopback
# host (docs/mail.md, "IMAP setup").
set -euo pipefail

say() { echo "local-dovecot: $*" >&2; }

dir=$(realpath -m "${1:-/tmp/stageflow-dovecot}")
conf="$dir/dovecot.conf"
user=stageflow
password=imap-test-password

answers() {
  local port=$1
  [ -n "$port" ] || return 1
  exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null || return 1
  local greeting=""
  read -r -t 5 greeting <&3 || true
  exec 3<&-
  [[ "$greeting" == "* OK"* ]]
}

port=$(awk '$1 == "#port" {print $2}' "$conf" 2>/dev/null || true)

if [ "${2:-}" = "stop" ]; then
  if [ -f "$conf" ]; then doveadm -c "$conf" stop 2>/dev/null || true; fi
  exit 0
fi

if [ -f "$conf" ] && answers "$port"; then
  echo "127.0.0.1:$port"
  exit 0
fi

if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then
  say "dovecot is not installed; installing dovecot-imapd with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends dovecot-imapd >&2
fi
dovecot=$(command -v dovecot || echo /usr/sbin/dovecot)

if [ -z "$port" ]; then
  for candidate in $(seq 10143 10243); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
      port=$candidate
      break
    fi
  done
fi

# Mail is stored as the `dovecot` user when it exists (Dovecot refuses root for mail).
mail_user=$(id -un dovecot 2>/dev/null || id -un)
uid=$(id -u "$mail_user")
gid=$(id -g "$mail_user")
login_user=$(id -un dovenull 2>/dev/null || echo "$mail_user")

mkdir -p "$dir/run" "$dir/state" "$dir/home/$user"
chown -R "$uid:$gid" "$dir/home"
echo "$user:{PLAIN}$password:$uid:$gid::$dir/home/$user" >"$dir/users"

cat >"$conf" <<EOF
# Written by scripts/local-dovecot.sh — a private Dovecot for Stageflow's tests.
#port $port
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = $mail_user
default_internal_group = $(id -gn "$mail_user")
default_login_user = $login_user
first_valid_uid = $uid
mail_location = maildir:~/Maildir
# New mail shows in IDLE at once (inotify), with a 1 s check as the fallback.
mailbox_idle_check_interval = 1 secs
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $dir/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
EOF

say "starting dovecot on 127.0.0.1:$port ($conf)"
"$dovecot" -c "$conf" </dev/null >>"$dir/start.log" 2>&1
for _ in $(seq 1 100); do
  if answers "$port"; then
    echo "127.0.0.1:$port"
    exit 0
  fi
  sleep 0.1
done
say "dovecot did not answer on 127.0.0.1:$port; see $dir/dovecot.log"
exit 1
