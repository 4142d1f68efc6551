# The two set-up commands of the README. Each installs what it needs into ./.venv first (idempotent).
PY := .venv/bin/python

.PHONY: demo test test-all lint bootstrap

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	$(PY) run_demo.py $(ARGS)

test: bootstrap
	$(PY) -m pytest $(ARGS)

test-all: bootstrap
	$(PY) -m pytest -m "not gpu" $(ARGS)

lint: bootstrap
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
