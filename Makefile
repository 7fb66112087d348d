# petrova: `make snapshot` and `make test` are the two commands of the README.
# Everything installs into .venv from the package registry; nothing global is touched.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install snapshot test test-slow test-future test-past test-pythons browser node-deps faketime lint format artefacts check-artefacts bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## The main job on the shipped registry: writes fleet.json, and fleet.html beside it (the
## same snapshot as a page), and says where.
snapshot: $(STAMP)
	$(BIN)/petrova snapshot -o fleet.json
	$(BIN)/petrova render fleet.json -o fleet.html
	@echo "wrote $(CURDIR)/fleet.json"
	@echo "wrote $(CURDIR)/fleet.html (open it from disk: xdg-open fleet.html)"

## Lint, types, generated artefacts up to date, then the test suite (browser tests
## included; the slow fault-injection loops are `make test-slow`).
test: lint check-artefacts browser node-deps
	$(BIN)/python -m pytest -m 'not slow'

## The kill loops and the benchmark harness: long, so CI runs them as their own step.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

## The suite with the machine's clock a year and more ahead (libfaketime moves it for
## every subprocess too), and half a year behind the suite's own fixed date: the suite
## pins every clock petrova reads, so nothing in it may depend on the day it runs.
## Browser tests left out.
test-future: $(STAMP) faketime node-deps
	faketime -f '+400d' $(BIN)/python -m pytest -q -m 'not slow and not browser'

test-past: $(STAMP) faketime node-deps
	faketime '2026-06-01 00:00:00' $(BIN)/python -m pytest -q -m 'not slow and not browser'

## The fast suite (no browser, no slow loops) on every Python petrova supports that this
## machine has, each in its own venv (.venv-3.11, .venv-3.12, .venv-3.13); a missing one
## is skipped with a word. `make test-pythons PYTHONS="3.13"` runs one.
PYTHONS ?=
test-pythons: node-deps
	.ci/test-pythons $(PYTHONS)

## Debian's faketime for `make test-future` and `make test-past`, installed only when it is missing.
faketime:
	@command -v faketime >/dev/null 2>&1 || { \
	  echo "faketime not found: installing Debian's faketime"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y faketime; }

## Debian's chromium for tests/render/test_page_in_chromium.py, installed only when it is missing (needs
## root and apt, as CI has). PETROVA_SKIP_BROWSER=1 skips the browser tests instead.
browser:
	@if command -v chromium >/dev/null 2>&1 || [ -n "$$PETROVA_CHROMIUM" ] \
	    || [ "$${PETROVA_SKIP_BROWSER:-0}" != 0 ]; then :; else \
	  echo "chromium not found: installing Debian's chromium for the browser tests"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

## zod 4, TypeScript and Ajv for tests/render/test_zod_with_node.py (the dashboards' side), from the
## npm registry at the exact versions of tests/node/package-lock.json (`npm ci`), again only
## when the lock changed. Without node those tests skip and say so.
node-deps:
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  echo "node/npm not found: tests/render/test_zod_with_node.py (tsc, zod, Ajv) will be skipped"; \
	elif [ ! -f tests/node/node_modules/.package-lock.json ] \
	    || [ tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]; then \
	  cd tests/node && npm ci --no-audit --no-fund --loglevel=error; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check petrova tests benchmarks
	$(BIN)/ruff format --check petrova tests benchmarks
	$(BIN)/mypy
	$(BIN)/actionlint .github/workflows/*.yml

format: $(STAMP)
	$(BIN)/ruff check --fix petrova tests benchmarks
	$(BIN)/ruff format petrova tests benchmarks

## Regenerate contracts/*.schema.json, contracts/snapshot.zod.ts and contracts/fixtures/*.json
## from the code.
artefacts: $(STAMP)
	$(BIN)/petrova contracts generate

check-artefacts: $(STAMP)
	$(BIN)/petrova contracts generate --check

## Benchmarks: petrova against the straightforward way and the parse floor at 1,000 and
## 10,000 repos with mature ledgers, and 10,000 repos of a young fleet (see
## benchmarks/RESULTS.md). Prints a table; results also in benchmarks/out/.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --sizes 1000 10000 young-10000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache fleet.json fleet.html artifacts
