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
    from dbqueue.bulk import enqueue_many
    from dbqueue.chains import Chain, async_chain
    from dbqueue.exceptions import (
        AlreadyReplayed,
        DbqueueError,
        DuplicateTask,
        PayloadError,
        PayloadTooLarge,
        SerializationError,
        TaskNotFound,
    )
    from dbqueue.groups import (
        async_iter,
        cancel_group,
        count_group,
        delete_group,
        fetch_group,
        result_group,
    )
    from dbqueue.registry import TaskFunction, task
    from dbqueue.replays import replay, replay_many
    from dbqueue.retries import Retry
    from dbqueue.schedules import schedule
    from dbqueue.task_logging import task_logger

__all__ = [
    "AlreadyReplayed",
    "Chain",
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
    "async_chain",
    "async_iter",
    "async_task",
    "cancel",
    "cancel_group",
    "count_group",
    "delete_group",
    "enqueue",
    "enqueue_many",
    "fetch",
    "fetch_group",
    "replay",
    "replay_many",
    "result",
    "result_group",
    "schedule",
    "task",
    "task_logger",
]

_HOMES = {
    "async_chain": "dbqueue.chains",
    "Chain": "dbqueue.chains",
    "async_iter": "dbqueue.groups",
    "cancel_group": "dbqueue.groups",
    "count_group": "dbqueue.groups",
    "delete_group": "dbqueue.groups",
    "fetch_group": "dbqueue.groups",
    "result_group": "dbqueue.groups",
    "enqueue_many": "dbqueue.bulk",
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
    "replay": "dbqueue.replays",
    "replay_many": "dbqueue.replays",
    "AlreadyReplayed": "dbqueue.exceptions",
    "schedule": "dbqueue.schedules",
    "TaskFunction": "dbqueue.registry",
    "Retry": "dbqueue.retries",
    "DbqueueError": "dbqueue.exceptions",
    "DuplicateTask": "dbqueue.exceptions",
    "PayloadError": "dbqueue.exceptions",
    "PayloadTooLarge": "dbqueue.exceptions",
    "SerializationError": "dbqueue.exceptions",
    "TaskNotFound": "dbqueue.exceptions",
    "task_logger": "dbqueue.task_logging",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'dbqueue' has no attribute {name!r}")
