# dbqueue's two commands: `make demo` and `make test`. Each builds the virtual
# environment it needs, so a fresh machine needs only Python 3.11+ and make.
#
#   make test                     lint, type-check, tests on SQLite
#   DBQUEUE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
#   DBQUEUE_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/test make test
#                                 ...and on PostgreSQL and MariaDB/MySQL too
#   make test PYTHON=python3.13 DJANGO='Django>=6.0,<6.2' VENV=.venv-dj6
#                                 another Python x Django row

PYTHON ?= python3
VENV ?= .venv
DJANGO ?= Django>=5.2,<6.2
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test test-long lint docs venv clean bench-wakeup bench-admin bench-metrics bench-cpu bench-enqueue bench-memory chaos longlife bench bench-short

demo: $(VENV)/.installed
	$(BIN)/python -m example_project.demo

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)
	@if [ -n "$$DBQUEUE_TEST_POSTGRES_URL" ]; then \
		echo "== PostgreSQL: $$DBQUEUE_TEST_POSTGRES_URL"; \
		DBQUEUE_TEST_DATABASE_URL="$$DBQUEUE_TEST_POSTGRES_URL" $(BIN)/pytest $(PYTEST_ARGS) || exit 1; \
	fi
	@if [ -n "$$DBQUEUE_TEST_MYSQL_URL" ]; then \
		echo "== MySQL/MariaDB: $$DBQUEUE_TEST_MYSQL_URL"; \
		$(BIN)/python -c "import MySQLdb" 2>/dev/null || $(BIN)/python -m pip install -q "mysqlclient>=2.2" || exit 1; \
		DBQUEUE_TEST_DATABASE_URL="$$DBQUEUE_TEST_MYSQL_URL" $(BIN)/pytest $(PYTEST_ARGS) || exit 1; \
	fi

# The long forms of the process scenarios that `make test` runs short:
# three clusters sharing an every-second schedule for two minutes (and again
# with one of them SIGKILLed and restarted over and over).
test-long: $(VENV)/.installed
	DBQUEUE_TEST_SCHEDULE_SECONDS=120 $(BIN)/pytest tests/process/test_scheduler_processes.py -k qclusters $(PYTEST_ARGS)
	DBQUEUE_TEST_PRUNE_ROWS=1000000 $(BIN)/pytest tests/integration/test_retention.py -k large_table $(PYTEST_ARGS)

# The chaos run (docs/reliability.md): 40,000 tasks through three qclusters on
# the local PostgreSQL, then MariaDB, while workers and whole clusters are
# SIGKILLed, deploys roll, connections are killed and the server restarts.
# Several minutes per database; prints one table each, and fails on a lost
# task, a stuck row or a duplicate no kill explains. `make test` runs the
# short form (tests/process/test_chaos.py). URLs as for `make test`.
chaos: $(VENV)/.installed
	$(BIN)/python -c "import MySQLdb" 2>/dev/null || $(BIN)/python -m pip install -q "mysqlclient>=2.2"
	$(BIN)/python -m chaos

# One worker through 100,000 small tasks on each database: resident memory
# and open connections sampled over the run (about two minutes per database
# here; each task commits a ledger row, so the disk sets the pace).
longlife: $(VENV)/.installed
	$(BIN)/python -c "import MySQLdb" 2>/dev/null || $(BIN)/python -m pip install -q "mysqlclient>=2.2"
	$(BIN)/python -m chaos longlife

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	DJANGO_SETTINGS_MODULE=tests.settings $(BIN)/python -m django check --fail-level WARNING

# Enqueue-to-start latency and an idle cluster's database load, on the local
# PostgreSQL and MariaDB (URLs as for `make test`; defaults to the local servers).
bench-wakeup: $(VENV)/.installed
	$(BIN)/python -c "import MySQLdb" 2>/dev/null || $(BIN)/python -m pip install -q "mysqlclient>=2.2"
	$(BIN)/python -m bench.wakeup postgresql
	$(BIN)/python -m bench.wakeup mysql

