# dubboreach: `make help` lists the targets. `make test` is the one command CI runs.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BIN      := $(CURDIR)/bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
GOTEST   ?= go test
# The tests start real servers (kube-apiserver, etcd, ZooKeeper, Chromium) that find their
# binaries here.
export KUBEBUILDER_ASSETS := $(BIN)
export PATH := $(BIN):$(PATH)

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: tools
tools: ## Install test prerequisites (apt packages; kube-apiserver, etcd, helm, golangci-lint into ./bin)
	@hack/install-tools.sh

.PHONY: build
build: ## Build bin/dubboreach (static; the same command as the Dockerfile)
	VERSION=$(VERSION) COMMIT=$(COMMIT) hack/build-binary.sh $(BIN)/dubboreach

.PHONY: test
test: tools ## Everything: vet, lint, unit, fuzz seeds, envtest, ZooKeeper, race detector
	go vet ./...
	$(BIN)/golangci-lint run ./...
	$(GOTEST) -race -count=1 -timeout 30m ./...

.PHONY: demo
demo: tools ## The whole system on this machine: API server, ZooKeeper, webhook, auditor, dashboard (Ctrl-C stops)
	go run ./hack/demo

.PHONY: lab
lab: tools ## The field-case lab by hand (network namespaces, ZooKeeper; root): prints how to enter each host, Ctrl-C removes it
	go run ./test/lab/cmd/lab up

.PHONY: lint
lint: tools ## golangci-lint
	$(BIN)/golangci-lint run ./...

.PHONY: bench
bench: tools ## Benchmarks (figures in the README)
	$(GOTEST) -run '^$$' -bench . -benchmem -count 1 -timeout 60m ./...

FUZZTIME ?= 10s
.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 10s)
	@hack/fuzz.sh $(FUZZTIME)

.PHONY: clean
clean: ## Remove build output (keeps ./bin tools)
	rm -f $(BIN)/dubboreach
	rm -rf test/artifacts
