"""A changelist paginator that never counts a table of millions of rows.

Django's admin counts the filtered rows on every list page (and, unless
show_full_result_count is off, the whole table too). On PostgreSQL a COUNT
reads every row's visibility, so on a task table of a million rows each page
load would pay for a full scan. This paginator counts at most COUNT_LIMIT + 1
rows (``SELECT COUNT(*) FROM (SELECT id … LIMIT n)``), which the primary key
index answers in milliseconds. Past that, an unfiltered list shows the
planner's row estimate (dbqueue.claiming.table_estimate(), which holds the
vendor-specific SQL) and a filtered one "more than N".
The pages past the limit are not reachable by number: with a million rows,
narrowing the filter is the way there, not page 5,000.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

from dbqueue import claiming

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
            estimate = claiming.table_estimate(
                queryset.model._meta.db_table, using=queryset.db
            )
            if estimate is not None and estimate > COUNT_LIMIT:
                return AboutCount(estimate)
        return MoreThanCount(COUNT_LIMIT + 1)
