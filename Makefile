# Stashplane's build. Every tool is pinned under hack/tools and built into
# the git-ignored bin/ by `make tools`, only when missing or re-pinned.

SHELL := /usr/bin/env bash -o pipefail
GO    ?= go
BIN   := $(CURDIR)/bin
export STASHPLANE_BIN_DIR := $(BIN)
export KUBEBUILDER_ASSETS := $(BIN)
export PATH := $(BIN):$(PATH)

# Packages of the unit tier: everything but the suites under test/.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v '/test/')

# What `make demo` runs: the control plane, kubectl and restic. The test
# tiers need the rest of the tools too (controller-gen, the storage
# emulators, the crossplane CLI, PostgreSQL), which the demo never builds.
DEMO_TOOLS := etcd kube-apiserver kube-controller-manager kube-scheduler kubectl restic

# The e2e tier runs every dev-cluster test in parallel, E2E_PARALLEL clusters
# at a time; each cluster mostly waits on its pods, so more clusters than
# cores fit. Its full output goes to _output/e2e.log and a table of the
# slowest tests is printed, so each change can report the time it adds.
E2E_PARALLEL ?= 4
E2E_TIMEOUT  ?= 45m

.PHONY: all tools build images crossplane-manifest generate verify verify-generate test test-unit test-integration test-crossplane test-images test-e2e demo bench fuzz clean

all: build

## tools: build the pinned control plane, restic and generators into bin/
tools:
	@hack/tools.sh

## build: build the stashplane binary into bin/
build:
	$(GO) build -o $(BIN)/stashplane ./cmd/stashplane

## images: build the runtime images and the Crossplane packages (no container
## engine) into the OCI layout bin/images/oci, version stamped from git;
## IMAGES_PUSH=REGISTRY also pushes them there
IMAGES_PUSH ?=
images:
	@hack/tools.sh crossplane crossplane-core
	$(GO) run ./hack/images $(if $(IMAGES_PUSH),-push $(IMAGES_PUSH))

## generate: regenerate deepcopy code and CRDs from apis/, and the built-in
## addons of package/addons from their sources in functions/templates
generate:
	@hack/tools.sh controller-gen
	$(GO) generate ./apis/... ./functions/...
	$(GO) run ./hack/gen-addons

## crossplane-manifest: render Crossplane core's chart, at the version
## hack/tools/crossplane pins, into internal/devcluster/crossplane/core.yaml
## (checked in; its test fails when the pin or the values move without it)
XP_MODULE = cd hack/tools/crossplane && $(GO) list -m -f
crossplane-manifest:
	cd hack/crossplane-chart && $(GO) run . \
	  -chart "$$($(XP_MODULE) '{{.Dir}}' github.com/crossplane/crossplane/v2)/cluster/charts/crossplane" \
	  -version "$$($(XP_MODULE) '{{.Version}}' github.com/crossplane/crossplane/v2)" \
	  -values values.yaml -out ../../internal/devcluster/crossplane/core.yaml

# Operators run the CLI from their own machines: it must build for them
# too. Only `stashplane dev` needs Linux, and says so elsewhere. Windows is
# neither Linux nor unix, so its build catches a system call of either kind
# left untagged; each platform costs about 7 minutes of a cold build cache.
CLI_PLATFORMS ?= windows/amd64

## verify: formatting, vet, generated code up to date, and the CLI building for CLI_PLATFORMS
verify: verify-generate
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@for p in $(CLI_PLATFORMS); do \
	  GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -o /dev/null ./cmd/stashplane || { echo "cannot build the stashplane CLI for $$p"; exit 1; }; \
	done

verify-generate: generate
	@git diff --exit-code -- apis package/crds package/addons functions/xfn/input functions/package/input || { echo "generated code is out of date: run 'make generate' and commit"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- apis package/crds package/addons functions/xfn/input functions/package/input); \
	  if [ -n "$$untracked" ]; then echo "generated files not committed: $$untracked"; exit 1; fi

## test: every tier, building what the tests need first
test: tools build verify test-unit test-integration test-crossplane test-images test-e2e

test-unit: tools
	STASHPLANE_REQUIRE_TOOLS=1 $(GO) test -count=1 $(UNIT_PKGS)
	cd hack/monitoring && $(GO) test -count=1 ./...

test-integration: tools
	$(GO) test -count=1 ./test/integration/...

## test-crossplane: render the example Composition against the function and build the packages with the crossplane CLI
test-crossplane: tools
	$(GO) test -count=1 ./test/crossplane/...

## test-images: build the images twice from this commit (same digests), run
## their programs from the unpacked root file systems, read the packages
test-images: tools
	$(GO) test -count=1 -timeout 30m ./test/images/...

# TestCrossplaneInstalled installs the packages `make images` wrote.
test-e2e: tools build images
	@hack/e2e.sh $(E2E_PARALLEL) $(E2E_TIMEOUT)

## demo: bring up the dev cluster, run a Job on the process node, show it, tear down
## (the tools' modules download while stashplane compiles)
demo:
	@hack/tools.sh --download $(DEMO_TOOLS) >/dev/null 2>&1 & $(MAKE) --no-print-directory build; rc=$$?; wait; exit $$rc
	@hack/tools.sh $(DEMO_TOOLS)
	@hack/demo.sh

## bench: benchmarks that print side-by-side ratios
bench: tools build
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 60m ./test/bench/...
	$(GO) test -count=1 -run '^$$' -bench . -benchmem ./internal/retention/
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkUnchangedBackup|BenchmarkFirstBackup' -benchtime 6x ./internal/agent/
	$(GO) test -count=1 -run '^$$' -bench BenchmarkLocalRestore -benchtime 6x ./internal/agent/
	$(GO) test -count=1 -run '^$$' -bench BenchmarkHashBuffer -benchtime 6x ./internal/agent/

## fuzz: run every fuzz target for FUZZTIME each (the unit tier runs their seed corpora)
FUZZTIME ?= 30s
fuzz:
	@hack/fuzz.sh $(FUZZTIME)

clean:
	rm -rf $(BIN) _output
