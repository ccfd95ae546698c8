#!/usr/bin/env bash
# What CI insists on before any test runs: no build output tracked, gofmt,
# go vet, golangci-lint (pinned; the layering rules are in .golangci.yml)
# and a tidy go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."

# golangci-lint from the Go module proxy at a pinned version, built once
# into the Go build cache: no download script, no binary in the tree.
GOLANGCI_LINT_VERSION=v2.15.0

./scripts/check-tracked.sh
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2; echo "$unformatted" >&2; exit 1
fi
go vet ./...
go run "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@${GOLANGCI_LINT_VERSION}" run ./...
if ! go mod tidy -diff >/dev/null; then
  echo "go.mod/go.sum are not tidy: run 'go mod tidy'" >&2; go mod tidy -diff >&2 || true; exit 1
fi
echo "lint: ok"
