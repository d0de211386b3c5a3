# suanli: two commands matter — `make dev` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY_VERSION ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export SUANLI_CACHE ?= $(HOME)/.cache/suanli
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help dev dev-down dev-status test lint unit integration generate check-generated bench tools venv promtool-test package docs image clean

help:
	@echo "make dev              bring up the local compute centre (control plane, fake NPU/GPU nodes, operator, Prometheus)"
	@echo "make dev-down         stop it"
	@echo "make test             everything CI runs"
	@echo "make bench            placement-core benchmarks (compiled vs reference)"
	@echo "make image            the operator image from the Dockerfile (buildah, no registry)"
	@echo "make generate         regenerate CRDs, chart/deploy copies, dashboards and alerts"
	@echo "make docs             the documentation site (MkDocs Material, strict link checking)"

# --- environment -----------------------------------------------------------------------------
$(VENV)/.installed: setup.py pyproject.toml $(shell find operator -name '*.pyx' -o -name '*.pxd' 2>/dev/null)
	@echo "==> Python environment in $(VENV) (suanli + dev tools, Cython core compiled)"
	@test -x $(PY) || $(PY_VERSION) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

tools:
	@bash hack/build-tools.sh all
	@bash hack/install-prometheus.sh
	@bash hack/install-chromium.sh
	@if [ "$$(id -u)" = 0 ]; then bash hack/install-node-packages.sh; \
	 else echo "tools: not root: containerd/runc/CNI/buildah not installed (no real node)"; fi

# --- generated artifacts ---------------------------------------------------------------------
generate: venv
	@$(PY) hack/generate.py

check-generated: venv
	@echo "==> generated files in sync with their sources"
	@$(PY) hack/generate.py --check

# --- checks ----------------------------------------------------------------------------------
lint: venv
	@echo "==> ruff"
	@$(VENV)/bin/ruff check operator tests hack bench
	@$(VENV)/bin/ruff format --check operator tests hack bench
	@echo "==> mypy --strict"
	@$(VENV)/bin/mypy
	@echo "==> import-linter"
	@$(VENV)/bin/lint-imports

unit: venv tools
	@echo "==> unit tests (no cluster)"
	@$(PY) -m pytest tests/unit -q

# Two workers, each with control planes of its own; a module's tests stay on one worker
# (--dist loadscope), so its operator and cluster fixtures start once. The suite mostly waits on
# its apiservers: two at once took 20 min where one took 33 (docs/testing.md).
INTEGRATION_JOBS ?= 2
INTEGRATION_ARGS = tests/integration tests/reliability -q -m integration -n $(INTEGRATION_JOBS) --dist loadscope
integration: venv tools
	@echo "==> integration tests (real kube-apiserver, etcd, kube-controller-manager, kwok, prometheus), $(INTEGRATION_JOBS) workers"
	@$(PY) -m pytest $(INTEGRATION_ARGS)

promtool-test: venv tools
	@echo "==> promtool check/test rules"
	@bash hack/promtool-test.sh

# A plain (non-editable) install must work too: build the wheel in an isolated build
# environment and check it carries the compiled core.
package: venv
	@echo "==> wheel build (pip wheel ., isolated build with Cython)"
	@rm -rf build/wheel && $(PY) -m pip wheel -q --no-deps -w build/wheel .
	@$(PY) -c "import glob, sys, zipfile; \
		names = zipfile.ZipFile(glob.glob('build/wheel/suanli-*.whl')[0]).namelist(); \
		ok = any(n.startswith('suanli/placement/_core') and n.endswith('.so') for n in names); \
		sys.exit(0 if ok else 'wheel has no compiled placement core')"
	@echo "    $$(ls build/wheel/)"

# unit and integration run under coverage here (the plain `make unit` / `make integration` are
# for development): the combined figure is printed at the end
test: lint check-generated docs package coverage-unit mutation-check promtool-test coverage-integration coverage-report
	@echo "==> make test: all green"

# The operator image: `pip wheel .` (compiled core), its install tree, then `buildah bud` of the
# Dockerfile on a debootstrap Python base; an OCI archive in $(SUANLI_CACHE)/images.
image: venv tools
	@echo "==> operator image (buildah, --network none, base from debootstrap)"
	@$(PY) -m suanli.localcluster.images

# The documentation site: `mkdocs build --strict` fails on a broken link or anchor, and on a
# page missing from the nav; output in build/site.
docs: venv
	@echo "==> docs (mkdocs build --strict)"
	@NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

bench: venv
	@$(PY) bench/placement_bench.py

