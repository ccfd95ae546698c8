#!/usr/bin/env bash
# gofmt, go vet, and a tidy go.mod: what CI insists on before any test runs.
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2; echo "$unformatted" >&2; exit 1
fi
go vet ./...
cp go.mod /tmp/annexa-go.mod.$$; cp go.sum /tmp/annexa-go.sum.$$
go mod tidy
if ! cmp -s go.mod /tmp/annexa-go.mod.$$ || ! cmp -s go.sum /tmp/annexa-go.sum.$$; then
  cp /tmp/annexa-go.mod.$$ go.mod; cp /tmp/annexa-go.sum.$$ go.sum
  rm -f /tmp/annexa-go.mod.$$ /tmp/annexa-go.sum.$$
  echo "go.mod/go.sum are not tidy: run 'go mod tidy'" >&2; exit 1
fi
rm -f /tmp/annexa-go.mod.$$ /tmp/annexa-go.sum.$$
echo "lint: ok"
