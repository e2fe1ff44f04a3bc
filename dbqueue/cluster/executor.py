"""Run one claimed task and record what happened.

``execute()`` verifies and decodes the payload *before* it resolves or imports
anything, so a forged row never reaches pickle or the import system. Then it
calls the function and captures the outcome. ``record()`` stores the outcome
through the model's lease-guarded transitions, sends the signals and calls
the hook. Signals and hooks run outside the task's error handling: their
failures are logged and never change the task's outcome.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from django.utils import timezone
from django.utils.module_loading import import_string

from dbqueue import exceptions, models, registry, serialization, signals

logger = logging.getLogger(__name__)


class ImmediateStop(BaseException):
    """Raised in a worker to abandon the running task at once (a second SIGTERM)."""


@dataclasses.dataclass
class Outcome:
    """What one attempt of a task did."""

    task: models.Task
    succeeded: bool
    value: Any = None
    exception: BaseException | None = None
    # False for failures no retry can fix: an unreadable payload, a missing function.
    retryable: bool = True
    # Claimed after its expires_at, so not run at all.
    expired: bool = False
    duration: float = 0.0


def execute(task: models.Task) -> Outcome:
    """Call the task's function with its arguments and capture the outcome."""
    if task.expires_at is not None and task.expires_at <= timezone.now():
        return Outcome(task, succeeded=False, expired=True, retryable=False)
    try:
        args, kwargs = serialization.loads_payload(
            task.func, task.payload, hook=task.hook
        )
    except exceptions.PayloadError as exc:
        return Outcome(task, succeeded=False, exception=exc, retryable=False)
    try:
        func = registry.resolve(task.func)
    except exceptions.TaskNotFound as exc:
        missing = exceptions.TaskNotFound(
            f"Task path no longer importable: {task.func} ({exc})"
        )
        return Outcome(task, succeeded=False, exception=missing, retryable=False)
    signals.send(signals.task_started, sender=models.Task, task=task)
    started = time.monotonic()
    try:
        value = func.run(task, args, kwargs)
    except ImmediateStop:
        raise
    except BaseException as exc:
        # SystemExit and KeyboardInterrupt raised by the task itself are
        # failures of the task, not requests to stop the worker: the worker's
        # own signal handlers never raise them.
        return Outcome(
            task, succeeded=False, exception=exc, duration=time.monotonic() - started
        )
    return Outcome(
        task, succeeded=True, value=value, duration=time.monotonic() - started
    )


def record(outcome: Outcome, worker_id: str) -> bool:
    """Store an outcome; return False if the worker had lost the task's lease."""
    task = outcome.task
    if outcome.expired:
        stored = task.mark_expired(worker_id)
    elif outcome.succeeded:
        try:
            stored = task.mark_succeeded(worker_id, outcome.value)
        except exceptions.SerializationError as exc:
            # Running the task again would repeat its side effects for a value
            # that still could not be stored.
            outcome.succeeded, outcome.exception, outcome.retryable = False, exc, False
            stored = task.mark_failed(worker_id, exc, retry=False)
    else:
        error = outcome.exception or RuntimeError(
            "The task failed without an exception."
        )
        stored = task.mark_failed(worker_id, error, retry=outcome.retryable)
    _log(outcome, stored)
    if not stored:
        return False
    if outcome.exception is not None:
        signals.send(
            signals.task_failed,
            sender=models.Task,
            task=task,
            exception=outcome.exception,
        )
    signals.send(
        signals.task_finished, sender=models.Task, task=task, success=outcome.succeeded
    )
    if task.hook and task.is_finished:
        _call_hook(task)
    return True


def _call_hook(task: models.Task) -> None:
    try:
        import_string(task.hook)(task)
    except Exception:
        logger.exception(
            "Hook %s of task id=%s raised; the task's outcome stands.",
            task.hook,
            task.id,
        )


def _log(outcome: Outcome, stored: bool) -> None:
    task = outcome.task
    if not stored:
        logger.warning(
            "Task id=%s path=%s finished after its lease passed to another worker; outcome not stored.",
            task.id,
            task.func,
        )
    elif outcome.expired:
        logger.info(
            "Task id=%s path=%s queue=%s state=%s (%s)",
            task.id,
            task.func,
            task.queue,
            task.status,
            task.error,
        )
    elif outcome.succeeded:
        logger.info(
            "Task id=%s path=%s queue=%s attempt=%s state=%s duration=%.3fs",
            task.id,
            task.func,
            task.queue,
            task.attempts,
            task.status,
            outcome.duration,
        )
    else:
        level = (
            logging.ERROR if task.status == models.Status.FAILED else logging.WARNING
        )
        logger.log(
            level,
            "Task id=%s path=%s queue=%s attempt=%s/%s state=%s error=%s",
            task.id,
            task.func,
            task.queue,
            task.attempts,
            task.max_attempts,
            task.status,
            task.error,
        )
