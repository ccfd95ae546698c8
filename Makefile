# Annexa. The README's two commands: `make run` and `make test`.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X github.com/annexa-dev/annexa/internal/buildinfo.Version=$(VERSION)
GOFLAGS_BUILD := -trimpath -ldflags "$(LDFLAGS)"
CROSS   := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64

.PHONY: build test bench run lint cross fuzz clean

## build: the three binaries into bin/
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/ ./cmd/annexa ./cmd/annexa-agent ./cmd/annexa-server

## test: lint, then every test (starts what the tests need: see scripts/test.sh)
test:
	./scripts/test.sh

## bench: benchmarks, each reporting its ratio to a baseline measured in the same run
bench:
	./scripts/bench.sh

## run: a local server on embedded SQLite plus an enrolled agent on this machine
run: build
	./scripts/run.sh

## lint: gofmt, go vet, go mod tidy check
lint:
	./scripts/lint.sh

## cross: the agent for every platform it ships on, without cgo
cross:
	@mkdir -p $(BIN)/cross
	@set -e; for p in $(CROSS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		echo "annexa-agent $$os/$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/cross/annexa-agent-$$os-$$arch$$ext ./cmd/annexa-agent; \
	done

## fuzz: each fuzz target for FUZZTIME (default 30s)
fuzz:
	./scripts/fuzz.sh

clean:
	rm -rf $(BIN)
