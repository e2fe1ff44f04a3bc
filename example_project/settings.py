"""Settings for dbqueue's example project: one SQLite file, two workers, emails on disk.

Everything the demo writes (the database, the sent emails, the cluster's log)
lives under ``example_project/var/``, which git ignores, so a fresh checkout
runs the demo with nothing to set up.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-dbqueue-example-project-dev-only"
)
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "dbqueue",
    "example_project.accounts",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # A file, not :memory:, because the workers are separate processes.
        "NAME": VAR_DIR / "db.sqlite3",
        # IMMEDIATE makes every transaction take SQLite's write lock up front,
        # so a web request and a claiming worker queue up for it (for up to
        # `timeout` seconds) instead of failing with "database is locked".
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"

# Each message becomes a file, so the demo can count what was really sent.
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = VAR_DIR / "sent_emails"
DEFAULT_FROM_EMAIL = "welcome@example.com"

DBQUEUE_WORKERS = 2
DBQUEUE_POLL_INTERVAL = 0.2  # seconds; short, so the demo does not wait on idle workers
