# nvmftest — the commands a developer and CI run. `make help` lists them.
GO        ?= go
PKGS      := ./...
FUZZTIME  ?= 30s
BENCHTIME ?= 3s
SOAK      ?= 10m
ROUNDS    ?= 2
SECONDS   ?= 5
SOAK_TIMEOUT ?= 2h

.PHONY: help demo build test vet lint interop fuzz bench bench-spdk soak deps-test deps-interop clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

demo: ## run the harness end to end against the embedded reference target
	$(GO) run ./cmd/nvmftest demo

build: ## build bin/nvmftest (nvmftest --version names the commit, even where VCS stamping is off)
	$(GO) build -ldflags "-X main.revision=$$(git rev-parse HEAD 2>/dev/null)" -o bin/nvmftest ./cmd/nvmftest

test: vet deps-test ## every test, with the race detector (what CI runs)
	$(GO) test -race -count=1 -timeout 14m $(PKGS)

deps-test: ## tshark (decodes our traces), Chromium (renders the HTML report) and fio (parses job files beside ours), via apt when root
	bash fixtures/kernel/install-deps.sh --optional tshark chromium fio

vet: ## go vet and gofmt
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

lint: vet ## vet, gofmt and staticcheck
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

deps-interop: ## install qemu and friends for the kernel fixture (root, apt)
	bash fixtures/kernel/install-deps.sh

interop: deps-interop ## Linux 6.12 kernel host and target under qemu against ours
	NVMFTEST_INTEROP=1 $(GO) test -count=1 -v -timeout 35m ./fixtures/...

fuzz: ## run every fuzzer for FUZZTIME each
	@set -e; for pkg in ./nvme ./nvme/tcp ./target ./initiator; do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; done

soak: ## the release soak against the reference target for SOAK (10m); NVMFTEST_SOAK_SKIP=a,b leaves actors out
	NVMFTEST_SOAK=$(SOAK) $(GO) test -race -count=1 -v -timeout $(SOAK_TIMEOUT) -run '^TestSoak$$' ./soak/

bench: ## the in-process speed figures of BENCHMARKS.md (profiling)
	$(GO) test -run='^$$' -bench=. -benchtime=$(BENCHTIME) -count=1 ./perf/

bench-spdk: ## the headline figures: nvmftest's target and bench as separate processes, side by side with SPDK's (needs the SPDK peer build, root, a quiet machine; rewrites BENCHMARKS.md's table)
	$(GO) run ./perf/benchspdk -rounds $(ROUNDS) -seconds $(SECONDS) -update BENCHMARKS.md

clean:
	rm -rf bin
