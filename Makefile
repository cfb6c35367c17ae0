# nicteam — the two commands a new user needs are `make demo` and `make test`.
GO ?= go
BIN := bin
STATICCHECK_VERSION := v0.8.2

.PHONY: all build deps generate test unit lint demo bench clean

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
# vSwitch as a LACP partner; then a one-iteration smoke of make bench, apart
# so that its floods cannot overlap the timing-sensitive tests; then
# bounded fuzz runs of the LACPDU decoder, the API's request decoding and
# the state file loader.
test: DEPS = ovs
test: deps build lint
	$(GO) test -count=1 -timeout 9m -skip TestQuickSmoke ./...
	$(GO) test -count=1 -timeout 2m -run TestQuickSmoke ./internal/bench
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

clean:
	rm -rf $(BIN)
