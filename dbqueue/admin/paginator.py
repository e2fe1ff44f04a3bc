"""A changelist paginator that never counts a table of millions of rows.

Django's admin counts the filtered rows on every list page (and, unless
show_full_result_count is off, the whole table too). On PostgreSQL a COUNT
reads every row's visibility, so on a task table of a million rows each page
load would pay for a full scan. This paginator counts at most COUNT_LIMIT + 1
rows (``SELECT COUNT(*) FROM (SELECT id … LIMIT n)``), which the primary key
index answers in milliseconds. Past that, an unfiltered list shows the
planner's row estimate (PostgreSQL's pg_class.reltuples, InnoDB's
information_schema.TABLES.TABLE_ROWS) and a filtered one "more than N".
The pages past the limit are not reachable by number: with a million rows,
narrowing the filter is the way there, not page 5,000.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db import DatabaseError, connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

COUNT_LIMIT = 10_000  # rows counted exactly on a list page


class Count(int):
    """A row count that may be approximate; its text says so in the admin's templates."""

    prefix = ""

    def __str__(self) -> str:
        return f"{self.prefix}{int(self):,}" if self.prefix else f"{int(self)}"


class AboutCount(Count):
    prefix = "about "


class MoreThanCount(Count):
    prefix = "more than "

    def __str__(self) -> str:
        return f"{self.prefix}{COUNT_LIMIT:,}"


class EstimatedCountPaginator(Paginator):  # type: ignore[type-arg]
    """Count exactly up to COUNT_LIMIT rows, then estimate (see the module docstring)."""

    object_list: QuerySet[Any]

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        bounded = queryset.order_by().values("pk")[: COUNT_LIMIT + 1].count()
        if bounded <= COUNT_LIMIT:
            return bounded
        if not queryset.query.has_filters():
            estimate = table_estimate(queryset)
            if estimate is not None and estimate > COUNT_LIMIT:
                return AboutCount(estimate)
        return MoreThanCount(COUNT_LIMIT + 1)


def table_estimate(queryset: QuerySet[Any]) -> int | None:
    """Return the planner's estimate of the table's rows, or None where there is none.

    Only PostgreSQL and MySQL/MariaDB keep one; SQLite has no such statistic,
    and a list page there shows "more than N" instead.
    """
    connection = connections[queryset.db]
    table = queryset.model._meta.db_table
    if connection.vendor == "postgresql":
        sql = "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass"
        params: list[Any] = [connection.ops.quote_name(table)]
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
