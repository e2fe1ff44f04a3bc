"""Run Django's Tasks in dbqueue's worker, and send Django's task signals there.

A Django task lives in dbqueue's registry under its ``module_path``, as a
:class:`DjangoTaskFunction`. The backend registers it from ``validate_task``,
which Django calls whenever a Task is built: when ``@task`` decorates the
function (so a fresh worker that imports the task's module finds it, exactly
as it finds a function decorated with ``@dbqueue.task``) and at every enqueue.
So the worker's ordinary path (verify the payload, resolve ``func`` through
the registry, call ``run()``) runs Django tasks with no special case, and so
will a schedule or a dead-letter replay that makes a row with the same ``func``.

Django's ``task_started`` and ``task_finished`` are re-sent from receivers of
dbqueue's own signals, which the worker sends outside the task's error
handling. A Django receiver that raises is logged and changes nothing.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from django.dispatch import Signal

from dbqueue import exceptions, models, registry, signals, task_results
from dbqueue.tasks_compat import (
    Task,
    TaskContext,
    TaskResult,
    normalize_json,
    task_finished,
    task_started,
)

if TYPE_CHECKING:
    from dbqueue.tasks_compat import BaseTaskBackend

# The exception of a failed attempt, from dbqueue's task_failed until
# task_finished, so Django's receivers see it in sys.exc_info() as they
# would with Django's own backends. Both signals are sent by one worker
# thread, one right after the other.
_failures = threading.local()


class DjangoTaskFunction(registry.TaskFunction):
    """A Django Task in dbqueue's registry: run() calls it as Django's backends do."""

    # Django's Tasks take and return JSON; rows made by path (async_task,
    # schedules that honour it) are written as JSON too.
    serializer = "json"

    def __init__(self, task: Task[..., Any], defaults: dict[str, Any]) -> None:
        super().__init__(
            task.func,
            queue=task.queue_name,
            priority=task.priority,
            max_attempts=defaults.get("max_attempts"),
            timeout=defaults.get("timeout"),
            # get_result() must find the row of every run, including runs
            # that schedules or async_task(path) enqueue.
            save=True,
        )
        self.task = task

    def __repr__(self) -> str:
        return f"<DjangoTaskFunction {self.path}>"

    def leading_arguments(self) -> tuple[Any, ...]:
        return (None,) if self.task.takes_context else ()

    def run(
        self, task: models.Task, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Call the Task (with a TaskContext if it takes one); return a JSON-ready value.

        The return value goes through Django's normalize_json here, inside the
        attempt, so a value JSON cannot hold fails the task with Django's own
        ``TypeError("Unsupported type: ...")``, as it does on Django's backends.
        """
        django_task = task_results.task_for_row(self.task, task)
        if django_task.takes_context:
            result = task_results.to_result(
                task,
                django_task,
                django_task.backend,
                args=list(args),
                kwargs=kwargs,
            )
            value = django_task.call(TaskContext(task_result=result), *args, **kwargs)
        else:
            value = django_task.call(*args, **kwargs)
        return normalize_json(value)


def register(task: Task[..., Any], defaults: dict[str, Any]) -> None:
    """Register `task` under its module path, unless that function is registered already.

    ``task.using(...)`` builds (and validates) a new Task for the same
    function at every call; the first one registered, normally the decorated
    one, stays. A reloaded module brings a new function object, which replaces it.
    """
    current = registry.registered(task.module_path)
    if isinstance(current, DjangoTaskFunction) and current.task.func is task.func:
        return
    registry.register(DjangoTaskFunction(task, defaults))


def registered_task(path: str) -> DjangoTaskFunction | None:
    """Return the Django task registered (or importable) under `path`, else None."""
    try:
        found = registry.resolve(path)
    except (exceptions.TaskNotFound, TypeError):
        return None
    return found if isinstance(found, DjangoTaskFunction) else None


def _result_for(
    row: models.Task,
) -> tuple[type[BaseTaskBackend], TaskResult[..., Any]] | None:
    registered = registry.registered(row.func)
    if not isinstance(registered, DjangoTaskFunction):
        return None
    django_task = task_results.task_for_row(registered.task, row)
    return _backend_class(django_task), task_results.to_result(
        row, django_task, django_task.backend
    )


def _backend_class(task: Task[..., Any]) -> type[BaseTaskBackend]:
    from dbqueue.backends import DatabaseBackend

    try:
        backend = task.get_backend()
    except Exception:
        return DatabaseBackend
    return type(backend) if isinstance(backend, DatabaseBackend) else DatabaseBackend


def _send(signal: Signal, row: models.Task) -> None:
    found = _result_for(row)
    if found is not None:
        sender, result = found
        signals.send(signal, sender=sender, task_result=result)


def _on_started(sender: Any, task: models.Task, **kwargs: Any) -> None:
    _send(task_started, task)


def _on_failed(
    sender: Any, task: models.Task, exception: BaseException, **kwargs: Any
) -> None:
    _failures.pending = (task.id, exception)


def _on_finished(sender: Any, task: models.Task, **kwargs: Any) -> None:
    pending = getattr(_failures, "pending", None)
    _failures.pending = None
    if pending is None or pending[0] != task.id:
        _send(task_finished, task)
        return
    # Django sends task_finished for a failure from inside the except block,
    # and its logging receiver attaches sys.exc_info() to the log record.
    try:
        raise pending[1]
    except BaseException:
        _send(task_finished, task)


signals.task_started.connect(_on_started, dispatch_uid="dbqueue.task_adapter.started")
signals.task_failed.connect(_on_failed, dispatch_uid="dbqueue.task_adapter.failed")
signals.task_finished.connect(
    _on_finished, dispatch_uid="dbqueue.task_adapter.finished"
)
