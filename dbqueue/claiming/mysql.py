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
from django.db.models import F, Field, Model

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


# Rows per UPDATE of update_by_pk(): each row adds a WHEN to every CASE, and
# each CASE is scanned for each row.
UPDATE_ROWS = 200


def update_by_pk(
    connection: BaseDatabaseWrapper,
    model: type[Model],
    fields: Sequence[Field[Any, Any]],
    rows: Sequence[tuple[Any, Sequence[Any]]],
) -> None:
    """Write each (primary key, values of `fields`) row, UPDATE_ROWS rows to a statement.

    mysqlclient's executemany() sends an UPDATE as one statement per row,
    so a worker's batch of 50 successes cost 50 round trips, most of a
    no-op task's time on MariaDB. One UPDATE sets each column with a CASE on
    the key, or to one value where every row has the same (the status, the
    released lease). `rows` hold values already prepared for the database.
    """
    table = connection.ops.quote_name(model._meta.db_table)
    pk = model._meta.pk
    if pk is None or pk.column is None:
        raise TypeError(f"{model.__name__} has no primary key column.")
    key = connection.ops.quote_name(pk.column)
    for start in range(0, len(rows), UPDATE_ROWS):
        chunk = rows[start : start + UPDATE_ROWS]
        assignments: list[str] = []
        params: list[Any] = []
        for position, field in enumerate(fields):
            column = connection.ops.quote_name(str(field.column))
            first = chunk[0][1][position]
            if all(values[position] == first for _, values in chunk):
                assignments.append(f"{column} = %s")
                params.append(first)
                continue
            assignments.append(
                f"{column} = CASE {key}{' WHEN %s THEN %s' * len(chunk)} END"
            )
            for pk_value, values in chunk:
                params += (pk_value, values[position])
        marks = ", ".join(["%s"] * len(chunk))
        params += [pk_value for pk_value, _ in chunk]
        # Quoted names of our own columns, and placeholders: no user text.
        sql = f"UPDATE {table} SET {', '.join(assignments)} WHERE {key} IN ({marks})"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


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
