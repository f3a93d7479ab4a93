# HelioBench: `make demo` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_USAGE_STATS_ENABLED := 0
export PYTHONUNBUFFERED := 1

# Debian packages: OpenJPEG for JPEG 2000 (Helioviewer JP2 files); Chromium for the leaderboard page test;
# PostgreSQL for the shared tracking server (`make services`, tests/test_shared_tracking.py).
APT_PACKAGES := libopenjp2-7 chromium postgresql
SERVICES_DIR ?= work/services

.PHONY: demo test test-fast test-cluster fuzz bench sim-report system-deps clean services shared-tracking services-down

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(BIN)/heliobench: pyproject.toml | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: system-deps $(BIN)/heliobench
	$(BIN)/heliobench demo

# Everything, the multi-node and fault tests (marked slow) included.
test: system-deps $(BIN)/heliobench
	$(BIN)/pytest -q --timeout=900

# Without the slow multi-node and fault tests (a quicker loop while developing).
test-fast: system-deps $(BIN)/heliobench
	$(BIN)/pytest -q --timeout=900 -m "not slow"

# Only the multi-node cluster and fault tests.
test-cluster: system-deps $(BIN)/heliobench
	$(BIN)/pytest -q --timeout=900 -m slow

# The readers fuzzed with many more damaged files than `make test` tries (FUZZ_EXAMPLES of them,
# default 5000; about 7 min on two cores), with hypothesis's statistics. See tests/test_fuzz.py.
FUZZ_EXAMPLES ?= 5000
fuzz: system-deps $(BIN)/heliobench
	HELIOBENCH_FUZZ=fuzz HELIOBENCH_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -p no:cacheprovider --timeout=0 \
	  --hypothesis-show-statistics tests/test_fuzz.py

# The shared lab services on this machine: PostgreSQL, an S3-compatible server (moto) and
# `mlflow server` with basic-auth, on 127.0.0.1 (ports MLFLOW_PORT=5000, S3_PORT=9000,
# PG_PORT=5433); credentials and addresses in $(SERVICES_DIR)/lab.env. See infra/README.md.
services: system-deps $(BIN)/heliobench
	$(BIN)/python infra/local/services.py up --dir $(SERVICES_DIR)

shared-tracking: services

services-down:
	$(BIN)/python infra/local/services.py down --dir $(SERVICES_DIR)

# How close the simulated archive is to real data (../shared/realdata): table, figures and
# HTML page in $(SIM_REPORT_DIR) (a few minutes). `heliobench demo` can call the same report
# (heliobench.realism.demo_report) with its workspace.
SIM_REPORT_DIR ?= work/sim_report
sim-report: system-deps $(BIN)/heliobench
	$(BIN)/heliobench sim-report --out $(SIM_REPORT_DIR)

bench: system-deps $(BIN)/heliobench
	$(BIN)/python benchmarks/perf/run_all.py

clean:
	rm -rf work .pytest_cache
