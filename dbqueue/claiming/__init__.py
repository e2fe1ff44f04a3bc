"""Claiming tasks: the one place that branches on the database vendor.

``claim()`` locks up to `limit` due tasks for a worker and marks them RUNNING
with a lease, in one short transaction. Each vendor module implements the same
``claim_rows(connection, ...)`` with the SQL that vendor does best:

- ``postgresql``: ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``
- ``mysql`` (MySQL 8 and MariaDB 10.6+): ``SELECT … FOR UPDATE SKIP LOCKED``, then ``UPDATE``
- ``sqlite``: one ``BEGIN IMMEDIATE`` transaction with ``UPDATE … RETURNING``

New tasks go in through ``insert()`` and ``insert_many()`` (see
:mod:`dbqueue.claiming.inserting`), which carry PostgreSQL's NOTIFY along.
A worker's batch of successes is stored by ``write_held()`` (see
:mod:`dbqueue.claiming.storing`). Completing or failing a single claimed task
is vendor-neutral and lives on the model (``Task.mark_succeeded`` /
``Task.mark_failed``).

Paused queues (``QueueState.paused``, set in the admin) are left out of a claim
here, before the vendor module runs, so that pausing behaves the same on every
vendor and the claiming SQL stays as it is. See :func:`paused_queues` for why
the paused names are cached for a second.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Sequence
from types import ModuleType

from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F
from django.utils import timezone

from dbqueue import exceptions, models
from dbqueue.claiming import listen, mysql, postgresql, sqlite
from dbqueue.claiming.inserting import insert, insert_many, streams
from dbqueue.claiming.storing import column_of, delete_by_pk, delete_held, write_held
from dbqueue.conf import settings

PAUSED_CACHE_TTL = 1.0  # seconds a process trusts its list of paused queues

__all__ = [
    "any_due",
    "claim",
    "column_of",
    "delete_by_pk",
    "delete_held",
    "insert",
    "insert_many",
    "notify",
    "release",
    "streams",
    "wait_for_schedules",
    "wait_for_work",
    "write_held",
]

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

    `queues=None` claims from every queue. Paused queues are skipped. The
    tasks come back in claiming order: priority (highest first), then
    run_after, then enqueue order.
    """
    alias = using or models.queue_db()
    connection = connections[alias]
    now = now or timezone.now()
    paused = paused_queues(alias)
    if paused:
        queues = _unpaused(alias, queues, paused, now)
        if not queues:
            return []
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


def any_due(
    queues: Sequence[str] | None,
    *,
    using: str | None = None,
    now: datetime.datetime | None = None,
) -> bool:
    """Return whether some due task waits in `queues` (None: every queue), paused ones aside.

    An empty claim does not prove there is none: on MySQL and MariaDB a claim
    that loses a race for its few candidates comes back empty while the rest
    of the queue waits, and on every vendor rows another worker is claiming
    stay QUEUED until it commits. A burst worker asks this before it stops.
    """
    alias = using or models.queue_db()
    due = models.Task.objects.using(alias).ready(queues, now or timezone.now())
    paused = paused_queues(alias)
    if paused:
        due = due.exclude(queue__in=paused)
    return due.order_by().exists()


def paused_queues(
    using: str | None = None, *, clock: Callable[[], float] = time.monotonic
) -> frozenset[str]:
    """Return the names of the paused queues, as read at most PAUSED_CACHE_TTL seconds ago.

    A claim is the hottest query a worker makes, and the paused list almost
    never changes, so each process reads it once a second rather than once
    per claim: on a busy worker that is one tiny primary-key-table read per
    second instead of one per batch. The price is that a pause takes up to
    PAUSED_CACHE_TTL to reach every worker (the batch claimed meanwhile still
    runs). A subquery in each vendor's claim SQL would have been exact but
    costs a read of the state table in every claim, on three SQL dialects.
    """
    alias = using or models.queue_db()
    now = clock()
    cached = _paused_cache.get(alias)
    if cached is not None and cached[0] > now:
        return cached[1]
    names = frozenset(
        models.QueueState.objects.using(alias).paused().values_list("name", flat=True)
    )
    _paused_cache[alias] = (now + PAUSED_CACHE_TTL, names)
    return names


