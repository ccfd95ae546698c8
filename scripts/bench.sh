#!/usr/bin/env bash
# Benchmarks. Each reports a ratio (x_raw_sign, x_raw_verify,
# x_verify_ceiling, x_state_scan, …) to a baseline it measures in the same
# run: these machines are shared and noisy, so only ratios compare between
# runs. Starts a private PostgreSQL like the tests do.
set -euo pipefail
cd "$(dirname "$0")/.."
. ./scripts/pg-env.sh
go test -run '^$' -bench . -benchmem -count "${COUNT:-1}" -timeout 60m ./... 2>&1 | grep -v '^time=' | tee bench.out
echo "results in bench.out"
