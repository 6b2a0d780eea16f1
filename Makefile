# Every target sets up .venv from requirements.txt first, so each works on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: setup demo test test-fast lint typecheck format bench plan

AZURITE := tools/azurite/node_modules/.bin/azurite-blob

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	# --retries 1: requirements.txt names the PyTorch CPU index as an extra index; where that
	# index cannot be reached, pip's default 5 retries with back-off cost ~8 s per package
	$(PY) -m pip install --retries 1 -r requirements.txt
	# this project, editable: `fl-sandbox` and `python -m fl_jobs` then work from any folder
	$(PY) -m pip install --no-deps -e .
	touch $(STAMP)

# Azurite, Microsoft's Azure Storage emulator, pinned: the storage tests run against it.
$(AZURITE): tools/azurite/package.json tools/azurite/package-lock.json
	npm ci --prefix tools/azurite --no-audit --no-fund --loglevel=error
	touch $(AZURITE)

setup: $(STAMP) $(AZURITE)

## The main job: a local federation of 5 non-IID silos on real data (sklearn digits), no cloud.
demo: $(STAMP)
	$(PY) -m fl_jobs run --example digits --silos 5 --rounds 20 --partition dirichlet:0.5 --output-dir runs/demo --overwrite

## Lint, format, types and workflow checks, then the whole test suite (offline; sockets to
## anything but loopback are blocked). Each check fails the target at its first error.
## Tests run in parallel, one pytest worker per core up to four (pytest-xdist): every test
## keeps its own folders, silo stores, MLflow store and Azurite ports, so workers share nothing.
PYTEST_WORKERS ?= -n auto --maxprocesses 4

test: lint typecheck $(AZURITE)
	$(VENV)/bin/actionlint .github/workflows/*.yml
	$(PY) -m pytest $(PYTEST_WORKERS)

test-fast: $(STAMP) $(AZURITE)
	$(PY) -m pytest $(PYTEST_WORKERS) -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## mypy over every package ([tool.mypy] in pyproject.toml), at zero errors.
typecheck: $(STAMP)
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## What a blueprint would deploy, evaluated offline under Pulumi mocks.
plan: $(STAMP)
	$(PY) -m blueprints plan --config stacks/Pulumi.eyes-off.yaml

bench: $(STAMP)
	$(PY) -m benchmarks.run_quick