# Who pays for a drain: each qcluster process's CPU per task and the rest of
# the machine's (the database server), then the worker's three busiest steps
# timed in-process; on the local PostgreSQL, in throwaway databases.
BENCH_CPU_ARGS ?=
bench-cpu: $(VENV)/.installed
	$(BIN)/python -m bench.cpu_split $(BENCH_CPU_ARGS)
	$(BIN)/python -m bench.hot_path

# One enqueue's price step by step, from the benchmark's floor (a bare
# psycopg INSERT) to async_task(), on the local PostgreSQL (bench/enqueue_cost.py).
bench-enqueue: $(VENV)/.installed
	$(BIN)/python -m bench.enqueue_cost $(BENCH_ENQUEUE_ARGS)

# The cluster's memory process by process after a drain, with and without the
# scheduler, and what a forked child keeps (bench/memory_cost.py).
bench-memory: $(VENV)/.installed
	$(BIN)/python -m bench.memory_cost $(BENCH_MEMORY_ARGS)

# The admin console's list pages, filters and dashboard on a PostgreSQL table of
# 1,000,000 tasks and 100,000 dead letters, in a throwaway database.
bench-admin: $(VENV)/.installed
	$(BIN)/python -m bench.admin_pages

# The documentation site, into docs/_build/html. -E rereads every page, so a
# warning is never hidden by a cached build; -W -n fail on any warning and on
# any reference (a page, a heading, a Python name) that does not resolve.
docs: $(VENV)/.docs-installed
	$(BIN)/sphinx-build -E -W -n --keep-going -q -b html docs docs/_build/html
	@echo "docs: built docs/_build/html/index.html"

$(VENV)/.docs-installed: $(VENV)/.installed
	$(BIN)/python -m pip install -q --disable-pip-version-check --group docs
	touch $@

# One Prometheus scrape's time on 1,000,000 task rows, on the local PostgreSQL
# (DBQUEUE_BENCH_POSTGRES_URL names another server); --queued 50 for a backlog.
bench-metrics: $(VENV)/.installed
	$(BIN)/python -m bench.metrics_scrape

# dbqueue beside Django-Q2, django-tasks-db, Procrastinate, pgqueuer and the raw
# psycopg floor, on the local PostgreSQL 15 (plus MariaDB and SQLite for dbqueue),
# in throwaway databases it creates and drops: about half an hour on 2 cores
# (one run; BENCH_ARGS='--runs 3 --history-rows 10000000' is the issue's form).
# bench-short is the CI form: dbqueue and the floor, a couple of minutes.
# Both print a table and write bench/results/latest*.json; see docs/performance.md.
#   make bench BENCH_ARGS='--only dbqueue,floor-50 --runs 1 --tasks 5000'
BENCH_VENV ?= .venv-bench
BENCH_ARGS ?=

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -m bench $(BENCH_ARGS)

bench-short: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -m bench --short $(BENCH_ARGS)

# The benchmark's own environment: the peers are installed here and nowhere else.
$(BENCH_VENV)/.installed: bench/requirements.txt pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --disable-pip-version-check --upgrade "pip>=25.1"
	$(BENCH_VENV)/bin/python -m pip install -q --disable-pip-version-check -r bench/requirements.txt -e ".[postgres,mysql]"
	touch $@

venv: $(VENV)/.installed

# Reinstall when the dependencies or the requested Django change.
$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade "pip>=25.1"
	$(BIN)/python -m pip install -q -e ".[postgres]" --group dev "$(DJANGO)"
	$(BIN)/python -c "import django, sys; print('installed: Python', sys.version.split()[0], '+ Django', django.get_version())"
	touch $@

clean:
	rm -rf .venv .venv-* .pytest_cache .mypy_cache .ruff_cache tests/.db example_project/var docs/_build
