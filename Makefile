# Conveniences over scripts/: `make up`, `make test`, `make bench`, `make lint`.
VENV ?= .venv

.PHONY: up down test lint format bench

up:
	./scripts/up

down:
	./scripts/down

test:
	./scripts/test

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format:
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Benchmarks print one JSON document; they are measurements, not tests.
bench:
	./scripts/bench
