# petrova: `make snapshot` and `make test` are the two commands of the README.
# Everything installs into .venv from the package registry; nothing global is touched.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install snapshot test lint format artefacts check-artefacts clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## The main job on the shipped registry: writes fleet.json and says where.
snapshot: $(STAMP)
	$(BIN)/petrova snapshot -o fleet.json
	@echo "wrote $(CURDIR)/fleet.json"

## Lint, types, generated artefacts up to date, then the whole test suite.
test: lint check-artefacts
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check petrova tests
	$(BIN)/ruff format --check petrova tests
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix petrova tests
	$(BIN)/ruff format petrova tests

## Regenerate contracts/*.schema.json and contracts/fixtures/*.json from the code.
artefacts: $(STAMP)
	$(BIN)/petrova contracts generate

check-artefacts: $(STAMP)
	$(BIN)/petrova contracts generate --check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache fleet.json fleet.html
