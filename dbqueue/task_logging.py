"""Task ids in log records: the running task's context, and the logger a task logs with.

While a worker runs a task, :func:`running` holds the task in a context
variable, so code inside the task (and anything it calls) can tie its log
lines to the task without passing the id around:

- ``logger = dbqueue.task_logger(__name__)`` gives a logger whose lines end
  with ``task_id=<id>`` while a task runs, and carry ``task_id``,
  ``task_func``, ``task_queue`` and ``task_attempt`` as record attributes for
  structured (JSON) handlers;
- :class:`TaskContextFilter`, added to a handler, puts those attributes on
  every record that handler sees, any library's included, for a format such
  as ``"%(levelname)s %(task_id)s %(message)s"`` (empty outside a task).

It also formats the parts of dbqueue's own lifecycle lines that several
modules share (:func:`describe`, :func:`arguments`). Arguments are left out
unless DBQUEUE_LOG_ARGUMENTS is on, and then shown through
:func:`dbqueue.redaction.redact`, so a value marked secret never reaches a log.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import reprlib
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dbqueue import redaction, serialization
from dbqueue.conf import settings

if TYPE_CHECKING:
    from dbqueue import models

FIELDS = ("task_id", "task_func", "task_queue", "task_attempt")
# Arguments in a log line are cut short: a line is for reading, not for replay.
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 120
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = 10


@dataclass(frozen=True)
class TaskContext:
    """What a log record learns about the task that was running when it was made."""

    id: str
    func: str
    queue: str
    attempt: int

    def as_extra(self) -> dict[str, Any]:
        return dict(
            zip(FIELDS, (self.id, self.func, self.queue, self.attempt), strict=True)
        )


_current: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "dbqueue_task", default=None
)


def current() -> TaskContext | None:
    """Return the task running in this context, or None."""
    return _current.get()


@contextlib.contextmanager
def running(task: models.Task) -> Iterator[TaskContext]:
    """Mark `task` as the running one for the duration of the block."""
    context = TaskContext(str(task.id), task.func, task.queue, task.attempts)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


class TaskLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Appends ``task_id=<id>`` to each line logged while a task runs, and adds its attributes."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        context = current()
        if context is None:
            return msg, kwargs
        kwargs["extra"] = {**context.as_extra(), **(kwargs.get("extra") or {})}
        return f"{msg} task_id={context.id}", kwargs


def task_logger(name: str | None = None) -> TaskLoggerAdapter:
    """Return a logger for code that runs inside tasks: its lines name the running task.

    Use it like ``logging.getLogger``: ``logger = task_logger(__name__)`` at
    module level, then ``logger.info("Sent %s emails", n)`` inside the task
    logs "Sent 3 emails task_id=0190…". Outside a task it logs lines unchanged.
    """
    return TaskLoggerAdapter(logging.getLogger(name), {})


class TaskContextFilter(logging.Filter):
    """Gives every record task_id, task_func, task_queue and task_attempt ("" outside a task).

    Add it to a handler (``"filters": ["dbqueue_task"]`` in LOGGING, with
    ``"dbqueue_task": {"()": "dbqueue.task_logging.TaskContextFilter"}``) to use
    ``%(task_id)s`` in that handler's format. It never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        context = current()
        values = context.as_extra() if context else dict.fromkeys(FIELDS, "")
        for name, value in values.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def describe(task: models.Task) -> tuple[str, tuple[Any, ...]]:
    """Return the ``id=… path=… queue=… attempt=n/m`` part of a lifecycle line and its arguments."""
    return (
        "id=%s path=%s queue=%s attempt=%s/%s",
        (task.id, task.func, task.queue, task.attempts, task.max_attempts),
    )


def record_fields(task: models.Task) -> dict[str, Any]:
    """Record attributes of a lifecycle line, as a task's own lines carry them."""
    return TaskContext(str(task.id), task.func, task.queue, task.attempts).as_extra()


def arguments(
    task: models.Task,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
) -> str:
    """Return " args=… kwargs=…" for a log line, redacted, or "" unless DBQUEUE_LOG_ARGUMENTS.

    Without `args` and `kwargs` the task's payload is decoded, which only
    happens when the setting is on. This never raises: a log line must not
    break the operation it reports.
    """
    if settings.LOG_ARGUMENTS is not True:
        return ""
    try:
        if args is None or kwargs is None:
            args, kwargs = serialization.loads_payload(
                task.func, task.payload, hook=task.hook
            )
        shown_args, shown_kwargs = redaction.redact(task.func, args, kwargs)
        return f" args={_REPR.repr(shown_args)} kwargs={_REPR.repr(shown_kwargs)}"
    except Exception as exc:
        return f" args=<not shown: {type(exc).__name__}>"


def enqueued(logger: logging.Logger, task: models.Task) -> None:
    """Log that `task` was stored and is QUEUED, once, at INFO."""
    if not logger.isEnabledFor(logging.INFO):
        return
    what, values = describe(task)
    later = ""
    if task.run_after and task.enqueued_at and task.run_after > task.enqueued_at:
        later = f" run_after={task.run_after.isoformat()}"
    logger.info(
        "Task " + what + " state=QUEUED%s%s",
        *values,
        later,
        arguments(task),
        extra=record_fields(task),
    )
