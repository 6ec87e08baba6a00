# The README's two commands are `make test` and `make demo`; everything else is for development.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
SCENARIOS ?= all

.PHONY: install lock cluster-bins cluster demo lint unit e2e test crd clean bench
CLUSTER ?= local

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
	$(BIN)/python -m production_policy.devcluster.binaries

cluster: cluster-bins  ## a local control plane in the foreground; kubeconfig in .cluster/kubeconfig
	$(BIN)/python -m production_policy.devcluster --kubeconfig-out .cluster/kubeconfig

demo: $(STAMP)  ## the README's run command: a guided tour (CLUSTER=existing: the current kube context)
	$(BIN)/production-policy demo --cluster=$(CLUSTER)

lint: $(STAMP)
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench
	$(BIN)/mypy
	$(BIN)/mypy -p bench

unit: $(STAMP)  ## the fast inner loop: no cluster needed
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

e2e: cluster-bins
	PP_REQUIRE_CLUSTER=1 $(BIN)/pytest tests/e2e $(PYTEST_ARGS)

# A run that collects no test exits 5 and fails the build, as it should.
test: lint cluster-bins  ## everything CI runs: lint, unit and e2e tests on the local control plane
	PP_REQUIRE_CLUSTER=1 $(BIN)/pytest tests --cov=production_policy --cov-report=term $(PYTEST_ARGS)

bench: cluster-bins  ## benchmarks into bench/results (SCENARIOS=admission_e2e,webhook,rollout,memory,reloader)
	$(BIN)/python -m bench.run --scenarios $(SCENARIOS)

clean:
	rm -rf $(VENV) .cluster .pytest_cache .mypy_cache .ruff_cache
