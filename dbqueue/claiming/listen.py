"""PostgreSQL's LISTEN/NOTIFY: how idle workers learn of work without polling.

Every write that puts a task in the queue, as new (enqueue), again (a retry,
a task put back at shutdown or released unstarted) or un-paused, sends a
NOTIFY in its own transaction, so it is delivered on commit and dropped on
rollback. Two channels:

- ``dbqueue``, payload the queue's name: a task there is due now;
- ``dbqueue_later``, payload ``"<unix time> <queue>"``: a task there falls due
  then (a countdown, an eta, a retry's backoff).

An idle worker LISTENs on both. It claims at once for the first, and for the
second keeps the earliest time it heard of and claims then. When it first
subscribes (and again after a reconnect) it cannot know what was sent before,
so it claims once and asks the table when the next queued task falls due. A
worker polls on its own only every DBQUEUE_LISTEN_POLL_INTERVAL, as a safety
net: the notifications are the path.

The scheduler sleeps until its next schedule is due and LISTENs on
``dbqueue_schedules``, which a trigger on the schedule table notifies for any
change (migration 0005).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from dbqueue import models

CHANNEL = "dbqueue"
LATER_CHANNEL = "dbqueue_later"
# Sent by a trigger on the schedule table (migration 0005) for any change.
SCHEDULES_CHANNEL = "dbqueue_schedules"

Notice = tuple[str, str]  # (channel, payload)


def notices(
    due: Iterable[tuple[str, datetime.datetime]], now: datetime.datetime
) -> list[Notice]:
    """The NOTIFYs for tasks of these (queue, run_after): one per queue, its earliest."""
    earliest: dict[str, datetime.datetime] = {}
    for queue, run_after in due:
        if queue not in earliest or run_after < earliest[queue]:
            earliest[queue] = run_after
    return [
        (CHANNEL, queue)
        if run_after <= now
        else (LATER_CHANNEL, f"{run_after.timestamp():.6f} {queue}")
        for queue, run_after in sorted(earliest.items())
    ]


def with_notify(
    sql: str, params: list[Any], sent: Sequence[Notice]
) -> tuple[str, list[Any]]:
    """Return a write statement that also sends these NOTIFYs, as one statement.

    A data-modifying statement in WITH runs whether or not it is read, and
    the notifications go out when its transaction commits: one round trip,
    one commit, where a separate SELECT pg_notify() outside a transaction
    is a second commit.
    """
    if not sent:
        return sql, params
    calls = ", ".join(["pg_notify(%s, %s)"] * len(sent))
    extra = [value for notice in sent for value in notice]
    return f"WITH written AS ({sql}) SELECT {calls}", [*params, *extra]


def notify(connection: BaseDatabaseWrapper, sent: Sequence[Notice]) -> None:
    """Send these NOTIFYs on the caller's connection, when its transaction commits."""
    if not sent:
        return
    calls = ", ".join(["pg_notify(%s, %s)"] * len(sent))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {calls}", [value for notice in sent for value in notice]
        )


def wait_for_work(
    connection: BaseDatabaseWrapper, timeout: float, queues: Sequence[str] | None
) -> bool | None:
    """Wait up to `timeout` seconds for work in `queues` (None: any); True if there is some.

    Return True when a task is due: a NOTIFY on CHANNEL, or the earliest
    time heard on LATER_CHANNEL has come. Return None at once where the
    driver cannot LISTEN (psycopg2): the worker polls instead.
    """
    raw = _driver(connection)
    if raw is None:
        return None
    state = getattr(raw, "_dbqueue_listen", None)
    if state is None:
        # A new session (the first wait, or after a reconnect) is not
        # subscribed: what was sent before it reached nobody. So claim once
        # more, and learn from the table when the next queued task is due.
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {CHANNEL}; LISTEN {LATER_CHANNEL}")
        raw._dbqueue_listen = _Listening(next_due(connection, queues))
        return True
    deadline = time.monotonic() + timeout
    # notifies() is psycopg's own call, outside Django's cursor: without the
    # wrapper a server restart raised psycopg.OperationalError, which no
    # `except DatabaseError` caught, and the worker died. Wrapped, it is
    # Django's OperationalError and marks the connection unusable, so the
    # worker's next round reconnects.
    with connection.wrap_database_errors:
        while True:
            if state.due_at is not None and state.due_at <= time.time():
                state.due_at = None
                return True
            wait = deadline - time.monotonic()
            if state.due_at is not None:
                wait = min(wait, state.due_at - time.time())
            if wait <= 0:
                return False
            for notification in raw.notifies(timeout=wait, stop_after=1):
                if notification.channel == CHANNEL:
                    if queues is None or notification.payload in queues:
                        return True
                    continue
                when, _, queue = notification.payload.partition(" ")
                if queues is None or queue in queues:
                    state.heard(float(when))


def wait_for_schedules(connection: BaseDatabaseWrapper, timeout: float) -> bool | None:
    """Wait up to `timeout` seconds for a change to the schedule table; True if one came.

    The scheduler's wait between due times. True at once on a new session
    (the change may have come before the LISTEN); None where the driver
    cannot LISTEN.
    """
    raw = _driver(connection)
    if raw is None:
        return None
    if not getattr(raw, "_dbqueue_schedules", False):
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {SCHEDULES_CHANNEL}")
        raw._dbqueue_schedules = True
        return True
    with connection.wrap_database_errors:
        return any(True for _ in raw.notifies(timeout=timeout, stop_after=1))


def _driver(connection: BaseDatabaseWrapper) -> Any:
    """The open driver connection, if it can LISTEN (psycopg 3's notifies()), else None.

    A session's subscriptions are kept as attributes of this object, so a
    reconnect, which makes a new one, subscribes again.
    """
    connection.ensure_connection()
    raw = connection.connection
    return raw if raw is not None and hasattr(raw, "notifies") else None


class _Listening:
    """What a subscribed session knows: the earliest time a queued task falls due."""

    def __init__(self, due_at: float | None) -> None:
        self.due_at = due_at

    def heard(self, due_at: float) -> None:
        if self.due_at is None or due_at < self.due_at:
            self.due_at = due_at


def next_due(
    connection: BaseDatabaseWrapper, queues: Sequence[str] | None
) -> float | None:
    """When the earliest queued task of `queues` falls due (unix time), or None.

    Read once per session: it reads the claim index's entries for these
    queues, which is cheap unless millions of tasks wait for a later time.
    """
    table = connection.ops.quote_name(models.Task._meta.db_table)
    sql = f"SELECT extract(epoch FROM min(run_after)) FROM {table} WHERE status = 'QUEUED'"  # noqa: S608
    params: list[Any] = []
    if queues is not None:
        sql += " AND queue = ANY(%s)"
        params.append(list(queues))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None or row[0] is None else float(row[0])
