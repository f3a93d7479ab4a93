# HelioBench: `make demo` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_USAGE_STATS_ENABLED := 0
export PYTHONUNBUFFERED := 1

# Debian packages: OpenJPEG for JPEG 2000 (Helioviewer JP2 files); Chromium for the leaderboard page test.
APT_PACKAGES := libopenjp2-7 chromium

.PHONY: demo test bench system-deps clean

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

test: system-deps $(BIN)/heliobench
	$(BIN)/pytest -q --timeout=900

bench: system-deps $(BIN)/heliobench
	$(BIN)/python benchmarks/perf/run_all.py

clean:
	rm -rf work .pytest_cache
