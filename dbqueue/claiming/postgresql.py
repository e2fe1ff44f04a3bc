"""Claiming on PostgreSQL 12+: one statement, no round trip between lock and update."""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import DateTimeField, Field

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
RETURNING {columns}
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
    returned = _returned(connection)
    sql = CLAIM_SQL.format(queue_filter=queue_filter, columns=returned.columns)
    # A single statement in autocommit mode is its own transaction, so the
    # rows are locked only for as long as the UPDATE takes.
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    claimed = {
        "status": models.Status.RUNNING.value,
        "locked_by": worker_id,
        "locked_until": locked_until,
        "started_at": now,
    }
    values = []
    for row in rows:
        fields = dict(zip(returned.names, row, strict=True))
        for name, convert, col in returned.converters:
            fields[name] = convert(fields[name], col, connection)
        fields.update(claimed)
        values.append(fields)
    return models.Task.from_rows(alias, values)


# The claim writes these, so its rows come back without them and each task
# gets the values written: every timestamp returned costs a parse in Python
# (Django's loader), and a claim is a worker's busiest read.
SET_BY_CLAIM = ("status", "locked_by", "locked_until", "started_at")


@dataclasses.dataclass(frozen=True)
class _Returned:
    """The columns a claim returns, and how the ORM would turn each into a field's value.

    The tasks are built from the rows directly (models.Task.from_rows())
    rather than through QuerySet.raw(), which costs about twice as much per
    row in a worker's busiest query: 31 against 17 µs of CPU per task for
    claims of 50 (the columns above left out as well).
    """

    columns: str
    names: tuple[str, ...]
    # (attribute, converter, column) for each converter a field has, as
    # SQLCompiler.get_converters() finds them; called as converter(value, column, connection).
    converters: tuple[tuple[str, Callable[..., Any], Any], ...]


_returned_by_alias: dict[tuple[str, bool], _Returned] = {}


def _returned(connection: BaseDatabaseWrapper) -> _Returned:
    # Django's loader for timestamptz parses the text in Python, about 4 µs
    # a value, and two of a claimed task's timestamps are never NULL. When
    # Django gives datetimes in UTC (USE_TZ, and no TIME_ZONE for the
    # database), the claim returns them as UTC wall-clock timestamps
    # (AT TIME ZONE 'UTC', whatever the session's zone), which psycopg
    # reads in C, and marks them UTC: the values Django would give, for
    # about 1 µs each. Another zone keeps Django's loader, which knows
    # which of a daylight-saving change's repeated hours a value is in.
    utc = connection.timezone is datetime.UTC
    key = (connection.alias, utc)
    returned = _returned_by_alias.get(key)
    if returned is None:
        fields = [
            field
            for field in models.Task._meta.concrete_fields
            if field.attname not in SET_BY_CLAIM
        ]
        quote = connection.ops.quote_name
        columns = []
        converters: list[tuple[str, Callable[..., Any], Any]] = []
        for field in fields:
            column = f"task.{quote(str(field.column))}"
            col = field.get_col(models.Task._meta.db_table)
            field_converters = [
                *connection.ops.get_db_converters(col),
                *field.get_db_converters(connection),
            ]
            if utc and isinstance(field, DateTimeField) and not field_converters:
                column = f"{column} AT TIME ZONE 'UTC'"
                field_converters = [_as_utc]
            columns.append(column)
            converters.extend(
                (field.attname, convert, col) for convert in field_converters
            )
        returned = _returned_by_alias[key] = _Returned(
            columns=", ".join(columns),
            names=tuple(field.attname for field in fields),
            converters=tuple(converters),
        )
    return returned


def _as_utc(
    value: datetime.datetime | None, expression: Any, connection: Any
) -> datetime.datetime | None:
    return None if value is None else value.replace(tzinfo=datetime.UTC)


