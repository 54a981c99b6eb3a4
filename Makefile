# HossAgent. `make test` is the contract: on a fresh machine with Go it
# installs what the tests need and runs every check and test.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go

.PHONY: test deps check-format check-vet check-staticcheck check-templ check-assets unit fuzz build run generate clean

test: deps check-format check-templ check-vet check-staticcheck check-assets unit

# deps installs what the tests need and the machine lacks: Debian's chromium
# for the browser tests and Debian's postgresql server for the PostgreSQL
# tests (only possible as root; the tests start their own throw-away cluster
# from its binaries, see db/pgtest), and every Go module and tool named in
# go.mod (templ, stripe-mock and the rest are `tool` lines).
APT_NEEDS = $(if $(shell command -v chromium),,chromium) \
	$(if $(wildcard /usr/lib/postgresql/*/bin/postgres),,postgresql)

deps:
	@if [ -n "$(strip $(APT_NEEDS))" ]; then \
		if [ "$$(id -u)" = "0" ]; then \
			echo "installing Debian $(strip $(APT_NEEDS)) for the tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_NEEDS) >/dev/null; \
		else \
			echo "missing and this is not root: install Debian's $(strip $(APT_NEEDS))" >&2; exit 1; \
		fi; \
	fi
	$(GO) mod download

# gofmt must have nothing to say about any Go file (generated ones included).
check-format:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

check-vet:
	$(GO) vet ./...

# staticcheck is a `tool` in go.mod, like templ: no separate install.
check-staticcheck:
	$(GO) tool staticcheck ./...

# Regenerate the templ files in a scratch copy and compare: the committed
# *_templ.go files must be exactly what templ produces.
check-templ:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cp -r views "$$tmp/views"; \
	if ! $(GO) tool templ generate -path "$$tmp" >"$$tmp/log" 2>&1; then cat "$$tmp/log"; echo "templ generate failed"; exit 1; fi; \
	if ! diff -r views "$$tmp/views" >"$$tmp/diff"; then \
		echo "templ generate changes committed files: run 'go tool templ generate' and commit"; \
		head -n 40 "$$tmp/diff"; exit 1; \
	fi

# The vendored htmx files must match their SHA256SUMS.
check-assets:
	bash assets/vendor.sh --check

# unit runs every package's tests, then the store's suite a second time on
# PostgreSQL (db/db_test.go's mustOpen switches on HOSSAGENT_TEST_DB).
unit:
	$(GO) test -count=1 ./...
	HOSSAGENT_TEST_DB=postgres $(GO) test -count=1 -timeout 20m ./db/

# fuzz runs every Go fuzz target of the module (found with go test -list,
# so a new FuzzXxx is included without editing this file), one after
# another, each for FUZZTIME; the first finding fails it (go test writes the
# input to the package's testdata/fuzz/FuzzXxx/, where it then runs as part
# of make test). FUZZPARALLEL bounds the fuzzing workers (go's default: one
# per CPU). FUZZMINIMIZETIME bounds the minimisation of each new input: the
# targets run a real store, and go's default (60s per input) would spend
# most of a short run minimising. `make test` runs the seed corpora as
# ordinary tests.
FUZZTIME ?= 5m
FUZZPARALLEL ?=
FUZZMINIMIZETIME ?= 10s

fuzz:
	@targets=$$($(GO) test -list '^Fuzz' ./... | awk '/^Fuzz/ { names[n++] = $$1; next } /^ok/ { for (i = 0; i < n; i++) print $$2, names[i]; n = 0 }'); \
	if [ -z "$$targets" ]; then echo "no fuzz targets found" >&2; exit 1; fi; \
	echo "$$targets" | while read -r pkg name; do \
		echo "== $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $(if $(FUZZPARALLEL),-parallel $(FUZZPARALLEL)) "$$pkg" || exit 1; \
	done

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o hossagent .

run:
	$(GO) run .

generate:
	$(GO) tool templ generate

clean:
	rm -f hossagent
