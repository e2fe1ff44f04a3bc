"""Django's Tasks framework, from Django 6.x or from the django-tasks backport.

Django 6.0 ships the framework as ``django.tasks``; on Django 5.2 the
``django-tasks`` package backports it as ``django_tasks``. The two agree on
behaviour but not on every name (``InvalidTask`` is ``InvalidTaskError`` in the
backport, ``normalize_json`` lives in ``django_tasks.utils``), so dbqueue's
backend imports them from here, under Django 6's names, and never from either
package directly.

Only :mod:`dbqueue.backends` and its helpers import this module, and only
``TASKS`` names the backend, so dbqueue itself imports and runs on Django 5.2
without the backport. The type checker always sees Django 6's names (the
stubs of django-stubs), whichever package supplies them at run time.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "BaseTaskBackend",
    "InvalidTask",
    "InvalidTaskBackend",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultMismatch",
    "TaskResultStatus",
    "default_task_backend",
    "normalize_json",
    "task",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]

# mypy reads the first branch (TYPE_CHECKING is true for it), so the names
# always carry the django-stubs types. At run time, find_spec("django.tasks")
# imports only the django package, which is loaded already; it finds no
# module on Django 5.2, where the backport is used instead.
if TYPE_CHECKING or find_spec("django.tasks") is not None:
    from django.tasks import (
        Task,
        TaskContext,
        TaskResult,
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TaskError
    from django.tasks.exceptions import (
        InvalidTask,
        InvalidTaskBackend,
        TaskResultDoesNotExist,
        TaskResultMismatch,
    )
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json
else:
    try:
        from django_tasks import (
            TaskContext,
            TaskResult,
            TaskResultStatus,
            default_task_backend,
            task,
            task_backends,
        )
    except ImportError as exc:
        raise ImproperlyConfigured(
            "dbqueue.backends.DatabaseBackend needs Django's Tasks framework: "
            "Django 6.0 or later, or on Django 5.2 the backport "
            "(pip install django-tasks, and add 'django_tasks' to INSTALLED_APPS)."
        ) from exc
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import Task, TaskError
    from django_tasks.exceptions import InvalidTaskBackendError as InvalidTaskBackend
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.exceptions import TaskResultDoesNotExist, TaskResultMismatch
    from django_tasks.signals import task_enqueued, task_finished, task_started
    from django_tasks.utils import normalize_json
