"""A throwaway PostgreSQL database holding a production-sized dbqueue history.

bench.admin_pages and bench.metrics_scrape time pages and scrapes on it. The
rows are written in SQL, a few statements for a million rows: each table gets
one real row through the ORM, and the rest are copies of it (copy_rows) with
some columns computed from the copy's number `g`, so every other column,
today's or a future migration's, holds a value dbqueue itself wrote.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from bench import servers

QUEUES = ["default", "emails", "reports", "billing", "imports"]
FUNCS = [f"bench.tasks.job_{n}" for n in range(20)]


@contextlib.contextmanager
def database(name: str, settings: str, *, keep: bool = False) -> Iterator[bool]:
    """Set Django up on a new database `name`, dropped at the end unless `keep`.

    Yield whether it is new (to be filled): with `keep`, a database that a
    previous run kept is used as it is.
    """
    server = servers.Postgres()
    fresh = not (keep and server.exists(name))
    if fresh:
        server.create(name)
    os.environ["DBQUEUE_BENCH_DATABASE_URL"] = server.url_for(name)
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    import django
    from django.db import connections

    django.setup()
    try:
        yield fresh
    finally:
        if not keep:
            connections.close_all()
            server.drop(name)


def fill(tasks: int, failed: int, *, queued: int = 3, days: int = 30) -> None:
    """Migrate, then add `tasks` tasks and `failed` dead letters from the last `days` days.

    Most tasks are finished, as on a busy production table: `queued` percent
    are QUEUED (all due), 1 % RUNNING, 3 % FAILED, the rest SUCCEEDED. Ids
    grow with time, as dbqueue's UUIDv7 ids do.
    """
    from django.core.management import call_command
    from django.db import connection

    from dbqueue import api, models

    call_command("migrate", verbosity=0)
    started = time.monotonic()
    template = api.build_task("bench.tasks.noop", (), {})
    template.save()
    failed_template = models.FailedTask.objects.create(
        task_id=template.id,
        name="bench.tasks.noop",
        func="bench.tasks.noop",
        payload=template.payload,
        queue="default",
        error="ValueError: no",
        exception_class="builtins.ValueError",
        traceback="Traceback (most recent call last):\n  ...\nValueError: no",
        enqueued_at=template.enqueued_at,
    )
    age = f"now() - make_interval(secs => (g::float / {tasks}) * {days} * 86400)"
    is_queued, is_running = f"g % 100 < {queued}", f"g % 100 = {queued}"
    task_values = {
        "id": _uuid7(age),
        "status": f"CASE WHEN {is_queued} THEN 'QUEUED' WHEN {is_running} THEN 'RUNNING' "
        f"WHEN g % 100 < {queued + 4} THEN 'FAILED' ELSE 'SUCCEEDED' END",
        "queue": _pick(QUEUES, "queue"),
        "func": _pick(FUNCS, "func"),
        "name": _pick(FUNCS, "func"),
        "group": "'batch-' || (g % 1000)",
        "enqueued_at": age,
        "run_after": age,
        "started_at": f"CASE WHEN {is_queued} THEN NULL ELSE {age} END",
        "finished_at": f"CASE WHEN g % 100 <= {queued} THEN NULL "
        f"ELSE {age} + interval '1 second' END",
        "attempts": f"CASE WHEN {is_queued} THEN 0 ELSE 1 END",
        "locked_until": f"CASE WHEN {is_running} THEN now() + interval '30 seconds' END",
        "unique_key": "NULL",
        "unique_hold": "NULL",
    }
    failed_age = (
        f"now() - make_interval(secs => (g::float / {failed}) * {days} * 86400)"
    )
    failed_values = {
        "id": _uuid7(failed_age),
        "task_id": "gen_random_uuid()",
        "queue": _pick(QUEUES, "queue"),
        "func": _pick(FUNCS, "func"),
        "name": _pick(FUNCS, "func"),
        "exception_class": "(ARRAY['builtins.ValueError','builtins.KeyError',"
        "'django.db.utils.OperationalError','builtins.TimeoutError'])[g % 4 + 1]",
        "failed_at": failed_age,
    }
    with connection.cursor() as cursor:
        for model, row, values, count in (
            (models.Task, template.pk, task_values, tasks - 1),
            (models.FailedTask, failed_template.pk, failed_values, failed - 1),
        ):
            columns = [field.column for field in model._meta.concrete_fields]
            copy_rows(cursor, model._meta.db_table, columns, row, values, 1, count)
        # As autovacuum leaves a busy table: statistics and the visibility
        # map current, so index-only scans skip the heap.
        cursor.execute("VACUUM ANALYZE")
    print(
        f"filled {tasks:,} tasks and {failed:,} dead letters in "
        f"{time.monotonic() - started:.0f}s",
        file=sys.stderr,
    )


def copy_rows(
    cursor: Any,
    table: str,
    columns: list[str],
    template: object,
    values: dict[str, str],
    first: int,
    last: int,
) -> None:
    """INSERT a copy of row `template` for each g in first..last, with `values` as SQL per column.

    `cursor` is a DB-API cursor or a psycopg connection: anything with
    execute(sql, params).
    """
    # The modulo operator, doubled for the driver's placeholders.
    select = ", ".join(values.get(c, f't."{c}"') for c in columns).replace("%", "%%")
    names = ", ".join(f'"{c}"' for c in columns)
    cursor.execute(
        f"INSERT INTO {table} ({names}) SELECT {select} FROM {table} t, "
        "generate_series(%s::bigint, %s::bigint) g WHERE t.id = %s",
        [first, last, template],
    )


def _uuid7(moment: str) -> str:
    """SQL for a UUIDv7-shaped id at `moment`, ordered by time as dbqueue's ids are."""
    millis = f"lpad(to_hex((extract(epoch FROM {moment}) * 1000)::bigint), 12, '0')"
    return f"({millis} || '7' || substr(md5(random()::text || g::text), 1, 19))::uuid"


def _pick(values: list[str], salt: str) -> str:
    """SQL for one of `values`, the same for a row's every use of `salt`.

    A hash of g rather than g itself, so that the picks are spread
    independently of each other and of the status (which follows g % 100):
    every queue has queued rows, and every function runs on every queue.
    """
    quoted = ",".join(f"'{v}'" for v in values)
    return (
        f"(ARRAY[{quoted}])[(hashtext('{salt}' || g) & 2147483647) % {len(values)} + 1]"
    )
