# The two commands a newcomer needs: `make run` (the product) and `make test` (the tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint unit integration kafka-jars bench bench-crossing clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

kafka-jars: $(STAMP)
	$(BIN)/python -c "from config.settings import get_settings; from deploy.local_kafka import fetch_jars; fetch_jars(get_settings().kafka.local_jars_dir)"

## run: the embedded default — local Kafka, chDB, consumer + API, a seeded reference workspace
run: $(STAMP) kafka-jars
	$(BIN)/auditlog up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy .

unit: $(STAMP)
	$(BIN)/pytest -m "not kafka and not clickhouse" -q

integration: $(STAMP) kafka-jars
	$(BIN)/pytest -m "kafka or clickhouse" -q

## test: lint, type-check, unit tests, then integration tests on a real broker and the real engine
test: lint unit integration

## bench: 10M events, ours next to PostgreSQL (docs/performance.md); e.g. make bench BENCH_ARGS="--events 100000000"
bench: $(STAMP) kafka-jars
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

## bench-crossing: both engines under the same memory limit (cgroups, root), e.g. BENCH_ARGS="--events 20000000 --memory-limit 1G"
bench-crossing: $(STAMP)
	$(BIN)/python -m benchmarks.crossing $(BENCH_ARGS)

clean:
	-$(BIN)/auditlog kafka stop
	rm -rf var
