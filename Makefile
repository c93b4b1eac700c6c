# Shanzhi: `make run` serves the demo, `make test` runs every test. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CHROMIUM ?= $(shell command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null)
LOCALES := zh_CN en
PO_FILES := $(foreach l,$(LOCALES),server/locale/$(l)/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)
AXE := tests/browser/node_modules/axe-core/axe.min.js

.PHONY: run test bench soak setup test-setup chromium catalogs extract update-catalogs compile-catalogs clean

run: setup  ## Set up, migrate, load demo data into an empty database, serve on http://$(HOST):$(PORT)
	$(BIN)/shanzhi db upgrade --no-prompt
	$(BIN)/shanzhi demo --if-empty
	HOST=$(HOST) PORT=$(PORT) $(BIN)/shanzhi serve

# One pytest worker per core (pytest-xdist); PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= auto

test: test-setup  ## Set up with the test extra and run the whole suite (prints the 15 slowest tests)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --durations=15 $(PYTEST_ARGS)

# Benchmarks (never part of `make test`): pages against a bare-Litestar baseline, interleaved, at 1x,
# 100x and 1000x the demo's cases; writes bench/results.json (docs/performance.md). BENCH_ARGS passes options.
bench: test-setup
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || \
	  { echo "make bench needs wrk (Debian/Ubuntu: sudo apt-get install wrk)"; exit 1; }
	$(BIN)/python -m bench.pages $(BENCH_ARGS)
	$(BIN)/python -m bench.sync_http
	$(BIN)/python -m bench.page_weight
	$(BIN)/python -m bench.sync_pull
	$(BIN)/python -m bench.lighthouse

# Soak and kill (bounded, loopback): SQLite with one process, then PostgreSQL with two and Redis.
SOAK_DB ?= shanzhi_soak
soak: setup
	$(BIN)/python -m bench.soak
	@psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $(SOAK_DB)" 2>/dev/null || true
	$(BIN)/python -m bench.soak --database-url postgresql+asyncpg://postgres@127.0.0.1/$(SOAK_DB) \
	  --redis-url redis://127.0.0.1:6379/15 --workers 2
	@psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $(SOAK_DB)" 2>/dev/null || true

setup: $(VENV)/.installed $(MO_FILES)

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

test-setup: $(VENV)/.installed-test $(MO_FILES) chromium $(AXE)

$(AXE): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
	@touch $@

chromium:  ## Make sure a Chromium is there for the browser tests (Debian's package)
	@if [ -n "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	else \
	  echo "The browser tests need Chromium. Install it (Debian/Ubuntu: sudo apt-get install chromium)"; \
	  echo "or point CHROMIUM=/path/to/chromium at one, then run 'make test' again."; \
	  exit 1; \
	fi

# --- translations (Babel): extract -> update -> compile ------------------------------------------
catalogs: extract update-catalogs compile-catalogs  ## Refresh the catalogs after changing UI strings

extract: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output --omit-header \
	  -o server/locale/messages.pot .

update-catalogs: $(VENV)/.installed
	$(BIN)/pybabel update -i server/locale/messages.pot -d server/locale --no-fuzzy-matching --ignore-obsolete \
	  --omit-header

compile-catalogs: $(MO_FILES)

server/locale/%/LC_MESSAGES/messages.mo: server/locale/%/LC_MESSAGES/messages.po $(VENV)/.installed
	$(BIN)/pybabel compile --statistics -i $< -o $@ -l $*

clean:
	rm -rf $(VENV) var tests/browser/node_modules $(MO_FILES)
