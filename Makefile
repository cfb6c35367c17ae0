# nicteam — the two commands a new user needs are `make demo` and `make test`.
GO ?= go
BIN := bin
STATICCHECK_VERSION := v0.8.2

.PHONY: all build deps generate test unit lint demo bench soak clean

all: build

# DEPS names optional extras for scripts/deps.sh (test sets ovs).
deps:
	@scripts/deps.sh $(DEPS)

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# Rebuild the eBPF objects (needs clang; the output is committed so plain
# `go build` works without it).
generate: deps
	$(GO) generate ./internal/datapath

# Every test: unit tests and the privileged integration tests in network
# namespaces with the real daemon and eBPF programs (needs root), with Open
# vSwitch as a LACP partner; then a one-iteration smoke of make bench and
# the short run of make soak, apart so that their floods cannot overlap the
# timing-sensitive tests; then bounded fuzz runs of the LACPDU decoder, the
# API's request decoding and the state file loader.
test: DEPS = ovs
test: deps build lint
	$(GO) test -count=1 -timeout 9m -skip 'TestQuickSmoke|TestQuickSoak' ./...
	$(GO) test -count=1 -timeout 2m -run TestQuickSmoke ./internal/bench
	$(GO) test -count=1 -timeout 3m -run TestQuickSoak ./internal/soak
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 20s ./internal/lacp
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 10s ./internal/daemon
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeState$$' -fuzztime 10s ./internal/daemon

# The fast run; as a non-root user every privileged test skips with its reason.
unit:
	$(GO) test -count=1 -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v -e '_bpfel.go$$' -e '_bpfeb.go$$')); \
		if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# The main job on a built-in default: the seed's two container hosts in
# network namespaces, a cable pulled under a 1 ms ping, the failover
# timeline printed.
demo: deps build
	$(BIN)/nicteam lab demo

# The benchmarks compare a team with a plain NIC and an Open vSwitch bond,
# and TransportPorts with Dynamic on rate-limited members
# (about seven minutes; see docs/benchmarks.md). Not part of test, which runs
# a one-iteration smoke of it.
bench: DEPS = ovs
bench: deps build
	$(GO) run ./cmd/nicteam-bench -bin $(BIN) -o docs/benchmarks.md

# The soak and chaos suite (about five minutes): traffic through the seed
# lab's teams while members flap, a daemon is killed and restarted, its
# state directory fills up, the API is flooded and members are renamed;
# exits 1 on loss beyond a disturbance's stated bound or on any leak. Not
# part of test, which runs a short version of it.
soak: deps build
	$(BIN)/nicteam-soak -duration 4m
	NICTEAM_SOAK_CYCLES=1000 $(GO) test -count=1 -v -timeout 10m -run TestDaemonDoesNotLeak ./test/e2e

clean:
	rm -rf $(BIN)
