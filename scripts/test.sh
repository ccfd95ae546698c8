#!/usr/bin/env bash
# The README's test command (make test) and what CI runs: lint, then every
# test once, the core packages under the race detector. It installs and
# starts what the tests need, idempotently, and says so first.
set -euo pipefail
cd "$(dirname "$0")/.."

cat <<'TXT'
make test: lint, then every test. What it may do to this machine:
  - install Debian's postgresql packages if absent, and run a private PostgreSQL
    on a free loopback port for the store tests (stopped and removed at the end);
  - install Debian's rpm package if absent, to read the .rpm packages it builds;
  - install Debian's msitools and wixl if absent, to build the Windows MSI and
    read its tables;
  - install Debian's chromium package if absent, and drive it headless against
    the dashboard (screenshots of every page go to .test-output/dashboard/);
  - as root, install the annexa-agent .deb it builds, run it and purge it again
    (skipped where Annexa is installed already);
  - build golangci-lint (pinned in scripts/lint.sh) into the Go build cache.
TXT

start=$(date +%s)
./scripts/lint.sh

# A private PostgreSQL for the store tests, stopped on exit. Set
# ANNEXA_TEST_POSTGRES yourself to use another; ANNEXA_TEST_POSTGRES=skip
# runs the SQLite half only.
. ./scripts/pg-env.sh

# rpm, to check the .rpm packages' contents (Debian's package; optional).
if ! command -v rpm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's rpm package (to read .rpm packages)"
  (apt-get install -y -qq rpm >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq rpm >/dev/null 2>&1; }) \
    || echo "rpm could not be installed: .rpm contents will not be checked"
fi

# chromium, for the dashboard's browser test (Debian's package; required:
# a machine that cannot install it fails the test rather than skipping it).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium package (for the dashboard's browser test)"
  (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; }) \
    || echo "chromium could not be installed: the dashboard's browser test will fail"
fi
# msitools and wixl, to build the Windows MSI and read its tables.
./scripts/msitools.sh || echo "msitools/wixl could not be installed: the MSI tests will fail"
export ANNEXA_TEST_MSI=required
export ANNEXA_TEST_SIGNING=required
export ANNEXA_TEST_CHROMIUM=required
export ANNEXA_TEST_OUTPUT="$PWD/.test-output"
mkdir -p "$ANNEXA_TEST_OUTPUT"

# The core (evidence, agent, server, plugins) runs under the race detector;
# everything else plainly. -count=1 so a cached pass never stands in for a
# run. Both streams go through testsummary, which prints a line per
# package, what failed, what was skipped and why, and the totals.
core=$(go list ./evidence/... ./agent/... ./server/... ./plugins)
rest=$(go list ./... | grep -vxF "$core")
rcdir=$(mktemp -d)
# (set -e must not end the group at the first failing run: both run, and
# their exit codes are kept for the verdict.)
{
  go test -json -count=1 -race -timeout 20m $core && echo 0 >"$rcdir/core" || echo $? >"$rcdir/core"
  go test -json -count=1 -timeout 20m $rest && echo 0 >"$rcdir/rest" || echo $? >"$rcdir/rest"
} 2>&1 | go run ./scripts/testsummary || true
core_rc=$(cat "$rcdir/core" 2>/dev/null || echo missing); rest_rc=$(cat "$rcdir/rest" 2>/dev/null || echo missing); rm -rf "$rcdir"
echo "make test took $(( $(date +%s) - start ))s"
if [ "$core_rc" != 0 ] || [ "$rest_rc" != 0 ]; then
  echo "go test failed (exit $core_rc for the core, $rest_rc for the rest)" >&2
  exit 1
fi
