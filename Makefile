# Two commands for a newcomer: `make run` and `make test`. Only python3 (>= 3.11) and make are needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

# A first look: DEBUG, unsigned batches (open mode) and public reads; the secret key is this
# installation's own (made in var/secret_key on first start) unless SECRET_KEY is set.
# Each can be overridden from the environment, e.g. `TWIN_AGENT_AUTH=signed make run`.
RUN_ENV := DEBUG=$${DEBUG:-true} TWIN_AGENT_AUTH=$${TWIN_AGENT_AUTH:-open} TWIN_PUBLIC_READ=$${TWIN_PUBLIC_READ:-true}

.PHONY: install run migrate superuser manage test lint format clean bench soak

$(STAMP): requirements.txt requirements-dev.txt
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

superuser: migrate
	$(RUN_ENV) $(BIN)/python manage.py createsuperuser

manage: migrate
	$(RUN_ENV) $(BIN)/python manage.py $(ARGS)

test: $(STAMP)
	mkdir -p var
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
