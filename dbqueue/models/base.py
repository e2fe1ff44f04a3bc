"""Where the queue tables live."""

from __future__ import annotations

from dbqueue.conf import settings


def queue_db() -> str:
    """Return the database alias that holds the queue tables."""
    return str(settings.DATABASE)
