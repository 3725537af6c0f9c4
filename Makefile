# leadscore developer entry points. `make test` is what CI runs (.ci/run).

# Ports of the local Kafka/Redis started by scripts/services.sh; override as
# `make test KAFKA_PORT=19092 REDIS_PORT=16379`. Exported so services.sh sees the same.
KAFKA_PORT ?= 9092
REDIS_PORT ?= 6379
export LEADSCORE_KAFKA_PORT := $(KAFKA_PORT)
export LEADSCORE_REDIS_PORT := $(REDIS_PORT)

GO ?= go
SERVICES := scripts/services.sh

.PHONY: all services-up services-down build run test test-unit lint

all: lint build test-unit

services-up:
	$(SERVICES) up

services-down:
	$(SERVICES) down

build:
	$(GO) build -o bin/leadscore ./cmd/leadscore

run:
	$(GO) run ./cmd/leadscore dev --demo

# Full suite against real Kafka + Redis: the integration tests read these variables and
# must not be skipped here.
test: services-up
	LEADSCORE_TEST_KAFKA_BROKERS=127.0.0.1:$(KAFKA_PORT) \
	LEADSCORE_TEST_REDIS_ADDR=127.0.0.1:$(REDIS_PORT) \
	scripts/test.sh

# Fault suite (issue #5, README "Fault suite"): cmd/chaos against its OWN Kafka and Redis (AOF on)
# on CHAOS_KAFKA_PORT/CHAOS_REDIS_PORT, so restarting them never disturbs the services `test` uses.
# `chaos`: 50 faults, 200,000 events; `chaos-short`: 5 faults, 20,000 events (< 3 min; CI runs it).
# More flags (--faults, --events, --leads, --seed): make chaos CHAOS_FLAGS='--seed 7'.
CHAOS_KAFKA_PORT ?= 19192
CHAOS_REDIS_PORT ?= 16479
.PHONY: chaos chaos-short
chaos:
	$(GO) run ./cmd/chaos --kafka-port $(CHAOS_KAFKA_PORT) --redis-port $(CHAOS_REDIS_PORT) $(CHAOS_FLAGS)

chaos-short:
	$(GO) run ./cmd/chaos --short --kafka-port $(CHAOS_KAFKA_PORT) --redis-port $(CHAOS_REDIS_PORT) $(CHAOS_FLAGS)

# End-to-end benchmark (issue #6, docs/BENCHMARKS.md): cmd/bench against its OWN Kafka and Redis on
# BENCH_KAFKA_PORT/BENCH_REDIS_PORT, leadscore as a subprocess, the generator in-process. `bench`: the
# figures in docs/BENCHMARKS.md (3M-event backlog over 1M leads, latency at 1k/10k/50k events/s, a 10-minute
# outage at 10k/s, naive baseline; ~6 min); `bench-quick`: the same phases, small (~2 min).
# More flags: make bench BENCH_FLAGS='--profile cpu.pprof --json bench.json'.
BENCH_KAFKA_PORT ?= 19292
BENCH_REDIS_PORT ?= 16579
.PHONY: bench bench-quick
bench:
	$(GO) run ./cmd/bench --kafka-port $(BENCH_KAFKA_PORT) --redis-port $(BENCH_REDIS_PORT) $(BENCH_FLAGS)

bench-quick:
	$(GO) run ./cmd/bench --quick --kafka-port $(BENCH_KAFKA_PORT) --redis-port $(BENCH_REDIS_PORT) $(BENCH_FLAGS)

# Fast loop: no services needed.
test-unit:
	$(GO) test -race -short ./...

lint:
	@# gofmt -l on every Go file outside the git-ignored trees; non-empty output = unformatted.
	@out="$$(find . -name '*.go' -not -path './.cache/*' -not -path './bin/*' -print0 | xargs -0 -r gofmt -l)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
