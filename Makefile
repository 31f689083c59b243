# godwit: `make demo` runs the migration demo, `make test` runs every test. Both install what
# they need first (scripts/deps.sh, idempotent; needs root).
GO ?= go
BIN := bin/godwit

.PHONY: all deps build test test-short test-engines bench calibrate measure-postcopy demo vet fmt clean

all: build

deps:
	bash scripts/deps.sh

build:
	$(GO) build -o $(BIN) ./cmd/godwit

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# Every test, the real-Docker/CRIU ones included.
test: deps vet
	$(GO) test -count=1 -timeout 25m ./...

# The real-engine tests against each supported Docker engine (20.10, 26.1, 28.5), one after
# the other, with a pass/fail matrix at the end (scripts/test-engines.sh; logs in out/engines).
test-engines: deps vet
	bash scripts/test-engines.sh

# Tests that need nothing installed (no root, Docker or CRIU tests run; they skip).
test-short:
	$(GO) test -short ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./policy/ ./gossip/... ./sim/...

# The CRIU-vs-Docker experiment (about 20 minutes): CSV and fitted lines in out/calibrate.
calibrate: deps build
	$(BIN) cost calibrate --out out/calibrate

# Downtime of stop-and-copy against post-copy, same engines and sizes in one run (minutes):
# medians, post-copy/stop-and-copy ratios, fixed cost and slope per method.
measure-postcopy: deps
	$(GO) test -count=1 -timeout 60m -run '^TestMeasureDowntime$$' -v ./migrate/ -downtime.measure $(MEASURE_FLAGS)

demo: deps build
	$(BIN) demo

clean:
	rm -rf bin out
