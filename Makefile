# Two commands matter: `make dev` runs the whole stack, `make test` proves it.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint bench bench-lifecycle chaos clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

dev: $(STAMP)
	$(BIN)/tandem dev $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q $(ARGS)

# Tandem beside bare Temporal (issue 12), ~40 minutes on 2 cores; ARGS=--quick: a smoke run.
# More: make bench ARGS="--reps 5 --json bench.json --profile" (see --help).
bench: $(STAMP)
	$(BIN)/python -m tests.bench $(ARGS)

# The time-skipping part alone: history per tandem-year, the 13-year lifecycle.
bench-lifecycle: $(STAMP)
	$(BIN)/python -m tests.bench_lifecycle $(ARGS)

# The long chaos run (>= 100 tandems, every fault, at most 15 minutes); ARGS=--short for the
# test's form, e.g. make chaos ARGS="--tandems 150 --seed 7".
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos $(ARGS)

clean:
	rm -rf $(VENV) .tandem .mypy_cache .pytest_cache .ruff_cache