# The claim re-checked when a worker stores or deletes its batch. Written so
# that no index can answer it: the statistics say few rows are RUNNING, so the
# planner would read them through an index led by status (the lease index, or
# status + finished_at), and such an index holds an entry for every row version
# that was ever RUNNING since the last VACUUM, one per task claimed. A drain's
# every store then read more of them than the one before. With the status test
# out of reach, the batch's ids are found by the primary key.
HELD = "(task.status = 'RUNNING') IS TRUE AND task.locked_by = %s"


def write_held(
    connection: BaseDatabaseWrapper,
    worker_id: str,
    rows: Sequence[tuple[models.Task, dict[str, Any]]],
) -> set[uuid.UUID]:
    """Write every row's fields in one UPDATE; return the ids of the rows still held.

    The values that differ from row to row travel as one JSON document,
    turned back into rows by jsonb_to_recordset() and joined to the table
    on the primary key; a column with the same value in every row (a
    batch of successes: the status, the cleared lease, the empty error)
    is set from one parameter. One statement, one commit, one plan for a
    batch of any size, where an UPDATE per row is parsed, planned and
    executed once per task. The WHERE clause re-checks the claim, so a
    task another worker took over is left alone, and RETURNING says which
    were written.
    """
    from dbqueue.claiming.storing import column_of

    quote = connection.ops.quote_name
    fields = [column_of(name) for name in rows[0][1]]
    table = [
        [_prep(field, values[field.name]) for field in fields] for _, values in rows
    ]
    same = [all(row[i] == table[0][i] for row in table) for i in range(len(fields))]
    changes, params = [], []
    for i, field in enumerate(fields):
        column = quote(str(field.column))
        if same[i]:
            changes.append(f"{column} = %s")
            params.append(field.get_db_prep_save(table[0][i], connection))
        else:
            changes.append(f"{column} = done.{column}")
    varying = [i for i in range(len(fields)) if not same[i]]
    types = "".join(
        f", {quote(str(fields[i].column))} {fields[i].db_type(connection)}"
        for i in varying
    )
    ids = [str(task.id) for task, _ in rows]
    document = json.dumps(
        [
            {"id": id_, **{str(fields[i].column): row[i] for i in varying}}
            for id_, row in zip(ids, table, strict=True)
        ],
        default=_json_value,
    )
    # Quoted names of our own columns; the values are parameters. The ids
    # go as an array literal too, so that the planner knows how few rows
    # the primary key gives (see HELD).
    sql = f"""
        UPDATE {quote(models.Task._meta.db_table)} AS task SET {", ".join(changes)}
        FROM jsonb_to_recordset(%s::jsonb) AS done(id uuid{types})
        WHERE task.id = ANY(%s::uuid[]) AND task.id = done.id AND {HELD}
        RETURNING task.id
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, document, "{" + ",".join(ids) + "}", worker_id])
        return {row[0] for row in cursor.fetchall()}


def delete_held(
    connection: BaseDatabaseWrapper, worker_id: str, ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Delete the rows among `ids` that `worker_id` still holds, in one statement."""
    table = connection.ops.quote_name(models.Task._meta.db_table)
    sql = f"""
        DELETE FROM {table} AS task
        WHERE task.id = ANY(%s) AND {HELD}
        RETURNING task.id
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids, worker_id])
        return {row[0] for row in cursor.fetchall()}


# Values the ORM would pass on as they are. A worker makes the fields it
# stores itself, and Django's per-field checks of them (to_python(), the
# naive-datetime warning) cost more than building the rest of the row.
_PLAIN = frozenset({str, int, float, bool, type(None), list, dict})


def _prep(field: Any, value: Any) -> Any:
    if type(value) in _PLAIN or (
        type(value) is datetime.datetime and value.tzinfo is not None
    ):
        return value
    return field.get_prep_value(value)


def _json_value(value: Any) -> Any:
    # Full precision: DjangoJSONEncoder would cut microseconds to milliseconds.
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def version_problem(connection: BaseDatabaseWrapper) -> str | None:
    version = connection.pg_version  # type: ignore[attr-defined]
    if version < 120000:
        return f"PostgreSQL {version // 10000} is older than 12, the first with the features claiming needs."
    return None


def prepare(connection: BaseDatabaseWrapper) -> None:
    """Nothing to set up: the server defaults suit claiming."""


# deadlock_detected, serialization_failure, lock_not_available
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})


def is_transient(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc
    return (
        getattr(cause, "sqlstate", None) in TRANSIENT_SQLSTATES
        or getattr(cause, "pgcode", None) in TRANSIENT_SQLSTATES
    )


def execute_bound(
    connection: BaseDatabaseWrapper, sql: str, params: Sequence[Any]
) -> None:
    """Run a write with its parameters sent apart from the SQL (psycopg 3), through Django's wrapper.

    Django's own cursors quote every parameter into the SQL text on the
    client, so the server parses a new text for each task. Sent apart, the
    parameters cost less to encode, and the statement's text stays the same
    from task to task: psycopg then prepares it once the connection has run
    it ``prepare_threshold`` times, which Django leaves off unless the
    project's OPTIONS turn it on (connection poolers in transaction mode
    lose prepared statements).

    The driver's cursor is made once per connection and kept on it: making
    one per statement cost a tenth of an enqueue. Everything else is
    Django's: the wrapper logs the query with DEBUG on, runs
    execute_wrapper() hooks, and turns the driver's errors into Django's.
    """
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if not is_psycopg3:
        with connection.cursor() as wrapped:
            wrapped.execute(sql, params)
        return
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = connection.connection
    # psycopg's cursor, which the stubs do not know from Django's wrapper.
    cursor: Any = getattr(raw, "_dbqueue_bound", None)
    if cursor is None:
        from django.db.backends.postgresql.base import ServerBindingCursor

        # django-stubs type this class as Django's cursor wrapper; it is psycopg's cursor.
        factory: Any = ServerBindingCursor
        with connection.wrap_database_errors:
            cursor = raw._dbqueue_bound = factory(raw)
    if connection.queries_logged:
        connection.make_debug_cursor(cursor).execute(sql, params)
    else:
        connection.make_cursor(cursor).execute(sql, params)


def can_copy(connection: BaseDatabaseWrapper) -> bool:
    """Tell whether the driver under `connection` speaks COPY (psycopg 3 does)."""
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return bool(is_psycopg3)


def copy_rows(
    connection: BaseDatabaseWrapper,
    sql: str,
    rows: Iterable[Sequence[Any]],
    types: Sequence[str] = (),
) -> None:
    """Stream `rows` into the table with COPY … FROM STDIN, in the current transaction.

    COPY takes rows as a stream, with no SQL text to build or parse per
    row: several times the rate of a multi-row INSERT for a large batch.
    Given the columns' `types`, the rows go in PostgreSQL's binary format,
    which the driver writes and the server reads without turning a
    timestamp or a UUID into text and back (a third less time per row of
    dbqueue_task). Django's cursors have no COPY, so the driver's cursor
    does it, with errors turned into Django's exceptions all the same, and
    the statement goes in Django's query log (DEBUG) as a query would.
    """
    started = time.monotonic()
    if types:
        sql = f"{sql} (FORMAT BINARY)"
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(sql) as copy,
    ):
        if types:
            copy.set_types(types)
        count = 0
        for row in rows:
            copy.write_row(row)
            count += 1
    if connection.queries_logged:
        connection.queries_log.append(
            {
                "sql": f"{sql} -- {count} rows",
                "time": f"{time.monotonic() - started:.3f}",
            }
        )


def copy_types(
    connection: BaseDatabaseWrapper, fields: Sequence[Field[Any, Any]]
) -> tuple[str, ...]:
    """The type names a binary COPY into these fields' columns gives the driver, or ().

    Every type of dbqueue_task is one of PostgreSQL's own, which psycopg
    knows by name (``varchar(255)`` as ``varchar``); for anything else,
    COPY stays in text.
    """
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if not is_psycopg3:
        return ()
    from psycopg.postgres import types as known

    names = []
    for field in fields:
        name = str(field.db_type(connection) or "").partition("(")[0].strip()
        info = known.get(name)
        if info is None:
            return ()
        names.append(info.name)
    return tuple(names)
