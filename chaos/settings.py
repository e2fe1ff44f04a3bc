"""Settings for the chaos runner and the qcluster processes it starts.

The database is DBQUEUE_CHAOS_DATABASE_URL with its name replaced by
DBQUEUE_CHAOS_DATABASE_NAME (the throwaway database the runner created), so
the runner and its clusters share it. Leases and heartbeats are short so that
a killed cluster's tasks are rescued within seconds, and retries are quick so
that the failing tasks of the workload reach the dead-letter queue in a run.
"""

import os

import dj_database_url

SECRET_KEY = "dbqueue-chaos-not-secret"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "dbqueue",
    "chaos",
]
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get(
            "DBQUEUE_CHAOS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
        ),
        conn_max_age=0,
    )
}
if os.environ.get("DBQUEUE_CHAOS_DATABASE_NAME"):
    DATABASES["default"]["NAME"] = os.environ["DBQUEUE_CHAOS_DATABASE_NAME"]
if DATABASES["default"]["ENGINE"].endswith("mysql"):
    DATABASES["default"].setdefault("OPTIONS", {})["charset"] = "utf8mb4"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DBQUEUE_POLL_INTERVAL = 0.05
DBQUEUE_POLL_INTERVAL_MAX = 0.5
DBQUEUE_HEARTBEAT_INTERVAL = 1.0
# Longer than any server restart the runner causes (a few seconds), so a
# cluster that cannot renew its leases during one does not lose them.
DBQUEUE_LEASE = 8.0
DBQUEUE_RETRY_BACKOFF = 0.2
DBQUEUE_RETRY_BACKOFF_MAX = 2.0
DBQUEUE_SHUTDOWN_GRACE = 10.0
DBQUEUE_TIMEOUT_KILL_AFTER = 1.0
# A worker is replaced past this; the workload's "hog" tasks go beyond it.
DBQUEUE_MAX_MEMORY_PER_CHILD = int(os.environ.get("DBQUEUE_CHAOS_MEMORY_MIB", "200"))
# The runner counts finished rows; none may be pruned during a run.
DBQUEUE_PRUNE_INTERVAL = None
