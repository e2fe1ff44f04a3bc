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

.PHONY: demo test test-long lint venv clean bench-wakeup

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
# three clusters sharing an every-second schedule for two minutes.
test-long: $(VENV)/.installed
	DBQUEUE_TEST_SCHEDULE_SECONDS=120 $(BIN)/pytest tests/process/test_scheduler_processes.py -k qclusters $(PYTEST_ARGS)

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

venv: $(VENV)/.installed

# Reinstall when the dependencies or the requested Django change.
$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade "pip>=25.1"
	$(BIN)/python -m pip install -q -e ".[postgres]" --group dev "$(DJANGO)"
	$(BIN)/python -c "import django, sys; print('installed: Python', sys.version.split()[0], '+ Django', django.get_version())"
	touch $@

clean:
	rm -rf .venv .venv-* .pytest_cache .mypy_cache .ruff_cache tests/.db example_project/var
