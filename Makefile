# Everything runs from .venv. Without DATABASE_URL, a private PostgreSQL cluster under
# .pgdata/ (socket in /tmp) is started for run/migrate/admin/psql/report/diagram.
# `make cluster` runs a scaled-out topology under .cluster/ instead; `make stop` stops both.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ADMIN_USERNAME ?= admin
ADMIN_EMAIL ?= admin@example.com
export HOST ?= 127.0.0.1
export PORT ?= 8000
REPORT_DIR ?= report/
BACKUP_DIR ?= backups/
SCALE ?= 1

ifdef DATABASE_URL
DB :=
else
DB := db-start
endif

.PHONY: run cluster test migrate rollback admin psql backup restore restore-file report diagram insomnia bench loadtest db-start stop clean

run: $(DB) migrate
	@$(PY) -m api create-admin --if-empty --username $(ADMIN_USERNAME) --email $(ADMIN_EMAIL)
	@# The webhook delivery worker runs beside gunicorn and stops with it.
	export DATABASE_URL="$$($(PY) -m api db-url)"; \
	$(PY) -m api deliver & deliver=$$!; \
	trap 'kill $$deliver 2>/dev/null; wait $$deliver' EXIT; \
	$(VENV)/bin/gunicorn -c gunicorn.conf.py api.asgi:app

cluster: $(VENV)/.installed
	ADMIN_USERNAME=$(ADMIN_USERNAME) ADMIN_EMAIL=$(ADMIN_EMAIL) $(PY) -m api cluster start

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

migrate: $(VENV)/.installed $(DB)
	$(PY) -m api migrate

rollback: $(VENV)/.installed $(DB)
	$(PY) -m api rollback

admin: $(VENV)/.installed $(DB) migrate
	$(PY) -m api create-admin --username $(ADMIN_USERNAME) --email $(ADMIN_EMAIL)

psql: $(VENV)/.installed $(DB)
	psql "$$($(PY) -m api db-url)"

backup: $(VENV)/.installed $(DB)
	$(PY) -m api backup --dir $(BACKUP_DIR)

restore: restore-file $(VENV)/.installed $(DB)
	$(PY) -m api restore "$(FILE)"

restore-file:
	@test -n "$(FILE)" || { echo "usage: make restore FILE=backups/incidents-<time>.dump (into an empty database)" >&2; exit 2; }

report: $(DB) migrate
	$(PY) -m api report --out $(REPORT_DIR)

diagram: $(DB) migrate
	$(PY) -m api diagram

insomnia: $(VENV)/.installed
	$(PY) -m api insomnia

bench: $(DB) migrate
	SCALE=$(SCALE) $(PY) -m bench.seed
	$(PY) -m bench.explain
	$(PY) -m bench.stats_filters

loadtest: $(DB) migrate
	@command -v wrk >/dev/null || { echo "wrk is missing: sudo apt-get install wrk" >&2; exit 1; }
	$(PY) -m bench.load

db-start: $(VENV)/.installed
	@$(PY) -m api db-start

stop: $(VENV)/.installed
	$(PY) -m api cluster stop
	$(PY) -m api db-stop

clean: stop
	rm -rf .pgdata .cluster $(VENV)

$(VENV)/.installed: requirements.txt requirements-assets.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps -r requirements-assets.txt
	touch $@
