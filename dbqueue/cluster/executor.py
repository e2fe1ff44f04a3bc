"""Run one claimed task and record what happened.

``execute()`` verifies and decodes the payload *before* it resolves or imports
anything, so a forged row never reaches pickle or the import system. Then it
calls the function and captures the outcome. ``record()`` stores the outcome
through the model's lease-guarded transitions, sends the signals and calls
the hook. Signals and hooks run outside the task's error handling: their
failures are logged and never change the task's outcome.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, TypeVar

from django.db import DatabaseError
from django.utils import timezone
from django.utils.module_loading import import_string

from dbqueue import (
    chains,
    claiming,
    counters,
    exceptions,
    models,
    registry,
    retries,
    serialization,
    signals,
    task_logging,
)

logger = logging.getLogger(__name__)

RECORD_TRIES = 5  # attempts at storing an outcome through lock conflicts

T = TypeVar("T")


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
    # The registered task's rules for a failure (the defaults until resolved).
    policy: retries.RetryPolicy = retries.DEFAULT_POLICY


def execute(task: models.Task, *, soft_timeout: float | None = None) -> Outcome:
    """Call the task's function with its arguments and capture the outcome.

    With `soft_timeout`, a TaskTimeout is raised inside the task once that many
    seconds have passed (main thread only: it uses SIGALRM). The supervisor's
    kill stays the hard limit for a task that catches it or sits in C code.
    """
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
    except Exception as exc:
        # Importing the task's module raised (a bad deploy, a settings
        # mismatch). The worker must survive it; the next attempt, perhaps
        # after a fix, may not fail the same way.
        broken = exceptions.TaskNotFound(
            f"Importing the module of {task.func} raised {type(exc).__name__}: {exc}"
        )
        return Outcome(task, succeeded=False, exception=broken)
    signals.send(signals.task_started, sender=models.Task, task=task)
    policy = func.retry_policy
    if logger.isEnabledFor(logging.INFO):  # off at -v 0: not even built then
        what, values = task_logging.describe(task)
        logger.info(
            "Task " + what + " state=RUNNING worker=%s%s",
            *values,
            task.locked_by,
            task_logging.arguments(task, args, kwargs),
            extra=task_logging.record_fields(task),
        )
    started = time.monotonic()
    try:
        with _alarm(soft_timeout), task_logging.running(task):
            value = func.run(task, args, kwargs)
    except BaseException as exc:
        # SystemExit and KeyboardInterrupt raised by the task itself are
        # failures of the task, not requests to stop the worker: the worker's
        # own signal handlers never raise them. An exception whose
        # `dbqueue_retryable` attribute is False is not retried: no retry
        # can help it (a result that cannot be stored, say).
        return Outcome(
            task,
            succeeded=False,
            exception=exc,
            retryable=getattr(exc, "dbqueue_retryable", True) is not False,
            duration=time.monotonic() - started,
            policy=policy,
        )
    return Outcome(
        task,
        succeeded=True,
        value=value,
        duration=time.monotonic() - started,
        policy=policy,
    )


@contextlib.contextmanager
def _alarm(seconds: float | None) -> Iterator[None]:
    """Raise TaskTimeout in this thread after `seconds`, only while the block runs."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return
    armed = True

    def expire(signum: int, frame: FrameType | None) -> None:
        # A SIGALRM already pending when the block ended must not raise
        # into the worker's own bookkeeping.
        if armed:
            raise exceptions.TaskTimeout(
                f"The task ran past its timeout of {seconds:g}s."
            )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _store(outcome: Outcome, worker_id: str) -> bool:
    task = outcome.task
    if outcome.expired:
        stored = task.mark_expired(worker_id)
    elif outcome.succeeded:
        try:
            # A chain link's success and the insert of its next link share one
            # transaction (chains.succeed); other tasks need no transaction.
            stored = (
                chains.succeed(task, worker_id, outcome.value)
                if task.chain
                else task.mark_succeeded(worker_id, outcome.value)
            )
        except exceptions.SerializationError as exc:
            _unstorable(outcome, exc)
            stored = task.mark_failed(worker_id, exc, retry=False)
    else:
        error = outcome.exception or RuntimeError(
            "The task failed without an exception."
        )
        decision = (
            outcome.policy.decide(task.attempts, error)
            if outcome.retryable
            else retries.DEAD_LETTER
        )
        stored = task.mark_failed(
            worker_id,
            error,
            retry=decision.retry,
            delay=decision.delay,
            dead_letter=not decision.discard,
        )
    return stored


def record(outcome: Outcome, worker_id: str) -> bool:
    """Store an outcome; return False if the worker had lost the task's lease.

    A lock conflict (a deadlock with another cluster's heartbeat, SQLite's
    busy writer) is retried: a finished task's outcome must not be lost, or
    the task would run again after its lease runs out. A stored outcome is
    counted for the metrics in this process's memory; the caller flushes
    the counts (see dbqueue.counters).
    """
    task = outcome.task

    def store() -> bool:
        return _store(outcome, worker_id)

    def reload() -> None:
        # Start again from what the database holds: a rolled-back
        # transition may have changed the in-memory task already.
        task.refresh_from_db(using=models.queue_db())

    stored = _through_conflicts(store, reload, f"task id={task.id}")
    _announce(outcome, stored)
    return stored


