# Two commands for a newcomer: `make run` and `make test`. Only python3 (>= 3.11) and make are needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

# A first look: DEBUG with a development secret, unsigned batches (open mode) and public reads.
# Each can be overridden from the environment, e.g. `TWIN_AGENT_AUTH=signed make run`.
RUN_ENV := DEBUG=$${DEBUG:-true} TWIN_AGENT_AUTH=$${TWIN_AGENT_AUTH:-open} TWIN_PUBLIC_READ=$${TWIN_PUBLIC_READ:-true}
TEST_ENV := SECRET_KEY=$${SECRET_KEY:-insecure-test-only-key}

.PHONY: install run demo migrate superuser manage test lint format clean bench soak

$(STAMP): requirements.txt requirements-dev.txt agent/pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	mkdir -p var
	$(RUN_ENV) $(BIN)/python manage.py migrate --noinput

run: migrate
	$(RUN_ENV) $(BIN)/python -m twinsite.serve -b $(HOST) -p $(PORT)

# A living twin at once: the server (signed agents, public reads, its own SQLite file) and a
# simulated fleet beside it, enrolled through the real endpoint. Ctrl-C stops both.
DEMO_HOSTS ?= 300
DEMO_RACKS ?= 8
DEMO_ENV := DEBUG=$${DEBUG:-true} TWIN_AGENT_AUTH=signed TWIN_PUBLIC_READ=true \
	DATABASE_URL=$${DATABASE_URL:-sqlite:///$(CURDIR)/var/demo.sqlite3}

demo: $(STAMP)
	mkdir -p var
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	@echo "The twin: http://$(HOST):$(PORT)/api/twin/state (server log: var/demo-server.log). Ctrl-C stops it."
	$(DEMO_ENV) $(BIN)/python -m twinsite.serve -b $(HOST) -p $(PORT) >var/demo-server.log 2>&1 & server=$$!; \
	trap 'kill $$server 2>/dev/null' EXIT INT TERM; \
	$(DEMO_ENV) $(BIN)/python manage.py simulate_fleet --server http://$(HOST):$(PORT) \
		--hosts $(DEMO_HOSTS) --racks $(DEMO_RACKS) --interval 10 --state-dir var/demo-simulator

superuser: migrate
	$(RUN_ENV) $(BIN)/python manage.py createsuperuser

manage: migrate
	$(RUN_ENV) $(BIN)/python manage.py $(ARGS)

test: $(STAMP)
	mkdir -p var
	$(TEST_ENV) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

# The benchmark needs PostgreSQL (BENCH_DATABASE_URL); it writes bench/results.md.
bench: $(STAMP)
	mkdir -p var
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# A bounded soak test (180 s, loopback only): memory and queues under sustained load.
soak: $(STAMP)
	mkdir -p var
	$(BIN)/python -m bench.soak $(SOAK_ARGS)
