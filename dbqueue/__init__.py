"""dbqueue: a task queue whose broker is the project's own database.

The public API is exactly ``__all__``. The names are loaded on first use, so
``import dbqueue`` is safe while Django is still loading apps.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dbqueue.api import (
        aasync_task,
        aenqueue,
        afetch,
        aresult,
        async_task,
        cancel,
        enqueue,
        fetch,
        result,
    )
    from dbqueue.exceptions import (
        DbqueueError,
        DuplicateTask,
        PayloadError,
        PayloadTooLarge,
        SerializationError,
        TaskNotFound,
    )
    from dbqueue.registry import TaskFunction, task
    from dbqueue.retries import Retry
    from dbqueue.schedules import schedule

__all__ = [
    "DbqueueError",
    "DuplicateTask",
    "PayloadError",
    "PayloadTooLarge",
    "Retry",
    "SerializationError",
    "TaskFunction",
    "TaskNotFound",
    "aasync_task",
    "aenqueue",
    "afetch",
    "aresult",
    "async_task",
    "cancel",
    "enqueue",
    "fetch",
    "result",
    "schedule",
    "task",
]

_HOMES = {
    "async_task": "dbqueue.api",
    "aasync_task": "dbqueue.api",
    "aenqueue": "dbqueue.api",
    "afetch": "dbqueue.api",
    "aresult": "dbqueue.api",
    "cancel": "dbqueue.api",
    "enqueue": "dbqueue.api",
    "fetch": "dbqueue.api",
    "result": "dbqueue.api",
    "task": "dbqueue.registry",
    "schedule": "dbqueue.schedules",
    "TaskFunction": "dbqueue.registry",
    "Retry": "dbqueue.retries",
    "DbqueueError": "dbqueue.exceptions",
    "DuplicateTask": "dbqueue.exceptions",
    "PayloadError": "dbqueue.exceptions",
    "PayloadTooLarge": "dbqueue.exceptions",
    "SerializationError": "dbqueue.exceptions",
    "TaskNotFound": "dbqueue.exceptions",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'dbqueue' has no attribute {name!r}")
