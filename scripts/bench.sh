#!/usr/bin/env bash
# Benchmarks. Each reports a ratio (x_raw_sign, x_raw_verify, …) to a
# baseline it measures in the same run: these machines are shared and noisy,
# so only ratios are comparable between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench . -benchmem -count "${COUNT:-1}" ./... | tee bench.out
echo "results in bench.out"
