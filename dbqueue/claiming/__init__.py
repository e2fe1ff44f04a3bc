"""Claiming tasks: the one place that branches on the database vendor.

``claim()`` locks up to `limit` due tasks for a worker and marks them RUNNING
with a lease, in one short transaction. Each vendor module implements the same
``claim_rows(connection, ...)`` with the SQL that vendor does best:

- ``postgresql``: ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``
- ``mysql`` (MySQL 8 and MariaDB 10.6+): ``SELECT … FOR UPDATE SKIP LOCKED``, then ``UPDATE``
- ``sqlite``: one ``BEGIN IMMEDIATE`` transaction with ``UPDATE … RETURNING``

Completing or failing a claimed task is vendor-neutral and lives on the model
(``Task.mark_succeeded`` / ``Task.mark_failed``).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from types import ModuleType

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F
from django.utils import timezone

from dbqueue import exceptions, models
from dbqueue.claiming import mysql, postgresql, sqlite
from dbqueue.conf import settings

ENGINES: dict[str, ModuleType] = {
    "postgresql": postgresql,
    "mysql": mysql,
    "sqlite": sqlite,
}


def claim(
    worker_id: str,
    queues: Sequence[str] | None,
    limit: int,
    *,
    using: str | None = None,
    lease: float | None = None,
    now: datetime.datetime | None = None,
) -> list[models.Task]:
    """Lock up to `limit` due tasks for `worker_id` and mark them RUNNING.

    `queues=None` claims from every queue. The tasks come back in claiming
    order: priority (highest first), then run_after, then enqueue order.
    """
    alias = using or models.queue_db()
    connection = connections[alias]
    now = now or timezone.now()
    locked_until = now + datetime.timedelta(
        seconds=float(lease if lease is not None else settings.LEASE)
    )
    tasks = engine(connection).claim_rows(
        connection,
        alias=alias,
        worker_id=worker_id,
        queues=list(queues) if queues is not None else None,
        limit=limit,
        now=now,
        locked_until=locked_until,
    )
    return sorted(tasks, key=lambda t: (-t.priority, t.run_after, t.id))


def release(
    tasks: Sequence[models.Task], worker_id: str, *, using: str | None = None
) -> int:
    """Put claimed tasks that never started back in the queue, as if never claimed."""
    if not tasks:
        return 0
    return (
        models.Task.objects.using(using or models.queue_db())
        .held_by(worker_id)
        .filter(id__in=[t.id for t in tasks])
        .update(
            status=models.Status.QUEUED,
            attempts=F("attempts") - 1,
            locked_by="",
            locked_until=None,
            started_at=None,
        )
    )


def notify(queue: str, *, using: str | None = None) -> None:
    """Tell idle workers that `queue` has a new task, when the transaction commits.

    PostgreSQL delivers a NOTIFY only on commit, so a rolled-back enqueue
    wakes nobody. Other vendors have no such channel: their workers poll.
    """
    connection = connections[using or models.queue_db()]
    engine(connection).notify(connection, queue)


def wait_for_work(timeout: float, *, using: str | None = None) -> bool | None:
    """Block up to `timeout` seconds for a notification; return True if one came.

    Return False if none came, and None at once where the database has no
    notification channel: the caller then sleeps its poll interval instead.
    """
    connection = connections[using or models.queue_db()]
    notified: bool | None = engine(connection).wait_for_work(connection, timeout)
    return notified


def is_transient(exc: BaseException, *, using: str | None = None) -> bool:
    """Tell whether a database error is a lock conflict that a retry will get past.

    Deadlocks, lock timeouts and SQLite's "database is locked" say nothing
    about the data: the same statement succeeds a moment later.
    """
    connection = connections[using or models.queue_db()]
    transient: bool = engine(connection).is_transient(exc)
    return transient


def prepare(using: str | None = None) -> None:
    """Make the queue database ready for workers (called once by qcluster at start)."""
    connection = connections[using or models.queue_db()]
    engine(connection).prepare(connection)


def engine(connection: BaseDatabaseWrapper) -> ModuleType:
    """Return the claiming module for `connection`'s vendor.

    Raise UnsupportedDatabase for a vendor dbqueue cannot claim on.
    """
    try:
        return ENGINES[connection.vendor]
    except KeyError:
        raise exceptions.UnsupportedDatabase(
            f"Database {connection.alias!r} is {connection.display_name}, which dbqueue cannot "
            "claim tasks on. Use PostgreSQL 12+, MySQL 8+, MariaDB 10.6+ or SQLite 3.35+."
        ) from None


def version_problem(connection: BaseDatabaseWrapper) -> str | None:
    """Describe why `connection`'s server version is too old for claiming, or return None."""
    module = engine(connection)
    problem: str | None = module.version_problem(connection)
    return problem
