"""Settings for dbqueue's benchmarks: a throwaway database named by the runner."""

import os

import dj_database_url

SECRET_KEY = "dbqueue-bench-not-secret"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "dbqueue",
    "bench",
]
DATABASES = {
    "default": dj_database_url.parse(
        os.environ["DBQUEUE_BENCH_DATABASE_URL"], conn_max_age=0
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DBQUEUE_POLL_INTERVAL = float(os.environ.get("DBQUEUE_BENCH_POLL_INTERVAL", "0.2"))
DBQUEUE_POLL_INTERVAL_MAX = float(
    os.environ.get("DBQUEUE_BENCH_POLL_INTERVAL_MAX", "2.0")
)
