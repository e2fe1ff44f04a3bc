"""Settings for dbqueue's own tests.

The database comes from DBQUEUE_TEST_DATABASE_URL (a dj-database-url URL such
as postgres://postgres@127.0.0.1:5432/test or mysql://root@127.0.0.1:3306/test);
without it, an SQLite file under tests/.db/. Process tests start qcluster in a
subprocess with DBQUEUE_TEST_DATABASE_NAME set to the test database that
pytest-django created, so parent and child share it.
"""

import importlib.util
import json
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent
SQLITE_DIR = BASE_DIR / ".db"
SQLITE_DIR.mkdir(exist_ok=True)

SECRET_KEY = "dbqueue-tests-not-secret"  # noqa: S105
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "dbqueue",
    "tests.testapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

_url = os.environ.get("DBQUEUE_TEST_DATABASE_URL")
if _url:
    DATABASES = {"default": dj_database_url.parse(_url, conn_max_age=0)}
    # One test database per pytest process, so runs started side by side
    # (two Python rows, two developers) never drop each other's tables.
    DATABASES["default"]["TEST"] = {"NAME": f"test_dbqueue_{os.getpid()}"}
else:
    # A file, not :memory:, so that worker subprocesses see the same database.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(SQLITE_DIR / "dbqueue.sqlite3"),
            "TEST": {"NAME": str(SQLITE_DIR / f"test_dbqueue_{os.getpid()}.sqlite3")},
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }
if os.environ.get("DBQUEUE_TEST_DATABASE_NAME"):
    DATABASES["default"]["NAME"] = os.environ["DBQUEUE_TEST_DATABASE_NAME"]
if DATABASES["default"]["ENGINE"].endswith("mysql"):
    DATABASES["default"].setdefault("OPTIONS", {})["charset"] = "utf8mb4"
# A second database on the same server, for the tests of a separate queue
# database (DBQUEUE_DATABASE="queue"); only tests that ask for it create it.
DATABASES["queue"] = {
    **DATABASES["default"],
    "TEST": {
        "NAME": str(SQLITE_DIR / f"test_dbqueue_queue_{os.getpid()}.sqlite3")
        if DATABASES["default"]["ENGINE"].endswith("sqlite3")
        else f"test_dbqueue_queue_{os.getpid()}"
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DBQUEUE_POLL_INTERVAL = 0.05
DBQUEUE_POLL_INTERVAL_MAX = 0.2
# Short enough that rescue after a crash shows up within a test's deadline.
DBQUEUE_HEARTBEAT_INTERVAL = float(os.environ.get("DBQUEUE_TEST_HEARTBEAT", "0.5"))
DBQUEUE_LEASE = float(os.environ.get("DBQUEUE_TEST_LEASE", "3"))
DBQUEUE_RETRY_BACKOFF = 0.01
DBQUEUE_SHUTDOWN_GRACE = 10

if os.environ.get("DBQUEUE_TEST_BAD_SETTING"):
    DBQUEUE_BATCH_SIZE = 0

# Process tests configure their qcluster subprocess with
# DBQUEUE_TEST_SET_<NAME>=<JSON value>, which sets DBQUEUE_<NAME> here.
for _name, _value in os.environ.items():
    if _name.startswith("DBQUEUE_TEST_SET_"):
        globals()["DBQUEUE_" + _name.removeprefix("DBQUEUE_TEST_SET_")] = json.loads(
            _value
        )

# Django's Tasks framework: django.tasks on Django 6, the django-tasks backport
# (installed by the dev group on Python < 3.12, the Django 5.2 row) on 5.2.
# The backport's app connects its logging receivers and system checks.
if importlib.util.find_spec("django.tasks") is None and importlib.util.find_spec(
    "django_tasks"
):
    INSTALLED_APPS.append("django_tasks")
TASKS = {
    "default": {
        "BACKEND": "dbqueue.backends.DatabaseBackend",
        "QUEUES": ["default"],
    }
}
