# Masivo Migration Console. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run reset test lint format bench install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Start the console: web server, Celery worker and Celery beat, all stopped by one Ctrl-C.
run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py compilemessages --ignore=.venv >/dev/null 2>&1 || true
	$(PY) manage.py console_admin $(ARGS)
	@echo "Console: http://$(HOST):$(PORT)/admin/  (Ctrl-C stops the web server, the worker and beat)"
	$(PY) manage.py console_run --host $(HOST) --port $(PORT)

## Start over: empty the database (batches, files, jobs, the sandbox's customers, users)
## and the local queue; the next `make run` creates the users again.
reset: $(STAMP)
	$(PY) manage.py flush --noinput
	rm -rf var/broker var/media var/cache var/celerybeat-schedule*

## Run the whole suite (DATABASE_URL and CELERY_BROKER_URL choose the services), or only
## T (a test file, folder or test id): then the test database is kept and reused between
## runs (pass --create-db in PYTEST_ARGS after a new migration).
test: $(STAMP)
ifdef T
	MIGRATION_TEST_DB_REUSE=1 $(VENV)/bin/pytest --reuse-db $(PYTEST_ARGS) $(T)
else
	$(VENV)/bin/pytest $(PYTEST_ARGS)
endif

## Benchmarks, not tests: PostgreSQL at DATABASE_URL (default below) and SQLite under
## var/bench, Redis database 9; prints the table and writes docs/BENCHMARKS.md.
bench: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/masivo_bench} \
		$(PY) -m tests.benchmarks $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var/test var/broker
