"""Claiming on SQLite 3.35+, the embedded default.

SQLite has no row locks and no SKIP LOCKED: one writer holds the whole
database. Claims are made correct by taking that write lock first, with
``BEGIN IMMEDIATE``. A deferred transaction that reads and then tries to write
can fail at once with SQLITE_BUSY when another connection wrote in between
(the busy timeout does not help there); an immediate one waits for the lock
under the busy timeout instead. See https://www.sqlite.org/lang_transaction.html
The UPDATE … RETURNING (3.35+) then picks and marks the rows in one statement.
"""

from __future__ import annotations

import datetime
import sqlite3
import time
from typing import Any

from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper

from dbqueue import models

NO_WAIT = datetime.timedelta(0)
WAL_RETRY_PAUSE = 0.05  # seconds between attempts to switch to WAL

CLAIM_SQL = """
UPDATE dbqueue_task
SET status = 'RUNNING',
    locked_by = %s,
    locked_until = %s,
    started_at = %s,
    attempts = attempts + 1
WHERE id IN (
    SELECT id FROM dbqueue_task
    WHERE status = 'QUEUED' AND run_after <= %s {queue_filter}
    ORDER BY priority DESC, run_after, id
    LIMIT %s
)
RETURNING *
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
    adapt = connection.ops.adapt_datetimefield_value
    queue_filter = ""
    queue_params: list[Any] = []
    if queues is not None:
        queue_filter = f"AND queue IN ({', '.join(['%s'] * len(queues))})"
        queue_params = list(queues)
    sql = CLAIM_SQL.format(queue_filter=queue_filter)

    def params(waited: datetime.timedelta) -> list[Any]:
        return [
            worker_id,
            adapt(locked_until + waited),
            adapt(now + waited),
            adapt(now + waited),
            *queue_params,
            limit,
        ]

    if connection.in_atomic_block:
        # Already inside the caller's transaction (a test, or sync mode).
        return list(models.Task.objects.using(alias).raw(sql, params(NO_WAIT)))
    connection.ensure_connection()
    with connection.cursor() as cursor:
        asked = time.monotonic()
        cursor.execute("BEGIN IMMEDIATE")
        # Getting the write lock can take up to the busy timeout while a web
        # process writes. The lease must start when the claim is stored, not
        # when it was asked for: a lease that ran out while this claim waited
        # would let the rescuer take the task from this live worker, which
        # would then run it a second time (seen under the busy-writer test).
        waited = datetime.timedelta(seconds=time.monotonic() - asked)
        try:
            tasks = list(models.Task.objects.using(alias).raw(sql, params(waited)))
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")
    return tasks


def version_problem(connection: BaseDatabaseWrapper) -> str | None:
    if sqlite3.sqlite_version_info < (3, 35):
        return f"SQLite {sqlite3.sqlite_version} is older than 3.35, the first with UPDATE … RETURNING."
    return None


def prepare(connection: BaseDatabaseWrapper) -> None:
    """Switch a file database to write-ahead logging.

    In WAL mode readers never block the writer nor the writer readers, so the
    web process can read while workers claim. The mode is stored in the
    database file, so setting it once is enough; an in-memory database
    cannot use it and is left alone.
    """
    if connection.is_in_memory_db():  # type: ignore[attr-defined]
        return
    # Leaving the rollback journal takes an exclusive lock, and SQLite answers
    # "database is locked" at once, without waiting out the busy timeout, while
    # any other connection reads or writes (a web process saving a form as the
    # cluster starts). So retry for as long as that timeout would have waited.
    # https://www.sqlite.org/wal.html#activating_and_configuring_wal_mode
    options = connection.settings_dict.get("OPTIONS", {})
    deadline = time.monotonic() + float(options.get("timeout", 5.0))
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() == "wal":
            return
        while True:
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                return
            except OperationalError as exc:
                if not is_transient(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(WAL_RETRY_PAUSE)


def is_transient(exc: BaseException) -> bool:
    return "database is locked" in str(exc) or "database table is locked" in str(exc)