def deferred_fields(outcome: Outcome, worker_id: str) -> dict[str, Any] | None:
    """Return a success's fields, serialised now, if it may wait to be stored with others.

    None for an outcome to store at once with record(): a failure or an
    expiry; a chain link, whose success commits with its next link's insert;
    a task with on_orphan="fail", which must never run twice; and a value
    that cannot be stored, which turns the outcome into that failure.
    """
    task = outcome.task
    if (
        not outcome.succeeded
        or outcome.expired
        or task.chain
        or task.on_orphan != models.OnOrphan.RETRY
    ):
        return None
    try:
        return task.success_fields(worker_id, outcome.value)
    except exceptions.SerializationError as exc:
        _unstorable(outcome, exc)
        return None


def _unstorable(outcome: Outcome, exc: exceptions.SerializationError) -> None:
    # Running the task again would repeat its side effects for a value that
    # still could not be stored: a failure without a retry.
    outcome.succeeded, outcome.exception, outcome.retryable = False, exc, False


def record_successes(
    successes: list[tuple[Outcome, dict[str, Any]]], worker_id: str
) -> None:
    """Store prepared successes in one transaction, then log, count and signal each.

    Lock conflicts are retried as in record(); the fields were computed from
    the claimed row, which only this worker changes while it holds the lease.
    """

    def store() -> list[models.Task]:
        return models.Task.store_successes(
            worker_id, [(outcome.task, fields) for outcome, fields in successes]
        )

    stored = {id(task) for task in _through_conflicts(store, None, "a batch")}
    for outcome, _ in successes:
        _announce(outcome, id(outcome.task) in stored)


def _through_conflicts(
    store: Callable[[], T], reload: Callable[[], None] | None, what: str
) -> T:
    """Call `store`, again after a short wait if it hit a lock conflict."""
    attempt = 1
    while True:
        try:
            return store()
        except DatabaseError as exc:
            if attempt == RECORD_TRIES or not claiming.is_transient(exc):
                raise
            logger.warning(
                "Storing the outcome of %s hit a lock conflict (%s); retrying.",
                what,
                exc,
            )
            time.sleep(0.05 * attempt)
            if reload is not None:
                reload()
            attempt += 1


def _announce(outcome: Outcome, stored: bool) -> None:
    """Log a stored outcome, count it, send its signals and call its hook."""
    task = outcome.task
    _log(outcome, stored)
    if not stored:
        return
    counters.add(task, _events(outcome), outcome.duration)
    if outcome.exception is not None:
        signals.send(
            signals.task_failed,
            sender=models.Task,
            task=task,
            exception=outcome.exception,
        )
        if task.status == models.Status.QUEUED:
            signals.send(
                signals.task_retrying,
                sender=models.Task,
                task=task,
                exception=outcome.exception,
                run_after=task.run_after,
            )
        elif task.dead_letter is not None:
            signals.send(
                signals.task_dead_lettered,
                sender=models.Task,
                task=task,
                failed_task=task.dead_letter,
                exception=outcome.exception,
            )
    signals.send(
        signals.task_finished, sender=models.Task, task=task, success=outcome.succeeded
    )
    # The hook is an import path signed into the payload: when that signature
    # failed, the row was written without the key and its hook is nobody's word.
    vouched = not isinstance(outcome.exception, exceptions.PayloadSignatureError)
    if task.hook and task.is_finished and vouched:
        _call_hook(task)


def _call_hook(task: models.Task) -> None:
    try:
        import_string(task.hook)(task)
    except Exception:
        logger.exception(
            "Hook %s of task id=%s raised; the task's outcome stands.",
            task.hook,
            task.id,
        )


def _events(outcome: Outcome) -> list[str]:
    """The counters an outcome adds to (see dbqueue.counters)."""
    if outcome.expired:
        return [counters.Event.EXPIRED]
    if outcome.succeeded:
        return [counters.Event.SUCCEEDED]
    return [counters.Event.FAILED, counters.after_failure(outcome.task)]


def _log(outcome: Outcome, stored: bool) -> None:
    """Log the task's new state once: INFO for success, WARNING for a retry, ERROR for a dead letter.

    The line is chosen first and described only if its level is on: at
    qcluster -v 0 a success's INFO line costs a worker nothing.
    """
    task = outcome.task
    ended = (task.status, outcome.duration, task.error)
    more: tuple[Any, ...]
    if not stored:
        level, text, more = (
            logging.WARNING,
            " finished after its lease passed to another worker; outcome not stored.",
            (),
        )
    elif outcome.expired:
        level, text, more = (
            logging.INFO,
            " state=%s not run: %s",
            (task.status, task.error),
        )
    elif outcome.succeeded:
        level, text, more = (
            logging.INFO,
            " state=%s duration=%.3fs",
            (task.status, outcome.duration),
        )
    elif task.status == models.Status.QUEUED:
        level, text, more = (
            logging.WARNING,
            " state=%s duration=%.3fs error=%s; retry at %s.",
            (*ended, task.run_after.isoformat()),
        )
    elif task.dead_letter is not None:
        level, text, more = (
            logging.ERROR,
            " state=%s duration=%.3fs error=%s; moved to the dead-letter queue as id=%s.",
            (*ended, task.dead_letter.id),
        )
    else:
        level, text, more = (
            logging.WARNING,
            " state=%s duration=%.3fs error=%s; discarded, no retry.",
            ended,
        )
    if not logger.isEnabledFor(level):
        return
    what, values = task_logging.describe(task)
    logger.log(
        level,
        "Task " + what + text,
        *values,
        *more,
        extra=task_logging.record_fields(task),
    )
