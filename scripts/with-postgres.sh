#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster: initdb in a temp dir, start it on a
# free loopback port, export BROADSHEET_TEST_DATABASE_URL, run "$@", then stop and delete it.
# Installs Debian's postgresql when the server binaries are missing. With CI=true a missing
# PostgreSQL is an error, never a skip.
set -euo pipefail

find_bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir; return
  fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$newest" ] && [ -x "$newest/initdb" ] && echo "$newest"
}

BINDIR=$(find_bindir || true)
if [ -z "${BINDIR}" ]; then
  echo "with-postgres: PostgreSQL server binaries not found; installing Debian's postgresql" >&2
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    BINDIR=$(find_bindir || true)
  fi
fi
if [ -z "${BINDIR}" ]; then
  echo "with-postgres: PostgreSQL is not available and could not be installed" >&2
  exit 1
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATA=$(mktemp -d /tmp/broadsheet-pg.XXXXXX)
RUN_AS=()
if [ "$(id -u)" = "0" ]; then
  # initdb refuses to run as root: the cluster belongs to the postgres user.
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$DATA"
  RUN_AS=(runuser -u postgres --)
fi

cleanup() {
  "${RUN_AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" stop -m fast >/dev/null 2>&1 || true
  rm -rf "$DATA"
}
trap cleanup EXIT INT TERM

"${RUN_AS[@]}" "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 >/dev/null
"${RUN_AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -l "$DATA/log" -w -o "-c listen_addresses=127.0.0.1 \
  -c port=$PORT -c unix_socket_directories=$DATA -c fsync=off -c synchronous_commit=off \
  -c full_page_writes=off -c max_connections=200" start >/dev/null

export BROADSHEET_TEST_DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:$PORT/postgres"
echo "with-postgres: PostgreSQL $("$BINDIR/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT" >&2
"$@"
