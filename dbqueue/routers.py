"""A database router for keeping the queue tables in their own database.

dbqueue's own queries always name ``DBQUEUE_DATABASE``; the router is for
everything else that touches its models: ``migrate`` (the tables are created
only in that database), the admin, and a project's own queries on Task.
Add it to DATABASE_ROUTERS when DBQUEUE_DATABASE is not "default".
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from dbqueue.models.base import queue_db

APP_LABEL = "dbqueue"


class QueueRouter:
    """Route dbqueue's models to DBQUEUE_DATABASE and nothing else there."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        return queue_db() if model._meta.app_label == APP_LABEL else None

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        return queue_db() if model._meta.app_label == APP_LABEL else None

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        if app_label == APP_LABEL:
            return db == queue_db()
        return None
