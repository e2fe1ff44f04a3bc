"""Claiming on PostgreSQL 12+: one statement, no round trip between lock and update."""

from __future__ import annotations

import datetime
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from dbqueue import models

MIN_VERSION = (12,)

# The candidate rows are chosen in a CTE rather than in an IN (subquery): with
# a subquery the planner may turn the join into a nested loop that ignores the
# LIMIT and locks and updates more rows than asked for (the same reason Oban
# and Procrastinate keep the SELECT … FOR UPDATE in a CTE). SKIP LOCKED makes
# concurrent claimers pass over each other's rows instead of queueing behind
# them; see https://www.postgresql.org/docs/current/sql-select.html#SQL-FOR-UPDATE-SHARE
CLAIM_SQL = """
WITH candidates AS (
    SELECT id FROM dbqueue_task
    WHERE status = 'QUEUED' AND run_after <= %(now)s {queue_filter}
    ORDER BY priority DESC, run_after, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE dbqueue_task AS task
SET status = 'RUNNING',
    locked_by = %(worker_id)s,
    locked_until = %(locked_until)s,
    started_at = %(now)s,
    attempts = task.attempts + 1
FROM candidates
WHERE task.id = candidates.id
RETURNING task.*
"""


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
    params: dict[str, Any] = {
        "now": now,
        "limit": limit,
        "worker_id": worker_id,
        "locked_until": locked_until,
    }
    queue_filter = ""
    if queues is not None and len(queues) == 1:
        # Equality lets the planner read the claim index already in claiming
        # order and stop after `limit` rows; with ANY() it must sort.
        queue_filter = "AND queue = %(queue)s"
        params["queue"] = queues[0]
    elif queues is not None:
        queue_filter = "AND queue = ANY(%(queues)s)"
        params["queues"] = queues
    sql = CLAIM_SQL.format(queue_filter=queue_filter)
    # A single statement in autocommit mode is its own transaction, so the
    # rows are locked only for as long as the UPDATE takes.
    return list(models.Task.objects.using(alias).raw(sql, params))


def version_problem(connection: BaseDatabaseWrapper) -> str | None:
    version = connection.pg_version  # type: ignore[attr-defined]
    if version < 120000:
        return f"PostgreSQL {version // 10000} is older than 12, the first with the features claiming needs."
    return None


def prepare(connection: BaseDatabaseWrapper) -> None:
    """Nothing to set up: the server defaults suit claiming."""


CHANNEL = "dbqueue"
# deadlock_detected, serialization_failure, lock_not_available
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})


def is_transient(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc
    return (
        getattr(cause, "sqlstate", None) in TRANSIENT_SQLSTATES
        or getattr(cause, "pgcode", None) in TRANSIENT_SQLSTATES
    )


def notify(connection: BaseDatabaseWrapper, queue: str) -> None:
    # Sent on the caller's connection, inside its transaction: PostgreSQL
    # queues it until COMMIT and drops it on ROLLBACK, so a worker is never
    # woken for a task it cannot see yet.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, queue])


def wait_for_work(connection: BaseDatabaseWrapper, timeout: float) -> bool | None:
    """LISTEN on the worker's connection and wait for a NOTIFY from enqueue.

    Notifications that arrived while the worker was busy are already queued
    on the connection, so this returns at once for them. Needs psycopg 3
    (Connection.notifies); with psycopg2 the worker falls back to polling.
    """
    connection.ensure_connection()
    raw = connection.connection
    if raw is None or not hasattr(raw, "notifies"):
        return None
    # A new session (the first wait, or after a reconnect) is not subscribed.
    # A task committed between the worker's last claim and this LISTEN sent
    # its NOTIFY to nobody, so report "woken": the worker claims once more
    # before it sleeps, and nothing sent before the subscription is missed.
    if getattr(raw, "_dbqueue_listening", False) is not True:
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {CHANNEL}")
        raw._dbqueue_listening = True
        return True
    # notifies() is psycopg's own call, outside Django's cursor: without the
    # wrapper a server restart raised psycopg.OperationalError, which no
    # `except DatabaseError` caught, and the worker died. Wrapped, it is
    # Django's OperationalError and marks the connection unusable, so the
    # worker's next round reconnects.
    with connection.wrap_database_errors:
        return any(True for _ in raw.notifies(timeout=timeout, stop_after=1))
