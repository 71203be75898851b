# Two commands for a newcomer: `make run` and `make test`. Only python3 (>= 3.11) and make are needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: `make run` needs the runtime requirements only, `make test` the test tools too.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
HOST ?= 127.0.0.1
PORT ?= 8000

# A first look: DEBUG, unsigned batches (open mode) and public reads; the secret key is this
# installation's own (made in var/secret_key on first start) unless SECRET_KEY is set.
# Each can be overridden from the environment, e.g. `TWIN_AGENT_AUTH=signed make run`.
RUN_ENV := DEBUG=$${DEBUG:-true} TWIN_AGENT_AUTH=$${TWIN_AGENT_AUTH:-open} TWIN_PUBLIC_READ=$${TWIN_PUBLIC_READ:-true}

.PHONY: protos install run demo demo-superuser migrate superuser manage test lint format clean bench bench-history bench-scaling bench-exposition soak vendor

$(RUN_STAMP): requirements.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(RUN_STAMP)

$(TEST_STAMP): $(RUN_STAMP) requirements-dev.txt agent/pyproject.toml
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(TEST_STAMP)

# The reference agent (agent/), for `make demo`'s simulated fleet; `make test` has it too.
AGENT_STAMP := $(VENV)/.installed-agent
$(AGENT_STAMP): $(RUN_STAMP) agent/pyproject.toml
	$(BIN)/python -m pip install --quiet -e ./agent
	touch $(AGENT_STAMP)

install: $(TEST_STAMP)

migrate: $(RUN_STAMP)
	mkdir -p var
	$(RUN_ENV) $(BIN)/python manage.py migrate --noinput

run: migrate
	$(RUN_ENV) $(BIN)/python -m twinsite.serve -b $(HOST) -p $(PORT)

# A living twin at once: the server (signed agents, public reads, its own SQLite file) and a
# simulated fleet beside it, enrolled through the real endpoint, in a leaf-spine fabric. Ctrl-C stops both.
# Racks follow the fleet (40 hosts a rack) unless DEMO_RACKS is given; DEMO_INTERVAL=auto picks the
# shortest interval one server process carries for DEMO_HOSTS (bench/results.md), and the server's
# stale/offline limits follow it (three and twelve intervals, never below 30 s and 120 s).
DEMO_HOSTS ?= 300
DEMO_RACKS ?=
DEMO_INTERVAL ?= auto
DEMO_PLAN := import sys; from twin_agent.simulate import demo_plan; \
	print(*(f"{v:g}" for v in demo_plan(hosts=int(sys.argv[1]), interval=sys.argv[2])))
DEMO_ENV := DEBUG=$${DEBUG:-true} TWIN_AGENT_AUTH=signed TWIN_PUBLIC_READ=true \
	DATABASE_URL=$${DATABASE_URL:-sqlite:///$(CURDIR)/var/demo.sqlite3}

demo: $(AGENT_STAMP)
	mkdir -p var
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	@echo "The twin: http://$(HOST):$(PORT)/api/twin/state (server log: var/demo-server.log). Ctrl-C stops it."
	@echo "The demo has a database of its own: 'make demo-superuser' (in another terminal) makes its admin login."
	@plan=$$($(BIN)/python -c '$(DEMO_PLAN)' '$(DEMO_HOSTS)' '$(DEMO_INTERVAL)') || exit 1; set -- $$plan; \
	echo "$(DEMO_HOSTS) hosts, one sample every $$1 s each; hosts stale after $$2 s, offline after $$3 s."; \
	TWIN_STALE_AFTER_SECONDS=$${TWIN_STALE_AFTER_SECONDS:-$$2} TWIN_OFFLINE_AFTER_SECONDS=$${TWIN_OFFLINE_AFTER_SECONDS:-$$3} \
	$(DEMO_ENV) $(BIN)/python -m twinsite.serve -b $(HOST) -p $(PORT) >var/demo-server.log 2>&1 & server=$$!; \
	trap 'kill $$server 2>/dev/null' EXIT INT TERM; \
	$(DEMO_ENV) $(BIN)/python manage.py simulate_fleet --server http://$(HOST):$(PORT) \
		--hosts $(DEMO_HOSTS) $(if $(DEMO_RACKS),--racks $(DEMO_RACKS)) --interval $$1 --state-dir var/demo-simulator

# The demo's admin login: its database (var/demo.sqlite3) is not `make run`'s.
demo-superuser: $(RUN_STAMP)
	mkdir -p var
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEMO_ENV) $(BIN)/python manage.py createsuperuser $(ARGS)

superuser: migrate
	$(RUN_ENV) $(BIN)/python manage.py createsuperuser

manage: migrate
	$(RUN_ENV) $(BIN)/python manage.py $(ARGS)

test: $(TEST_STAMP)
	mkdir -p var
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

# The benchmark needs PostgreSQL (BENCH_DATABASE_URL); it writes bench/results.md.
bench: $(TEST_STAMP)
	mkdir -p var
	# Figure 7's delta subscribers are the official socket.io-client under Node (skipped without npm).
	if command -v npm >/dev/null; then cd bench/node && npm ci --ignore-scripts --no-audit --no-fund --silent; fi
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# The history's figures (series, the twin at a past time, pruning); writes bench/history-results.md.
bench-history: $(TEST_STAMP)
	mkdir -p var
	$(BIN)/python -m bench.history $(BENCH_ARGS)

# One daphne process against two behind the project's nginx (PostgreSQL, Redis, Debian's nginx);
# writes bench/scaling-results.md. The instrumentation's cost: bench/instruments-results.md.
bench-scaling: $(TEST_STAMP)
	mkdir -p var
	$(BIN)/python -m bench.scaling $(BENCH_ARGS)
	$(BIN)/python -m bench.instruments_cost

# GET /api/twin/metrics at 10,000 hosts beside the twin-state build, in process; writes bench/exposition-results.md.
bench-exposition: $(TEST_STAMP)
	mkdir -p var
	$(BIN)/python -m bench.exposition $(BENCH_ARGS)

# A bounded soak test (loopback only, stops by itself): 30 minutes of 800 signed hosts at a
# 10 s interval through the project's nginx and two daphne processes, 50 dashboards connected;
# bench/soak-results.md and bench/soak.png. For a quiet machine; SOAK_ARGS=--quick (2 minutes)
# to try it, e.g. SOAK_ARGS="--minutes 5 --hosts 1000". Needs nginx, PostgreSQL and Redis.
soak: $(TEST_STAMP)
	mkdir -p var
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

# Re-create the dashboard's committed browser libraries from the npm registry at the
# versions package-lock.json pins (needs npm; run and test never do).
vendor: $(RUN_STAMP)
	npm ci --ignore-scripts --no-audit --no-fund
	$(BIN)/python -m dashboard.vendoring

# Re-create collectors/prompb/prometheus_remote_pb2.py from its .proto (needs PyPI, not Node;
# run and test never do): protoc from grpcio-tools in a throwaway virtualenv.
protos:
	python3 -m venv var/protoc-venv
	var/protoc-venv/bin/python -m pip install --quiet grpcio-tools==1.85.4
	var/protoc-venv/bin/python -m grpc_tools.protoc -I collectors/prompb --python_out=collectors/prompb collectors/prompb/prometheus_remote.proto
