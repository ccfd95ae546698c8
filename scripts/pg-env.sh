# Sourced by test.sh and bench.sh: a private PostgreSQL for this run
# (scripts/postgres.sh), stopped on exit, exported as ANNEXA_TEST_POSTGRES.
# Set ANNEXA_TEST_POSTGRES yourself to use another server, or to "skip".
if [ -z "${ANNEXA_TEST_POSTGRES:-}" ]; then
  pgstate=$(mktemp)
  ANNEXA_TEST_POSTGRES=$(./scripts/postgres.sh start 3>"$pgstate")
  pgdir=$(cat "$pgstate"); rm -f "$pgstate"
  trap './scripts/postgres.sh stop "$pgdir"' EXIT
  export ANNEXA_TEST_POSTGRES
fi
if [ "$ANNEXA_TEST_POSTGRES" = skip ]; then unset ANNEXA_TEST_POSTGRES; fi
