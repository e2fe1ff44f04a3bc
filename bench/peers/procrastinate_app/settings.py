"""Procrastinate's Django integration at its defaults; workers: `manage.py procrastinate worker`."""

from bench.peers.base_settings import database

SECRET_KEY = "dbqueue-bench-not-secret"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "procrastinate.contrib.django",
    "bench.peers.procrastinate_app",
]
DATABASES = {"default": database(conn_max_age=0)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"procrastinate": {"level": "WARNING"}},
}
