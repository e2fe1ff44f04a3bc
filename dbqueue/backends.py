"""A backend for Django's Tasks framework that queues in dbqueue's tables.

Point ``TASKS`` at :class:`DatabaseBackend` and code written against Django's
API (``@task``, ``.enqueue()``, ``.get_result()``) runs on dbqueue: each
enqueue writes an ordinary dbqueue Task row (func = the Task's module path,
JSON payload), ``qcluster`` runs it, and the row reads back as a TaskResult.
Leases, retries, the dead-letter queue and the admin apply as to any other row.

Works on Django 6.x (``django.tasks``) and on Django 5.2 with the django-tasks
backport (``django_tasks``); see ``dbqueue/tasks_compat.py``.

::

    TASKS = {
        "default": {
            "BACKEND": "dbqueue.backends.DatabaseBackend",
            "QUEUES": ["default", "emails"],      # [] accepts any queue name
            "OPTIONS": {
                "max_attempts": 1,                # runs per task; 1 = no retries
                "timeout": None,                  # seconds; None: DBQUEUE_TIMEOUT
                "queues": {"emails": {"max_attempts": 5}},
                "tasks": {"myapp.tasks.report": {"timeout": 600}},
            },
        }
    }

An option is taken from, first to last: the Task itself (``@task(max_attempts=3)``
on Django 6.1, where ``@task`` passes extra keywords to the backend's Task
class, and ``task.using(max_attempts=3)`` everywhere), ``OPTIONS["tasks"]``
by module path, ``OPTIONS["queues"]`` by queue name, then ``OPTIONS``.

``max_attempts`` defaults to 1, not to DBQUEUE_MAX_ATTEMPTS: Django's own
backends run a task once, and code written for them may not be idempotent.
Retries are opt-in, per backend, queue or task.
"""

from __future__ import annotations

import dataclasses
import numbers
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeAlias, TypeVar, cast

from django.apps import apps
from django.core import checks
from django.utils.module_loading import import_string

from dbqueue import api, models, signals, task_adapter, task_results
from dbqueue.conf import settings
from dbqueue.tasks_compat import (
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    normalize_json,
    task_enqueued,
)

__all__ = ["DatabaseBackend", "DatabaseTask", "TaskCancelled", "TaskExpired"]

TaskCancelled = task_results.TaskCancelled
TaskExpired = task_results.TaskExpired

DEFAULT_MAX_ATTEMPTS = 1  # Django's backends never retry; see the module docstring
OPTION_NAMES = frozenset({"max_attempts", "timeout"})
TASK_OPTION_NAMES = OPTION_NAMES | {"unique_key"}
BACKEND_OPTION_NAMES = OPTION_NAMES | {"queues", "tasks"}
QUEUE_NAME_MAX = 64  # characters, the width of dbqueue's queue column

P = ParamSpec("P")
R = TypeVar("R")

if TYPE_CHECKING:
    _TaskBase: TypeAlias = Task[..., Any]
else:
    _TaskBase = Task


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseTask(_TaskBase):
    """Django's Task with dbqueue's per-task options; None means "from OPTIONS".

    On Django 6.1 (and the backport) ``@task(max_attempts=3, timeout=60)``
    builds this class; on 6.0 the decorator takes no extra keywords, and
    ``.using(max_attempts=...)`` or OPTIONS set them instead.
    """

    max_attempts: int | None = None
    timeout: float | None = None
    unique_key: str | None = None

    def using(
        self,
        *,
        max_attempts: int | None = None,
        timeout: float | None = None,
        unique_key: str | None = None,
        **changes: Any,
    ) -> DatabaseTask:
        """Return a copy with Django's changes and dbqueue's options; None keeps a value."""
        # Explicit base class: zero-argument super() breaks in slotted dataclasses.
        task = cast(DatabaseTask, _TaskBase.using(self, **changes))
        extra: dict[str, Any] = {
            name: value
            for name, value in (
                ("max_attempts", max_attempts),
                ("timeout", timeout),
                ("unique_key", unique_key),
            )
            if value is not None
        }
        return dataclasses.replace(task, **extra) if extra else task

    if not hasattr(_TaskBase, "_reconstruct"):
        # Django 6.1 pickles a Task by its module path; give 6.0 and the
        # backport the same, so a Task can cross a process boundary.
        def __reduce__(self) -> tuple[Any, ...]:
            values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
            values["func"] = self.module_path
            return (_rebuild_task, (type(self), values))


