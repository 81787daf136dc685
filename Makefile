# Two commands a new user needs: `make run` (the daily job once, offline) and `make test`.
# Each creates .venv on first use; later calls reuse it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run run-many test lint format bench clean

$(BIN)/nvda-forecast: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

## The daily job once, offline: SQLite, bundled sample data, no server.
run: $(BIN)/nvda-forecast
	$(BIN)/nvda-forecast run --source sample

## Many tickers in one run, offline: NVDA and the three bundled peers (docs/fleet.md).
run-many: $(BIN)/nvda-forecast
	$(BIN)/nvda-forecast run --source sample --tickers NVDA,AVGO,QCOM,TXN

## Lint and the whole test suite (SQLite and the local PostgreSQL).
test: $(BIN)/nvda-forecast
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(BIN)/nvda-forecast
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/nvda-forecast
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Benchmarks print numbers; they are not tests (minutes, not seconds).
bench: $(BIN)/nvda-forecast
	$(BIN)/python -m benchmarks.forecast_quality
	$(BIN)/python benchmarks/db_queries.py
	$(BIN)/python benchmarks/daily_run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
