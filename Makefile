# The README's two commands are `make test` and `make demo`; everything else is for development.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
SCENARIOS ?= all

.PHONY: help install lock cluster-bins cluster kind-bins kind-cluster image demo generate check-generated fmt lint typecheck unit e2e kind test clean bench
CLUSTER ?= local
# Python sources that ruff formats and checks.
SOURCES := operator devtools tests bench
.DEFAULT_GOAL := help

help:  ## this list: every target and what it does
	@awk 'BEGIN {FS = ":.*##[ ]*"} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## the virtualenv with the package and its locked dependencies

lock:  ## re-resolve requirements.lock from pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements.lock

cluster-bins: $(STAMP)  ## find or build kube-apiserver & co. (cached under ~/.cache/production-policy)
	$(BIN)/python -m devtools.devcluster.binaries

cluster: cluster-bins  ## a local control plane in the foreground; kubeconfig in .cluster/kubeconfig
	$(BIN)/python -m devtools.devcluster --kubeconfig-out .cluster/kubeconfig

kind-bins: cluster-bins  ## kind, kubelet & co., the node and busybox images (a dockerd of ours if none runs)
	$(BIN)/python -m devtools.kind prepare

image:  ## the operator image production-policy:dev, built offline (a dockerd of ours if none runs)
	$(BIN)/python -m devtools.image

kind-cluster: kind-bins  ## a kind cluster (real kubelet) in the foreground; kubeconfig in .cluster/kind.kubeconfig
	$(BIN)/python -m devtools.kind --kubeconfig-out .cluster/kind.kubeconfig

# CLUSTER=kind also needs kind, its node image and helm (kind-bins); the demo builds the image itself.
demo: $(STAMP) $(if $(filter kind,$(CLUSTER)),kind-bins)  ## the README's run command: a guided tour (CLUSTER=existing: the current kube context; CLUSTER=kind: on kind, the chart installed from the image)
	$(BIN)/python -m devtools.demo --cluster=$(CLUSTER)

generate: $(STAMP)  ## regenerate every generated file: the CRD, the chart's parts, the policy reference
	$(BIN)/python -m devtools.crd --write
	$(BIN)/python -m devtools.chartgen
	$(BIN)/python -m devtools.reference --write

check-generated: $(STAMP)  ## fail if a generated file differs from what its generator makes now
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS) \
		tests/unit/test_crd.py::test_crds_directory_holds_the_generated_crd \
		tests/unit/test_chart_render.py::test_generated_chart_files_are_current \
		tests/unit/test_docs.py::test_the_policy_reference_is_generated_from_the_models

fmt: $(STAMP)  ## format the code and apply ruff's safe fixes
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

lint: $(STAMP)  ## ruff (rules and format), typecheck, the layer contracts (.importlinter)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(MAKE) --no-print-directory typecheck
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)  ## mypy (strict) over the package, devtools, bench and tests
	$(BIN)/mypy
	$(BIN)/mypy -p bench -p devtools -p tests

unit: $(STAMP)  ## the fast inner loop: unit tests without the slow ones, properties at 50 examples
	$(BIN)/pytest tests/unit -m "not slow" $(PYTEST_ARGS)

e2e: cluster-bins  ## the end-to-end tests on the local control plane
	PP_REQUIRE_CLUSTER=1 $(BIN)/pytest tests/e2e $(PYTEST_ARGS)

kind: kind-bins  ## only the real-kubelet tests, on kind
	PP_REQUIRE_CLUSTER=1 $(BIN)/pytest tests/kind $(PYTEST_ARGS)

# A run that collects no test exits 5 and fails the build, as it should.
test: lint cluster-bins kind-bins  ## everything CI runs: lint, all unit tests (slow ones, 500 examples), e2e, kind
	PP_REQUIRE_CLUSTER=1 $(BIN)/pytest tests --hypothesis-profile=thorough --cov=production_policy \
		--cov-report=term $(PYTEST_ARGS)

# Scenario 5 needs a stakater/Reloader binary (built by hand; see bench/reloader.py).
# BENCH_ARGS: more flags of bench.run, e.g. "--tiny --out /tmp/bench" (small sizes, results elsewhere).
RELOADER_BIN ?=
BENCH_ARGS ?=
bench: cluster-bins  ## benchmarks into bench/results (SCENARIOS=admission_e2e,webhook,rollout,memory,reloader, or admission_edit: the edit phase of admission_e2e alone; RELOADER_BIN=path; BENCH_ARGS)
	RELOADER_BIN="$(RELOADER_BIN)" $(BIN)/python -m bench.run --scenarios $(SCENARIOS) $(BENCH_ARGS)

clean:  ## remove the virtualenv, the local cluster state and the tool caches
	rm -rf $(VENV) .cluster .pytest_cache .pytest-kind .mypy_cache .ruff_cache