def _rebuild_task(cls: type[DatabaseTask], values: dict[str, Any]) -> DatabaseTask:
    path = values["func"]
    try:
        values["func"] = import_string(path).func
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"Expected {path!r} to point to a Task instance.") from exc
    return cls(**values)


class DatabaseBackend(BaseTaskBackend):
    """Queue Django's Tasks as dbqueue rows; run them with ``manage.py qcluster``."""

    task_class = DatabaseTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def validate_task(self, task: Task[..., Any]) -> None:
        """Apply Django's rules and dbqueue's, then register the task for the worker.

        Raise InvalidTask for a queue name longer than dbqueue's column and
        for a bad max_attempts, timeout or unique_key.
        """
        super().validate_task(task)
        if not task.queue_name or len(task.queue_name) > QUEUE_NAME_MAX:
            raise InvalidTask(
                f"queue_name must be 1 to {QUEUE_NAME_MAX} characters, got {task.queue_name!r}."
            )
        _validate_options(
            {name: getattr(task, name, None) for name in TASK_OPTION_NAMES},
            InvalidTask,
            "",
        )
        task_adapter.register(task, self._options_for(task))

    def enqueue(self, task: Task[P, R], args: Any, kwargs: Any) -> TaskResult[P, R]:
        """Write a dbqueue row for a call of `task` and return its READY TaskResult.

        The row is inserted on the caller's connection to DBQUEUE_DATABASE, so
        inside ``transaction.atomic()`` it commits or rolls back with the
        caller's own writes. Raise InvalidTask if the task is not valid for
        this backend, and TypeError or ValueError for arguments JSON cannot hold.
        """
        self.validate_task(task)
        # Django's rule for arguments (tuples become lists, bytes str), applied
        # before anything is written so a bad argument stores nothing.
        args, kwargs = normalize_json(list(args)), normalize_json(dict(kwargs))
        options = self._options_for(task)
        row = api.enqueue(
            task.module_path,
            args,
            kwargs,
            queue=task.queue_name,
            priority=int(task.priority),
            eta=task.run_after,
            max_attempts=options.get("max_attempts", DEFAULT_MAX_ATTEMPTS),
            timeout=options.get("timeout"),
            unique_key=options.get("unique_key"),
            save=True,
            sync=False,
            serializer="json",
        )
        if options.get("unique_key") is None:
            result = task_results.to_result(
                row, task, self.alias, args=args, kwargs=kwargs
            )
        else:
            # The row may be an earlier task that holds the key: describe it
            # by its own arguments, not this call's.
            result = task_results.to_result(row, task, self.alias)
        signals.send(task_enqueued, sender=type(self), task_result=result)
        if settings.SYNC:
            from dbqueue.cluster import worker

            worker.run_inline(row)
            row.refresh_from_db(using=models.queue_db())
            result = task_results.to_result(row, task, self.alias)
        return cast("TaskResult[P, R]", result)

    def get_result(self, result_id: str) -> TaskResult[..., Any]:
        """Return the TaskResult of a task enqueued through this backend, from any process.

        Raise TaskResultDoesNotExist for an id that is not a UUID, names no
        row, or names a row that is not a Django task (use dbqueue.fetch()).
        """
        try:
            pk = uuid.UUID(str(result_id))
        except ValueError:
            raise TaskResultDoesNotExist(
                f"No task result has the id {result_id!r}; ids are UUIDs."
            ) from None
        row = models.Task.objects.using(models.queue_db()).filter(pk=pk).first()
        if row is None:
            raise TaskResultDoesNotExist(f"No task result has the id {result_id!r}.")
        registered = task_adapter.registered_task(row.func)
        if registered is None:
            raise TaskResultDoesNotExist(
                f"Task {result_id!r} runs {row.func!r}, which is not one of Django's "
                "Tasks; read it with dbqueue.fetch()."
            )
        task = task_results.task_for_row(registered.task, row)
        return task_results.to_result(row, task, self.alias)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        """Report a missing dbqueue app and malformed OPTIONS (ids dbqueue.E101, E102)."""
        messages: list[checks.CheckMessage] = []
        where = f"TASKS[{self.alias!r}]"
        if not apps.is_installed("dbqueue"):
            messages.append(
                checks.Error(
                    f"{where} uses dbqueue.backends.DatabaseBackend, but 'dbqueue' is not "
                    "in INSTALLED_APPS.",
                    hint="Add 'dbqueue' to INSTALLED_APPS and run migrate.",
                    id="dbqueue.E101",
                )
            )
        messages.extend(_check_options(self.options, where))
        return messages

    def _options_for(self, task: Task[..., Any]) -> dict[str, Any]:
        """Return the dbqueue options of a call of `task`, from the most specific source."""
        options = _mapping(self.options)
        merged = {k: v for k, v in options.items() if k in OPTION_NAMES}
        queue = _mapping(_mapping(options.get("queues")).get(task.queue_name))
        merged.update({k: v for k, v in queue.items() if k in OPTION_NAMES})
        own = _mapping(_mapping(options.get("tasks")).get(task.module_path))
        merged.update({k: v for k, v in own.items() if k in TASK_OPTION_NAMES})
        for name in TASK_OPTION_NAMES:
            value = getattr(task, name, None)
            if value is not None:
                merged[name] = value
        return {k: v for k, v in merged.items() if v is not None}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _check_options(options: Any, where: str) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []

    def error(message: str) -> None:
        errors.append(checks.Error(message, id="dbqueue.E102"))

    if not isinstance(options, Mapping):
        error(f"{where}['OPTIONS'] must be a dict, got {type(options).__name__}.")
        return errors
    _unknown(options, BACKEND_OPTION_NAMES, f"{where}['OPTIONS']", error)
    _validate_options(options, None, f"{where}['OPTIONS']", error)
    for key, names in (("queues", OPTION_NAMES), ("tasks", TASK_OPTION_NAMES)):
        group = options.get(key, {})
        if not isinstance(group, Mapping):
            error(
                f"{where}['OPTIONS'][{key!r}] must be a dict, got {type(group).__name__}."
            )
            continue
        for name, values in group.items():
            place = f"{where}['OPTIONS'][{key!r}][{name!r}]"
            if not isinstance(values, Mapping):
                error(f"{place} must be a dict, got {type(values).__name__}.")
                continue
            _unknown(values, names, place, error)
            _validate_options(values, None, place, error)
    return errors