def forget_paused() -> None:
    """Drop this process's cached paused list, so the next claim reads it again.

    Called after a pause or resume made in this process (the admin, tests);
    other processes see the change within PAUSED_CACHE_TTL.
    """
    _paused_cache.clear()
    _due_queues_cache.clear()


def _unpaused(
    alias: str,
    queues: Sequence[str] | None,
    paused: frozenset[str],
    now: datetime.datetime,
) -> list[str]:
    """Return the queues to claim from once the paused ones are left out.

    A worker serving every queue (``queues=None``) has no list to remove
    names from, and the vendor modules take an allow-list only. While some
    queue is paused, it claims from the queues that have due tasks instead,
    read at most once per PAUSED_CACHE_TTL: a queue that appears meanwhile
    waits up to that long for its first claim.
    """
    if queues is not None:
        return [name for name in queues if name not in paused]
    cached = _due_queues_cache.get(alias)
    tick = time.monotonic()
    if cached is None or cached[0] <= tick:
        names = frozenset(
            models.Task.objects.using(alias)
            .ready(None, now)
            .order_by()
            .values_list("queue", flat=True)
            .distinct()
        )
        cached = (tick + PAUSED_CACHE_TTL, names)
        _due_queues_cache[alias] = cached
    return sorted(cached[1] - paused)


_paused_cache: dict[str, tuple[float, frozenset[str]]] = {}
_due_queues_cache: dict[str, tuple[float, frozenset[str]]] = {}


def release(
    tasks: Sequence[models.Task], worker_id: str, *, using: str | None = None
) -> int:
    """Put claimed tasks that never started back in the queue, as if never claimed."""
    if not tasks:
        return 0
    alias = using or models.queue_db()
    released: int = (
        models.Task.objects.using(alias)
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
    if released:
        for queue in sorted({task.queue for task in tasks}):
            notify(queue, using=alias)
    return released


def notify(
    queue: str,
    *,
    due: datetime.datetime | None = None,
    using: str | None = None,
) -> None:
    """Tell idle workers that `queue` has a task due at `due` (default: now), on commit.

    For writes that put tasks back in the queue (a retry, a release, a
    resumed queue); enqueue sends its own with the INSERT. PostgreSQL
    delivers a NOTIFY only on commit, so a rolled-back change wakes nobody.
    Other vendors have no such channel: their workers poll.
    """
    connection = connections[using or models.queue_db()]
    if connection.vendor == "postgresql":
        now = timezone.now()
        listen.notify(connection, listen.notices([(queue, due or now)], now))


def wait_for_work(
    timeout: float,
    *,
    queues: Sequence[str] | None = None,
    using: str | None = None,
) -> bool | None:
    """Block up to `timeout` seconds until a task of `queues` (None: any) is due; True if so.

    Return False if none came, and None at once where the database has no
    notification channel: the caller then sleeps its poll interval instead.
    See :mod:`dbqueue.claiming.listen`.
    """
    connection = connections[using or models.queue_db()]
    if connection.vendor != "postgresql":
        return None
    return listen.wait_for_work(connection, timeout, queues)


def wait_for_schedules(timeout: float, *, using: str | None = None) -> bool | None:
    """Block up to `timeout` seconds for a change to any schedule; True if one came.

    None at once where the database has no notification channel.
    """
    connection = connections[using or models.queue_db()]
    if connection.vendor != "postgresql":
        return None
    return listen.wait_for_schedules(connection, timeout)


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


def table_estimate(table: str, *, using: str | None = None) -> int | None:
    """Return the planner's estimate of `table`'s rows, or None where there is none.

    For the admin's list pages, which must not count a table of millions.
    PostgreSQL keeps pg_class.reltuples and InnoDB information_schema's
    TABLE_ROWS (both refreshed by ANALYZE, so only roughly right); SQLite
    keeps no such statistic.
    """
    connection = connections[using or models.queue_db()]
    if connection.vendor == "postgresql":
        sql = "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass"
        params = [connection.ops.quote_name(table)]
    elif connection.vendor == "mysql":
        sql = (
            "SELECT TABLE_ROWS FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s"
        )
        params = [table]
    else:
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    except DatabaseError:
        return None
    if row is None or row[0] is None or int(row[0]) < 0:
        return None
    return int(row[0])
