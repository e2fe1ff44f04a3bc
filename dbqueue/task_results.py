"""Read a dbqueue Task row as a Django Tasks ``TaskResult``.

A task enqueued through :class:`dbqueue.backends.DatabaseBackend` is an
ordinary dbqueue row, so retries, leases, the dead-letter queue and the admin
work on it as on any other. This module is the one place that translates such
a row into Django's vocabulary.

dbqueue's states map to Django's like this:

==========  ==========  =====================================================
dbqueue     Django      why
==========  ==========  =====================================================
QUEUED      READY       waiting for its first run, or for a retry (``errors``
                        then already holds the failed attempts)
RUNNING     RUNNING     claimed by a worker; ``worker_ids`` includes it
SUCCEEDED   SUCCESSFUL  ``return_value`` is the stored result
FAILED      FAILED      out of attempts, or a failure no retry can fix
CANCELLED   FAILED      Django has no cancelled state, and its FAILED means
                        "raised, or could not start". The last entry of
                        ``errors`` says why: ``TaskExpired`` (claimed after
                        ``expires_at``, never run) or ``TaskCancelled``.
==========  ==========  =====================================================

Per-attempt facts come from the row's ``attempt_log`` (one entry per attempt
that ended, with its worker, times and error); the attempt running now has no
entry yet, so its worker comes from the lease (``locked_by``).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, TypeVar

from dbqueue import models, serialization
from dbqueue.tasks_compat import Task, TaskError, TaskResult, TaskResultStatus

TaskT = TypeVar("TaskT", bound="Task[..., Any]")

STATUSES = {
    models.Status.QUEUED: TaskResultStatus.READY,
    models.Status.RUNNING: TaskResultStatus.RUNNING,
    models.Status.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    models.Status.FAILED: TaskResultStatus.FAILED,
    models.Status.CANCELLED: TaskResultStatus.FAILED,
}


class TaskCancelled(Exception):
    """The error of a Django task whose dbqueue row was cancelled before it ran."""


class TaskExpired(TaskCancelled):
    """The error of a Django task claimed after its ``expires_at``: it was not run."""


def to_result(
    row: models.Task,
    task: Task[..., Any],
    backend: str,
    *,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
) -> TaskResult[..., Any]:
    """Return the TaskResult a row stands for, as `task` on the backend alias `backend`.

    `args` and `kwargs` save decoding the payload when the caller has them.
    """
    if args is None or kwargs is None:
        stored_args, stored_kwargs = serialization.loads_payload(
            row.func, row.payload, hook=row.hook
        )
        args, kwargs = list(stored_args), stored_kwargs
    log: list[dict[str, Any]] = list(row.attempt_log or [])
    worker_ids = [str(entry.get("worker_id") or "") for entry in log]
    if row.status == models.Status.RUNNING:
        worker_ids.append(row.locked_by)
    errors = [
        TaskError(
            exception_class_path=str(entry["exception_class"]),
            traceback=str(entry.get("traceback") or ""),
        )
        for entry in log
        if entry.get("exception_class")
    ]
    if row.status == models.Status.CANCELLED:
        errors.append(_cancellation_error(row))
    first_start = _parse(log[0].get("started_at")) if log else None
    finished = row.status in (
        models.Status.SUCCEEDED,
        models.Status.FAILED,
        models.Status.CANCELLED,
    )
    result = TaskResult(
        task=task,
        id=str(row.id),
        status=STATUSES[models.Status(row.status)],
        enqueued_at=row.enqueued_at,
        # Django's started_at is when the task first started; the row's
        # started_at is stamped again by every claim, so it is the last attempt's.
        started_at=first_start or row.started_at,
        finished_at=row.finished_at if finished else None,
        last_attempted_at=row.started_at,
        args=args,
        kwargs=kwargs,
        backend=backend,
        errors=errors,
        worker_ids=worker_ids,
    )
    if row.status == models.Status.SUCCEEDED:
        # TaskResult is frozen; Django's own backends set the value this way.
        object.__setattr__(result, "_return_value", row.result)
    return result


def task_for_row(task: TaskT, row: models.Task) -> TaskT:
    """Return `task` as it was enqueued for `row`: its priority, queue and run_after.

    The copy skips validation on purpose: the row was validated when it was
    enqueued, and a result must stay readable after QUEUES or OPTIONS change.
    A row enqueued without a delay has run_after equal to enqueued_at, which
    reads back as ``run_after=None``; after a retry, run_after is the retry's time.
    """
    run_after = None if row.run_after == row.enqueued_at else row.run_after
    return copy_task(
        task, priority=row.priority, queue_name=row.queue, run_after=run_after
    )


def copy_task(task: TaskT, **changes: Any) -> TaskT:
    """Return a copy of a (frozen, slotted) Task with `changes`, without validating it."""
    copied = object.__new__(type(task))
    for field in dataclasses.fields(task):
        value = changes.get(field.name, getattr(task, field.name))
        object.__setattr__(copied, field.name, value)
    return copied


def _cancellation_error(row: models.Task) -> TaskError:
    expired = row.expires_at is not None and (
        row.finished_at is None or row.expires_at <= row.finished_at
    )
    kind = TaskExpired if expired else TaskCancelled
    reason = row.error or (
        "The task was not started before it expired."
        if expired
        else "The task was cancelled before it ran."
    )
    path = f"{kind.__module__}.{kind.__qualname__}"
    return TaskError(exception_class_path=path, traceback=f"{path}: {reason}\n")


def _parse(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(str(value))
