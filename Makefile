# opsagent Makefile. `make demo` and `make test` are the two commands of the
# README's quick start.

GO      ?= go
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  = -s -w -X main.version=$(VERSION)
BIN      = bin/agent
# Short fuzz runs that are part of `make test`.
FUZZTIME ?= 10s

.PHONY: all build test test-unit fuzz-short fuzz bench bench-go demo install vet clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/agent

vet:
	$(GO) vet ./...

test: vet test-unit fuzz-short

test-unit:
	$(GO) test -count=1 -timeout 8m ./...

# Every fuzz target runs for $(FUZZTIME); crashers land in testdata/fuzz/.
fuzz-short:
	@set -e; for spec in $$($(GO) run ./internal/fuzzlist); do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; \
		echo "fuzz $$pkg $$fn"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=5m

# agent vs aide and the md5sum/b3sum/find floors on a copy of /usr, plus a
# synthetic small-file tree for memory (knobs: BENCH_* in
# internal/benchrun/main.go and README.md), then the Go micro-benchmarks.
bench: build
	$(GO) run ./internal/benchrun
	$(MAKE) bench-go

# Go micro-benchmarks of the hot paths: hashing, scan, entry encode/decode,
# Compare, rule matching.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Build, then baseline and check this machine with the embedded default
# config, keeping all state in ./var (works without root).
demo: build
	@mkdir -p var
	./$(BIN) --state-dir ./var init; rc=$$?; echo "agent init exited $$rc"; \
	  if [ $$rc -ne 0 ] && [ $$rc -ne 3 ]; then exit $$rc; fi
	./$(BIN) --state-dir ./var check; rc=$$?; echo "agent check exited $$rc (0 clean, 1/2/4 bits added/removed/changed, 3 unreadable entries)"; \
	  if [ $$rc -ge 8 ]; then exit $$rc; fi

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/agent
	install -D -m 0644 examples/agent.conf $(DESTDIR)/etc/agent/agent.conf.example

clean:
	rm -rf bin var
