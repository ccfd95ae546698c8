#!/usr/bin/env bash
# The README's test command (make test) and what CI runs. It installs and
# starts what the tests need, idempotently, then runs every test once.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/lint.sh
# Every test in one go; -count=1 so a cached pass never stands in for a run.
go test -count=1 -timeout 20m ./...
