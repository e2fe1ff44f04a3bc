"""Claiming on MySQL 8+ and MariaDB 10.6+ (Django's vendor "mysql" for both).

Neither has UPDATE … RETURNING (MariaDB's RETURNING covers INSERT and DELETE
only), so a claim is a short transaction of a few statements:

1. read candidate ids in claiming order, without locking (a plain read);
2. lock them through the primary key with FOR UPDATE SKIP LOCKED, one window
   of `limit` ids at a time, until `limit` are locked or the windows run out;
3. mark the locked rows RUNNING.

Why not one ``SELECT … ORDER BY … LIMIT n FOR UPDATE SKIP LOCKED``, as on
PostgreSQL: InnoDB locks each row as it reads it, before sorting and before the
LIMIT. Whenever the claim index cannot deliver rows already in claiming order
(several queues, or a server without descending indexes) the plan has a
filesort, so the statement locks every due row while it returns only n, and
concurrent workers find nothing to claim (seen on MariaDB 10.11). Reading the
candidates without locks and then locking exactly one window of ids through the
primary key makes a worker lock only rows it takes. Rows another worker holds
are skipped; rows it already claimed and committed fail ``status = 'QUEUED'``.
tests/integration/test_claiming.py proves both.
See https://mariadb.com/kb/en/select/#skip-locked and
https://dev.mysql.com/doc/refman/8.0/en/innodb-locking-reads.html
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Model

from dbqueue import models

CANDIDATE_WINDOWS = 3  # windows of `limit` candidates tried per claim
# ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT
TRANSIENT_ERRORS = frozenset({1213, 1205})

LOCK_SQL = (
    "SELECT * FROM dbqueue_task FORCE INDEX (PRIMARY) "
    "WHERE id IN ({ids}) AND status = 'QUEUED' FOR UPDATE SKIP LOCKED"
)


def claim_rows(
    connection: BaseDatabaseWrapper,
    *,
    alias: str,
    worker_id: str,
    queues: list[str] | None,
    limit: int,
    now: datetime.datetime,
    locked_until: datetime.datetime,
) -> list[models.Task]:
    tasks = models.Task.objects.using(alias)
    pk = models.Task._meta.get_field("id")
    with transaction.atomic(using=alias):
        candidates = list(
            tasks.ready(queues, now).values_list("id", flat=True)[
                : limit * CANDIDATE_WINDOWS
            ]
        )
        locked: list[models.Task] = []
        position = 0
        while position < len(candidates) and len(locked) < limit:
            window = candidates[position : position + limit - len(locked)]
            position += len(window)
            params = [pk.get_db_prep_value(value, connection) for value in window]
            sql = LOCK_SQL.format(ids=", ".join(["%s"] * len(window)))
            locked.extend(tasks.raw(sql, params))
        if not locked:
            return []
        tasks.filter(id__in=[t.id for t in locked]).update(
            status=models.Status.RUNNING,
            locked_by=worker_id,
            locked_until=locked_until,
            started_at=now,
            attempts=F("attempts") + 1,
        )
    for task in locked:
        task.status = models.Status.RUNNING
        task.locked_by = worker_id
        task.locked_until = locked_until
        task.started_at = now
        task.attempts += 1
    return locked


def delete_by_pk(
    connection: BaseDatabaseWrapper, model: type[Model], ids: Sequence[Any]
) -> int:
    """DELETE the rows with these primary keys, and read no row past the last.

    InnoDB (MariaDB 10.11 here) answers ``DELETE … WHERE id IN (a, b, c)`` by
    reading on past `c` to the next row, and waits for that row's lock even
    at READ COMMITTED, where an UPDATE would read past it (a "semi-consistent
    read"). When that row is one another pruner or a worker holds, a delete
    of rows nobody else wants blocks until the other commits or the lock
    wait times out. ``LIMIT`` with the number of ids stops the scan at the last.
    """
    table = connection.ops.quote_name(model._meta.db_table)
    pk = model._meta.pk
    if pk is None or pk.column is None:
        raise TypeError(f"{model.__name__} has no primary key column.")
    column = connection.ops.quote_name(pk.column)
    params = [pk.get_db_prep_value(value, connection) for value in ids]
    marks = ", ".join(["%s"] * len(params))
    # Quoted names of our own tables, placeholders and a count: no user text.
    sql = f"DELETE FROM {table} WHERE {column} IN ({marks}) LIMIT {len(params)}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def version_problem(connection: BaseDatabaseWrapper) -> str | None:
    version = connection.mysql_version  # type: ignore[attr-defined]
    if connection.mysql_is_mariadb:  # type: ignore[attr-defined]
        if version < (10, 6):
            return f"MariaDB {version[0]}.{version[1]} is older than 10.6, the first with SKIP LOCKED."
    elif version < (8, 0, 1):
        return f"MySQL {'.'.join(map(str, version))} is older than 8.0.1, the first with SKIP LOCKED."
    return None


def prepare(connection: BaseDatabaseWrapper) -> None:
    """Nothing to set up: Django already runs MySQL at READ COMMITTED."""


def is_transient(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc
    args: tuple[object, ...] = getattr(cause, "args", ())
    return bool(args) and args[0] in TRANSIENT_ERRORS
