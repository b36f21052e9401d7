#!/usr/bin/env bash
# The whole suite, once on SQLite and once on a throwaway PostgreSQL cluster; Redis and
# the S3 test server are started by the tests' fixtures on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/labelyard-test.XXXXXX)
chmod 755 "$work"
cleanup() { scripts/postgres.sh stop "$work/pg" || true; rm -rf "$work"; }
trap cleanup EXIT

# redis-server for the queue tests (conftest starts it on 127.0.0.1).
if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server (apt-get)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq redis-server >&2
fi

echo "== test suite on SQLite"
.venv/bin/python -m pytest "$@"

echo "== test suite on PostgreSQL"
url=$(scripts/postgres.sh start "$work/pg")
LABELYARD_TEST_DATABASE_URL="$url" .venv/bin/python -m pytest "$@"
