# Beacons: `make run` (the product with demo data) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-fast mutate serve migrate demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet '.[test]'
	rm -rf build *.egg-info
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

# A random SECRET_KEY for development, written once (git-ignored; settings read it when
# SECRET_KEY is unset). Production sets SECRET_KEY: without either, DEBUG off refuses to start.
.secret-key:
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@

demo: .secret-key migrate
	$(BIN)/python manage.py beacons_demo --if-empty

run: demo
	mkdir -p staticfiles
	$(BIN)/python manage.py beacons_demo_login --host $(HOST) --port $(PORT)
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Production: compressed static files, migrations, then granian with one worker per CPU
# (beacon_site/serve.py; HOST, PORT, WEB_CONCURRENCY, WEB_THREADS from the environment).
serve: migrate
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python -m beacon_site.serve

# Throughput through a real server (needs wrk, PostgreSQL and Redis on this machine).
bench: install .secret-key
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.ingest_cost
	$(BIN)/python -m bench.drain

# The whole suite: parallel part first, then tests that stop services or need the machine alone.
test: install
	$(BIN)/python -m pytest -n 2 -m "not serial" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m serial $(PYTEST_ARGS); status=$$?; [ $$status -eq 0 ] || [ $$status -eq 5 ]

test-fast: install
	$(BIN)/python -m pytest -x -q -m "not serial and not browser" $(PYTEST_ARGS)

# Mutation testing of the core modules (tests/mutation/config.py); slow, not part of CI.
# One module: make mutate MUTATE_ARGS="--module beacons/counting/buckets.py"
mutate: install
	$(BIN)/python -m tests.mutation.mutate $(MUTATE_ARGS)

clean:
	rm -rf $(VENV) staticfiles build *.egg-info
