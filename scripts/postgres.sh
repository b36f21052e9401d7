#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the test suite.
#   scripts/postgres.sh start DIR   -> prints the database URL
#   scripts/postgres.sh stop DIR
# Installs Debian's postgresql with apt-get when no server binaries are found.
set -euo pipefail

find_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

ensure_installed() {
  if ! find_bindir >/dev/null; then
    echo "installing PostgreSQL (apt-get)..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# initdb and postgres refuse to run as root: run them as an unprivileged user.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$PG_OWNER" -- "$@"
  else
    "$@"
  fi
}

cmd=${1:?usage: postgres.sh start|stop DIR}
dir=${2:?usage: postgres.sh start|stop DIR}

case "$cmd" in
start)
  ensure_installed
  bindir=$(find_bindir)
  PG_OWNER=${PG_OWNER:-postgres}
  if [ "$(id -u)" = 0 ] && ! id "$PG_OWNER" >/dev/null 2>&1; then
    useradd --system --no-create-home "$PG_OWNER"
  fi
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown "$PG_OWNER" "$dir"
  port=$(free_port)
  as_owner "$bindir/initdb" -D "$dir/data" -U labelyard --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $dir -F -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >&2
  as_owner "$bindir/createdb" -h 127.0.0.1 -p "$port" -U labelyard labelyard_test >&2
  echo "$port" >"$dir/port"
  echo "postgresql://labelyard@127.0.0.1:$port/labelyard_test"
  ;;
stop)
  bindir=$(find_bindir)
  PG_OWNER=${PG_OWNER:-postgres}
  if [ -d "$dir/data" ]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >&2 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "unknown command: $cmd" >&2
  exit 2
  ;;
esac
