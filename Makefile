# bids-w2v: `make demo` (install + end-to-end demo), `make test` (install + every test, as CI)
# and `make test-fast` (the development loop: every test but the `slow` ones).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export NIPYPE_NO_ET := 1
export HF_HUB_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: demo test test-fast install install-test lint clean container boutiques

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[test]"

demo: install
	$(BIN)/python -m bids_w2v.demo demo_out

test: install-test
	$(BIN)/ruff check bids_w2v tests benchmarks
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q --durations=15 tests

test-fast: install-test
	$(BIN)/ruff check bids_w2v tests benchmarks
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -m "not slow" tests

# Build the image with podman (no Docker engine) and run the demo inside it; needs root.
container: $(BIN)/python
	bash .ci/container

# Regenerate the Boutiques descriptor from the command-line parser.
boutiques: install
	$(BIN)/python -m bids_w2v.cli.boutiques > boutiques.json

clean:
	rm -rf demo_out work .pytest_cache
