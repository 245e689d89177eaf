# bids-w2v: `make demo` (install + end-to-end demo) and `make test` (install + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export NIPYPE_NO_ET := 1
export HF_HUB_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: demo test install install-test lint clean container boutiques

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
	$(BIN)/python -m pytest -q tests

# Build the image with podman (no Docker engine) and run the demo inside it; needs root.
container: $(BIN)/python
	bash .ci/container

# Regenerate the Boutiques descriptor from the command-line parser.
boutiques: install
	$(BIN)/python -m bids_w2v.cli.boutiques > boutiques.json

clean:
	rm -rf demo_out work .pytest_cache
