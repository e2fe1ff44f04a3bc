"""Exceptions raised by dbqueue.

The hierarchy::

    DbqueueError
    ├── TaskNotFound (also LookupError)        a path that names no registered task
    ├── SerializationError (also TypeError)    arguments or a result the serializer cannot take
    │   └── PayloadTooLarge (also ValueError)  serialised arguments over DBQUEUE_MAX_PAYLOAD_SIZE
    ├── PayloadError                           a stored payload that cannot be read back
    │   └── PayloadSignatureError              ...because its signature does not verify
    ├── DuplicateTask                          a unique_key another active task holds
    ├── AlreadyReplayed                        a dead-letter entry replayed before
    ├── TaskTimeout                            a task that ran past its timeout
    ├── WorkerLost                             the process running a task died
    └── ShutdownInterrupted                    a shutdown cut a running task short

    django.core.exceptions.ImproperlyConfigured
    └── UnsupportedDatabase                    a vendor or version dbqueue cannot claim on

Errors at the edge (enqueue time) are TaskNotFound, SerializationError and
PayloadTooLarge; nothing is written when one is raised. PayloadError only
happens in a worker, which moves the task to the dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured


class DbqueueError(Exception):
    """Base class of dbqueue's own errors."""


class TaskNotFound(DbqueueError, LookupError):
    """A dotted path does not name a registered task."""


class SerializationError(DbqueueError, TypeError):
    """Arguments or a return value cannot be serialised."""


class PayloadTooLarge(SerializationError, ValueError):
    """Serialised arguments exceed ``DBQUEUE_MAX_PAYLOAD_SIZE``."""


class PayloadError(DbqueueError):
    """A stored payload cannot be decoded."""


class PayloadSignatureError(PayloadError):
    """A stored payload's signature does not match SECRET_KEY: it was altered or forged."""


class DuplicateTask(DbqueueError):
    """Another queued or running task holds this unique_key (on_conflict="raise")."""

    def __init__(self, unique_key: str, existing_id: Any) -> None:
        self.unique_key = unique_key
        self.existing_id = existing_id
        super().__init__(
            f"Task {existing_id} already holds unique_key={unique_key!r}; "
            'pass on_conflict="ignore" to get that task back instead.'
        )


class AlreadyReplayed(DbqueueError):
    """The dead-letter entry was replayed before; pass again=True to replay it once more."""

    def __init__(self, failed: Any) -> None:
        self.failed_id = failed.id
        self.replayed_as = failed.replayed_as
        when = failed.replayed_at.isoformat() if failed.replayed_at else "before"
        super().__init__(
            f"Failed task {failed.id} was already replayed {failed.replay_count} "
            f"time(s), last at {when} as task {failed.replayed_as}; pass again=True "
            "(qreplay --again) to replay it once more."
        )


class TaskTimeout(DbqueueError):
    """A task ran longer than its timeout.

    Raised inside the task when its timeout passes (a task may catch it to
    clean up); recorded as the attempt's error when the worker had to be killed.
    """


class WorkerLost(DbqueueError):
    """The process running a task died (crashed, was killed, or its cluster vanished)."""


class ShutdownInterrupted(DbqueueError):
    """A shutdown stopped a running task before it finished; it is queued again."""


class UnsupportedDatabase(ImproperlyConfigured):
    """The queue database's vendor or version lacks what claiming needs."""
