#!/usr/bin/env bash
# Run a command with a throwaway Redis: start redis-server on a free loopback port with no
# persistence, export BROADSHEET_TEST_REDIS_URL, run "$@", then stop it. Installs Debian's
# redis-server when it is missing. With CI=true a missing Redis is an error, never a skip.
set -euo pipefail

# Debian starts a package's service on install; only the binary is wanted here, so a
# policy-rc.d (unless one is already there) refuses every start while apt-get runs.
apt_install_quietly() {
  local made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local status=0
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || status=$?
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  return "$status"
}

if ! command -v redis-server >/dev/null 2>&1; then
  echo "with-redis: redis-server not found; installing Debian's redis-server" >&2
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt_install_quietly redis-server || true
  fi
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "with-redis: Redis is not available and could not be installed" >&2
  exit 1
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATA=$(mktemp -d /tmp/broadsheet-redis.XXXXXX)

cleanup() {
  if [ -f "$DATA/pid" ]; then
    local pid
    pid=$(cat "$DATA/pid")
    kill "$pid" 2>/dev/null || true
    # Wait for it to go, so it writes nothing more into the folder being removed.
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$DATA" || true
}
trap cleanup EXIT INT TERM

redis-server --bind 127.0.0.1 --port "$PORT" --save '' --appendonly no --dir "$DATA" \
  --pidfile "$DATA/pid" --daemonize yes --logfile "$DATA/log" >/dev/null
for _ in $(seq 1 100); do
  if redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; then break; fi
  sleep 0.1
done
if ! redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; then
  echo "with-redis: redis-server did not answer on 127.0.0.1:$PORT" >&2
  cat "$DATA/log" >&2 || true
  exit 1
fi

export BROADSHEET_TEST_REDIS_URL="redis://127.0.0.1:$PORT/0"
echo "with-redis: Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2) on 127.0.0.1:$PORT" >&2
"$@"
