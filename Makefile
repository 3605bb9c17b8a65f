# Targets work across every module of go.work.
SHELL   := /bin/bash
MODULES := $(shell go list -m -f '{{.Dir}}')
PKGS    := $(addsuffix /...,$(shell go list -m))
BUF     := cd proto && GOWORK=off go tool buf
TESTFLAGS ?= -race -timeout 15m
FUZZTIME  ?= 30s

.PHONY: run test build proto proto-check lint vet tidy clean deploy-check fuzz

## run: every service, the web console and the dev mailbox in one process with an embedded NATS (see README)
run:
	go run ./cmd/feedloop dev

## test: generated code in sync, lint, then every module's tests against real NATS and Redis
test: proto-check lint deploy-check
	go test $(TESTFLAGS) $(PKGS)

## deploy-check: build every kustomize overlay (offline, kustomize Go API), decode every object strictly
## into the Kubernetes API types, check images against skaffold.yaml, ConfigMap files and the services' env;
## the Grafana dashboards against Grafana's schema (grafana-foundation-sdk) and every query with PromQL's parser
deploy-check:
	go test -count=1 github.com/feedloop/feedloop/deploy/check/manifests github.com/feedloop/feedloop/deploy/check/dashboards

## fuzz: every Fuzz target of the workspace (found in the *_test.go files), each for FUZZTIME (30s);
## their seed corpora (testdata/fuzz/<FuzzName>) run with every `make test`
fuzz:
	@set -e; grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' $(MODULES) | sort -u | \
	while IFS=: read -r file fn; do \
	  name=$${fn#func }; dir=$$(dirname "$$file"); \
	  echo "== $$name ($$dir) for $(FUZZTIME)"; \
	  (cd "$$dir" && go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) .) || exit 1; \
	done

## build: every binary into ./bin
build:
	@mkdir -p bin
	go build -o bin/feedloop ./cmd/feedloop
	for s in intake classifier router notifier console; do go build -o bin/$$s ./services/$$s/cmd/$$s || exit 1; done

## bench: feedloop against the JetStream ceiling of this machine, one run (BENCHFLAGS=--json, --quick, --rate N, --duration D…)
.PHONY: bench
bench:
	go run ./cmd/feedloop bench $(BENCHFLAGS)

## chaos: the fault harness, 20,000 items: every service its own process, each SIGKILLed once, nats-server
## killed and restarted, Redis flushed, 1% poison; asserts nothing lost or sent twice (CHAOSFLAGS=--keep …)
.PHONY: chaos
chaos:
	go run ./cmd/feedloop chaos --items 20000 $(CHAOSFLAGS)

## proto: lint the contract and regenerate the Go code beside it
proto:
	$(BUF) lint
	$(BUF) generate

## proto-check: fail when the committed generated code is stale
proto-check: proto
	@git diff --exit-code -- proto >/dev/null && test -z "$$(git status --porcelain -- proto)" \
	  || { git status --short -- proto; echo "generated code is stale: run 'make proto' and commit"; exit 1; }

## lint: gofmt, go vet, buf lint
lint:
	@out=$$(gofmt -l $(MODULES)); test -z "$$out" || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	go vet $(PKGS)
	$(BUF) lint

## tidy: go mod tidy in every module
tidy:
	for d in $(MODULES); do (cd $$d && go mod tidy) || exit 1; done

clean:
	rm -rf bin .feedloop
