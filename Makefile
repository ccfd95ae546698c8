# Annexa. The README's two commands: `make run` and `make test`.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X github.com/annexa-dev/annexa/internal/buildinfo.Version=$(VERSION)
GOFLAGS_BUILD := -trimpath -ldflags "$(LDFLAGS)"
CROSS   := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64

# Package versions must start with a digit: 0.1.0~g<commit> until releases are tagged.
PKG_VERSION ?= $(shell v=$$(git describe --tags --abbrev=0 2>/dev/null | sed 's/^v//'); c=$$(git rev-parse --short HEAD 2>/dev/null || echo dev); echo "$${v:-0.1.0}~g$$c")
PKG_ARCHES  := amd64 arm64
# MSI versions are major.minor.build and must grow for upgrades in place:
# the last tag's major.minor (0.1 until one exists) and the commit count.
MSI_VERSION ?= $(shell v=$$(git describe --tags --abbrev=0 2>/dev/null | sed 's/^v//' | cut -d. -f1,2); n=$$(git rev-list --count HEAD 2>/dev/null || echo 0); echo "$${v:-0.1}.$$n")

.PHONY: build test bench run lint cross fuzz clean package

## build: the three binaries into bin/
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/ ./cmd/annexa ./cmd/annexa-agent ./cmd/annexa-server
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/annexa-plugin-host ./plugins/host
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/annexa-plugin-exec ./plugins/exec
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/annexa-plugin-aws-iam ./plugins/aws-iam

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

## cross: the agent (and its plugin host) for every platform it ships on, without cgo
cross:
	@mkdir -p $(BIN)/cross
	@set -e; for p in $(CROSS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		echo "annexa-agent $$os/$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/cross/annexa-agent-$$os-$$arch$$ext ./cmd/annexa-agent; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/cross/annexa-plugin-host-$$os-$$arch$$ext ./plugins/host; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/cross/annexa-plugin-aws-iam-$$os-$$arch$$ext ./plugins/aws-iam; \
	done

## package: .deb and .rpm for annexa-agent, annexa-server and annexa-plugin-aws-iam (amd64, arm64), and the agent's Windows MSIs (x64, arm64), into dist/
package:
	@mkdir -p dist
	@set -e; for arch in $(PKG_ARCHES); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/linux-$$arch/ ./cmd/annexa ./cmd/annexa-agent ./cmd/annexa-server; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/linux-$$arch/annexa-plugin-host ./plugins/host; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/linux-$$arch/annexa-plugin-exec ./plugins/exec; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/linux-$$arch/annexa-plugin-aws-iam ./plugins/aws-iam; \
		for pkg in agent server plugin-aws-iam; do \
			$(GO) run ./packaging/nfpmbuild -config packaging/nfpm/$$pkg.yaml -arch $$arch -version "$(PKG_VERSION)" -bin $(BIN)/linux-$$arch -out dist; \
		done; \
	done
	./scripts/msitools.sh
	@set -e; for arch in $(PKG_ARCHES); do \
		msiarch=x64; [ $$arch = arm64 ] && msiarch=arm64; \
		CGO_ENABLED=0 GOOS=windows GOARCH=$$arch $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/windows-$$arch/annexa-agent.exe ./cmd/annexa-agent; \
		CGO_ENABLED=0 GOOS=windows GOARCH=$$arch $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/windows-$$arch/annexa-plugin-host.exe ./plugins/host; \
		$(GO) run ./packaging/msi -arch $$msiarch -version "$(MSI_VERSION)" -bin $(BIN)/windows-$$arch -out dist; \
	done

## fuzz: each fuzz target for FUZZTIME (default 30s)
fuzz:
	./scripts/fuzz.sh

clean:
	rm -rf $(BIN) dist
