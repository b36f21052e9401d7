#!/usr/bin/env bash
# The whole suite, once on SQLite and once on a throwaway PostgreSQL cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/labelyard-test.XXXXXX)
chmod 755 "$work"
cleanup() { scripts/postgres.sh stop "$work/pg" || true; rm -rf "$work"; }
trap cleanup EXIT

echo "== test suite on SQLite"
.venv/bin/python -m pytest "$@"

echo "== test suite on PostgreSQL"
url=$(scripts/postgres.sh start "$work/pg")
LABELYARD_TEST_DATABASE_URL="$url" .venv/bin/python -m pytest "$@"
