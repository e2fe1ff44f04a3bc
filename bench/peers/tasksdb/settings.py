"""django-tasks-db with persistent connections; its worker is `manage.py db_worker`.

With CONN_MAX_AGE=0 its worker would reconnect on every loop (it calls
close_old_connections()); persistent connections are how it is meant to run.
"""

from bench.peers.base_settings import database

SECRET_KEY = "dbqueue-bench-not-secret"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_tasks",
    "django_tasks_db",
]
DATABASES = {"default": database(conn_max_age=None)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {
        "django_tasks": {"level": "WARNING"},
        "django_tasks_db": {"level": "WARNING"},
        "django.tasks": {"level": "WARNING"},
    },
}
