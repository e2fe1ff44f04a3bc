"""Settings for dbqueue's benchmarks: a throwaway database named by the runner.

dbqueue runs at its own defaults, as a user gets it; the DBQUEUE_BENCH_*
variables let an experiment change one setting without editing this file.
"""

import os

from bench.peers.base_settings import database

SECRET_KEY = "dbqueue-bench-not-secret"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "dbqueue",
    "bench",
]
DATABASES = {"default": database(conn_max_age=0)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DBQUEUE_POLL_INTERVAL = float(os.environ.get("DBQUEUE_BENCH_POLL_INTERVAL", "0.2"))
DBQUEUE_POLL_INTERVAL_MAX = float(
    os.environ.get("DBQUEUE_BENCH_POLL_INTERVAL_MAX", "2.0")
)
if os.environ.get("DBQUEUE_BENCH_BATCH_SIZE"):
    DBQUEUE_BATCH_SIZE = int(os.environ["DBQUEUE_BENCH_BATCH_SIZE"])
if os.environ.get("DBQUEUE_BENCH_PREPARE_THRESHOLD"):
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = int(
        os.environ["DBQUEUE_BENCH_PREPARE_THRESHOLD"]
    )
if os.environ.get("DBQUEUE_BENCH_CONN_MAX_AGE"):
    DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ["DBQUEUE_BENCH_CONN_MAX_AGE"])
if os.environ.get("DBQUEUE_BENCH_SQL_LOG"):
    # The profile's statement count: Django logs each query only with DEBUG on.
    DEBUG = True
    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(process)d %(message)s"}},
        "handlers": {
            "sql": {
                "class": "logging.FileHandler",
                "filename": os.environ["DBQUEUE_BENCH_SQL_LOG"],
                "formatter": "plain",
            }
        },
        "loggers": {
            "django.db.backends": {
                "level": "DEBUG",
                "handlers": ["sql"],
                "propagate": False,
            }
        },
    }
