# Dermfollow. `make run` and `make test` install and start everything they need.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
SERVICES := scripts/services.sh
# 2 cores: two test binaries at once, each running its parallel tests.
TEST_FLAGS ?= -race -count=1 -p 2 -timeout 20m

STATICCHECK_VERSION := v0.8.2
STATICCHECK := .tools/bin/staticcheck

.PHONY: all build run two-servers test templ-check vet lint fmt-check bench bench-scale fuzz services stop clean

all: build

build:
	$(GO) build -o bin/dermfollow ./cmd/dermfollow

## run: start PostgreSQL and Mailpit if needed (MinIO only with S3=1), migrate, load demo data, serve on :8080
run: build
	@eval "$$($(SERVICES) up run)"; \
	bin/dermfollow migrate >/dev/null; \
	bin/dermfollow demo; \
	exec bin/dermfollow serve

## two-servers: two servers on one database and bucket behind a balancer on :8080 (S3 via MinIO)
two-servers: build
	@scripts/two-servers.sh

## bench: speed and memory targets against baselines measured in the same run; rewrites docs/PERFORMANCE.md
bench:
	@scripts/bench.sh

## bench-scale: the pages and background queries at two generated sizes (about 11 minutes); rewrites its section of docs/PERFORMANCE.md
bench-scale:
	@scripts/bench_scale.sh

## test: start the real services, then vet, check formatting and run every test with -race
test: templ-check vet lint fmt-check
	@eval "$$($(SERVICES) up test)"; \
	$(GO) test $(TEST_FLAGS) ./...

## fuzz: run every fuzz target for FUZZTIME each (default 30s); `make test` runs their seed corpora
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -h -o '^func Fuzz[A-Za-z0-9_]*' $$pkg/*_test.go | cut -d' ' -f2); do \
			echo "fuzz: $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

## templ-check: the committed *_templ.go files are exactly what `go tool templ generate` makes of
## the *.templ files (generated in a temporary copy, so the tree is never touched); regenerate with
## `go tool templ generate` when it fails
TEMPL_DIRS := web
templ-check:
	@gen=$$(mktemp -d); have=$$(mktemp -d); trap 'rm -rf "$$gen" "$$have"' EXIT; \
	for d in $(TEMPL_DIRS); do \
		mkdir -p "$$gen/$$d" "$$have/$$d"; cp $$d/*.templ "$$gen/$$d/"; cp $$d/*_templ.go "$$have/$$d/" 2>/dev/null || true; \
	done; \
	$(GO) tool templ generate -path "$$gen" >"$$have/log" 2>&1 || { cat "$$have/log"; exit 1; }; \
	rm -f "$$have/log"; find "$$gen" -name '*.templ' -delete; \
	if ! diff -ru "$$have" "$$gen"; then \
		echo "templ-check: *_templ.go are stale: run go tool templ generate at the top of the repository and commit"; exit 1; \
	fi

vet:
	$(GO) vet ./...

## lint: staticcheck (built once into .tools/bin) and the size rules (files 450 lines, functions 80)
lint: $(STATICCHECK)
	$(STATICCHECK) ./...
	$(GO) run ./scripts/sizecheck

$(STATICCHECK):
	GOBIN=$(CURDIR)/.tools/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*')); \
	if [[ -n $$out ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

services:
	@$(SERVICES) up test >/dev/null

stop:
	@$(SERVICES) down

clean: stop
	rm -rf bin .dev .testout