# The reliability suite's long versions (docs/reliability.md): crash points, control-plane faults,
# two replicas, load, metering under faults; `make integration` runs the bounded ones. Hours on
# 2 cores. Writes the figures of the run into docs/reliability.md, whatever the outcome.
.PHONY: chaos
chaos: venv tools
	@echo "==> reliability suite, long versions"
	@rm -f build/reliability/*-long.json
	@SUANLI_CHAOS=long nice -n 5 $(PY) -m pytest tests/reliability -q -m integration -s --timeout=21600; \
	 status=$$?; $(PY) tests/reliability/report.py; exit $$status

# Throughput on the real control plane, suanli and kube-scheduler side by side in one run
# (docs/performance.md): 1,000 nodes / 2,000 pods, then 5,000 nodes / 20,000 pods. The small
# size runs in `make integration` (tests/integration/test_throughput.py) for correctness only.
.PHONY: bench-scale bench-scale-small
bench-scale: venv tools
	@mkdir -p build/bench
	@nice -n 5 $(PY) bench/decision_bench.py --nodes 5000 --pods 20000
	@nice -n 5 $(PY) bench/scale_bench.py --nodes 1000 --pods 2000 --json build/bench/scale-1000.json
	@nice -n 5 $(PY) bench/scale_bench.py --nodes 5000 --pods 20000 --timeout 1800 --json build/bench/scale-5000.json

bench-scale-small: venv tools
	@nice -n 5 $(PY) bench/scale_bench.py --nodes 48 --pods 96

# --- how good the tests are (docs/testing.md) ------------------------------------------------
# Mutation testing of the pure packages (mutmut, in a private copy under build/mutation):
# `make mutation` runs every mutant (hours on 2 cores); `make mutation-sample` a fixed-seed
# sample. MUTATION_SAMPLE / MUTATION_SEED / MUTATION_JOBS override.
MUTATION_SAMPLE ?= 0.02
MUTATION_SEED ?= 17
MUTATION_JOBS ?= 2
.PHONY: mutation mutation-sample mutation-check coverage coverage-unit coverage-integration coverage-report
mutation: venv
	@echo "==> mutation testing (mutmut): every mutant"
	@nice -n 10 $(PY) hack/mutation.py --jobs $(MUTATION_JOBS)

mutation-sample: venv
	@echo "==> mutation testing (mutmut): a $(MUTATION_SAMPLE) sample, seed $(MUTATION_SEED)"
	@nice -n 10 $(PY) hack/mutation.py --sample $(MUTATION_SAMPLE) --seed $(MUTATION_SEED) --jobs $(MUTATION_JOBS)

# The sample `make test` runs (about 5 minutes on 2 cores, most of it mutmut's set-up per
# package): 1 % of every package's mutants, a fixed seed, failing when a package kills < 85 %.
MUTATION_CHECK_SAMPLE ?= 0.01
MUTATION_CHECK_SEED ?= 19
mutation-check: venv
	@echo "==> mutation testing (mutmut): a $(MUTATION_CHECK_SAMPLE) sample, seed $(MUTATION_CHECK_SEED), at least 85 % killed per package"
	@$(PY) hack/mutation.py --sample $(MUTATION_CHECK_SAMPLE) --seed $(MUTATION_CHECK_SEED) --jobs $(MUTATION_JOBS) --fail-under 85 --quiet

# Branch coverage of unit + integration together; the operator subprocesses are measured
# through COVERAGE_PROCESS_START (coverage's .pth hook). Figures per package at the end.
COVERAGE_ENV := COVERAGE_PROCESS_START=$(CURDIR)/hack/coverage.ini COVERAGE_FILE=$(CURDIR)/build/coverage/data
COVERAGE_RUN := $(COVERAGE_ENV) $(PY) -m coverage run --rcfile=hack/coverage.ini
UNIT_JOBS ?= 2
coverage-unit: venv tools
	@echo "==> unit tests (no cluster), under branch coverage, $(UNIT_JOBS) workers"
	@rm -rf build/coverage && mkdir -p build/coverage
	@$(COVERAGE_RUN) -m pytest tests/unit -q -n $(UNIT_JOBS)

coverage-integration: venv tools
	@echo "==> integration and bounded reliability tests (real kube-apiserver, etcd, kube-controller-manager, kwok, prometheus), under branch coverage, operator subprocesses included, $(INTEGRATION_JOBS) workers"
	@mkdir -p build/coverage
	@$(COVERAGE_RUN) -m pytest $(INTEGRATION_ARGS)

coverage-report: venv
	@$(COVERAGE_ENV) $(PY) -m coverage combine --rcfile=hack/coverage.ini -q
	@echo "==> branch coverage (statements + branches), unit + integration"
	@$(PY) hack/coverage_summary.py --check

coverage: coverage-unit coverage-integration coverage-report

# --- the local centre ------------------------------------------------------------------------
dev: venv tools
	@$(PY) -m suanli.localcluster up --with-operator --with-examples --with-prometheus --real-node=auto

dev-down: venv
	@$(PY) -m suanli.localcluster down

dev-status: venv
	@$(PY) -m suanli.localcluster status

clean:
	rm -rf build dist *.egg-info $(VENV)
	find operator -name '*.so' -delete -o -name '*.c' -path '*suanli*' -delete
