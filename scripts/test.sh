#!/usr/bin/env bash
# The README's test command (make test) and what CI runs. It installs and
# starts what the tests need, idempotently, then runs every test once.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/lint.sh

# A private PostgreSQL for the store tests, stopped on exit. Set
# ANNEXA_TEST_POSTGRES yourself to use another; ANNEXA_TEST_POSTGRES=skip
# runs the SQLite half only.
. ./scripts/pg-env.sh

# rpm, to check the .rpm packages' contents (Debian's package; optional).
if ! command -v rpm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -qq rpm >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq rpm >/dev/null 2>&1; }) \
    || echo "rpm could not be installed: .rpm contents will not be checked"
fi

# Every test in one go; -count=1 so a cached pass never stands in for a run.
go test -count=1 -timeout 30m ./...
