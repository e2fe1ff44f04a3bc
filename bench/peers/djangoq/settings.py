"""Django-Q2 on the ORM broker.

Defaults: Django's CONN_MAX_AGE=0 and Django-Q2's own defaults. The broker
calls close_old_connections() before each enqueue and dequeue, so with
CONN_MAX_AGE=0 every call opens a new connection; that is what a user gets.
Tuned (BENCH_DJANGOQ_TUNED=1): persistent connections, 50 tasks per dequeue,
a deeper internal queue and no pruning of saved results after each task.
"""

import os

from bench.peers.base_settings import database

TUNED = os.environ.get("BENCH_DJANGOQ_TUNED") == "1"
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))

SECRET_KEY = "dbqueue-bench-not-secret"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_q"]
DATABASES = {"default": database(conn_max_age=None if TUNED else 0)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
Q_CLUSTER = {"name": "bench", "orm": "default", "workers": WORKERS}
if TUNED:
    Q_CLUSTER |= {
        "bulk": 50,  # tasks per dequeue (default 1)
        "queue_limit": 100,  # tasks the pusher keeps ahead (default workers**2)
        "save_limit": 0,  # keep every result: no count + delete after each task
    }
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django-q": {"level": "WARNING"}},
}
