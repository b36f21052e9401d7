#!/usr/bin/env bash
# The whole suite, on SQLite and on a throwaway PostgreSQL cluster at once (the two
# runs share nothing: each has its own database, Redis and S3 test server, started by
# the tests' fixtures on 127.0.0.1). Each run's lines are prefixed with its database.
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

url=$(scripts/postgres.sh start "$work/pg")

# No cache plugin: two runs in one checkout would write the same .pytest_cache.
run() {
  local name=$1
  shift
  set +e
  env "$@" .venv/bin/python -m pytest -p no:cacheprovider "${pytest_args[@]}" 2>&1 \
    | sed -u "s/^/[$name] /"
  local status=${PIPESTATUS[0]}
  set -e
  echo "$status" >"$work/$name.status"
}

pytest_args=("$@")
echo "== test suite on SQLite and on PostgreSQL"
run sqlite LABELYARD_TEST_DATABASE_URL= &
run postgresql LABELYARD_TEST_DATABASE_URL="$url" &
wait

failed=0
for name in sqlite postgresql; do
  status=$(cat "$work/$name.status" 2>/dev/null || echo 1)
  echo "== $name: $([ "$status" = 0 ] && echo passed || echo "FAILED (exit $status)")"
  [ "$status" = 0 ] || failed=1
done
exit "$failed"