def _unknown(
    options: Mapping[str, Any], known: frozenset[str], place: str, error: Any
) -> None:
    for key in sorted(set(options) - known, key=str):
        error(
            f"{place} has an unknown key {key!r}; the keys are {', '.join(sorted(known))}."
        )


def _validate_options(
    options: Mapping[str, Any],
    exception: type[Exception] | None,
    place: str,
    error: Any = None,
) -> None:
    """Check max_attempts, timeout and unique_key; raise `exception` or call `error`."""
    problems = []
    max_attempts = options.get("max_attempts")
    if max_attempts is not None and (
        isinstance(max_attempts, bool)
        or not isinstance(max_attempts, int)
        or max_attempts < 1
    ):
        problems.append(
            f"max_attempts must be a positive integer, got {max_attempts!r}."
        )
    timeout = options.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, numbers.Real)
        or timeout <= 0
    ):
        problems.append(
            f"timeout must be a positive number of seconds or None, got {timeout!r}."
        )
    unique_key = options.get("unique_key")
    if unique_key is not None and (
        not isinstance(unique_key, str) or not 1 <= len(unique_key) <= 255
    ):
        problems.append(
            f"unique_key must be a string of 1 to 255 characters, got {unique_key!r}."
        )
    for problem in problems:
        message = f"{place}: {problem}" if place else problem
        if exception is not None:
            raise exception(message)
        error(message)
