# Two commands on a fresh machine:
#   make demo   compress the example CNN on the built-in digits into ./squeezed/
#   make test   lint and run the test suite
# Each creates .venv/ (Python >= 3.10) with the package and its pinned ranges.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint format bench bench-quick models clean

$(STAMP): pyproject.toml setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,charts]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/keras-squeeze-compress

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The suite in PYTEST_WORKERS processes (pytest-xdist), a test file to a worker at a time
# (module fixtures are built once).
PYTEST_WORKERS ?= 2

test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/run.py

bench-quick: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/run.py --quick

models: $(STAMP)
	$(BIN)/python tflite_models/build.py

clean:
	rm -rf $(VENV) squeezed build dist *.egg-info .pytest_cache .ruff_cache
