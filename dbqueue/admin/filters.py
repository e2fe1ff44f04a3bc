"""List filters whose choices cost no scan of a large table.

Django's default filter for a plain column lists its distinct values, which
on a task table of millions of rows is a full scan per page load. These
filters take their choices from the registry, the queues that workers,
settings and paused states name, and small or indexed reads only.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dbqueue import models, registry
from dbqueue.conf import settings

# Filters of dead letters offer the values of this many newest entries: a
# DISTINCT over the whole table would scan 100,000 rows on every page load.
RECENT_ROWS = 5000
ENQUEUED_WINDOWS = {  # choice -> how far back
    "1h": datetime.timedelta(hours=1),
    "24h": datetime.timedelta(days=1),
    "7d": datetime.timedelta(days=7),
    "30d": datetime.timedelta(days=30),
}


class FunctionFilter(admin.SimpleListFilter):
    """Filter by task function: the registered ones, plus the one asked for."""

    title = _("function")
    parameter_name = "func"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        paths = set(registry.registered_paths())
        if self.value():
            paths.add(str(self.value()))
        return [(path, path) for path in sorted(paths)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(func=self.value()) if self.value() else queryset


class QueueFilter(admin.SimpleListFilter):
    """Filter by queue: the queues settings, workers, states and queued tasks name."""

    title = _("queue")
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = known_queues()
        if self.value():
            names.add(str(self.value()))
        return [(name, name) for name in sorted(names)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(queue=self.value()) if self.value() else queryset


class EnqueuedFilter(admin.SimpleListFilter):
    """Filter tasks by enqueue time through their id.

    Task ids are UUIDv7, whose first 48 bits are the creation time in
    milliseconds, so "enqueued in the last hour" is a range on the primary
    key, which every database answers from its index; a range on
    enqueued_at would need an index of its own on a table of millions.
    """

    title = _("enqueued")
    parameter_name = "enqueued"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("1h", _("Last hour")),
            ("24h", _("Last 24 hours")),
            ("7d", _("Last 7 days")),
            ("30d", _("Last 30 days")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        window = ENQUEUED_WINDOWS.get(str(self.value()))
        if window is None:
            return queryset
        return queryset.filter(id__gte=uuid7_floor(timezone.now() - window))


class ReplayedFilter(admin.SimpleListFilter):
    title = _("replayed")
    parameter_name = "replayed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("no", _("Not yet")), ("yes", _("Replayed"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "no":
            return queryset.filter(replay_count=0)
        if self.value() == "yes":
            return queryset.filter(replay_count__gt=0)
        return queryset


class ExceptionFilter(admin.SimpleListFilter):
    """Filter dead-letter entries by the class of their last exception."""

    title = _("exception")
    parameter_name = "exception"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = recent_values(model_admin.get_queryset(request), "exception_class")
        names.discard("")
        if self.value():
            names.add(str(self.value()))
        return [(name, name.rpartition(".")[2] or name) for name in sorted(names)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return (
            queryset.filter(exception_class=self.value()) if self.value() else queryset
        )


def check_choices(changelist: Any, request: HttpRequest) -> None:
    """Raise IncorrectLookupParameters for a filter value that is none of its choices.

    A list page ignores such a value and shows every row, which is harmless
    there and dangerous for an action on "all matching" rows.
    """
    for spec in changelist.filter_specs:
        if not isinstance(spec, admin.SimpleListFilter) or spec.value() is None:
            continue
        choices = {str(value) for value, _label in spec.lookup_choices}
        if str(spec.value()) not in choices:
            raise IncorrectLookupParameters(
                f"{spec.parameter_name}={spec.value()!r} is not one of the filter's choices"
            )


def known_queues() -> set[str]:
    """Return the queue names worth offering, without scanning the task table."""
    db = models.queue_db()
    names = {str(settings.DEFAULT_QUEUE), *map(str, settings.QUEUES)}
    names.discard("*")
    names.update(models.QueueState.objects.using(db).values_list("name", flat=True))
    for queues in models.Worker.objects.using(db).values_list("queues", flat=True):
        names.update(_names(queues))
    # Queued rows only: the claim index covers them, and they are few next
    # to the finished history.
    names.update(
        models.Task.objects.using(db)
        .queued()
        .order_by()
        .values_list("queue", flat=True)
        .distinct()
    )
    return names


def recent_values(queryset: QuerySet[Any], field: str) -> set[str]:
    """Return the values of `field` among the RECENT_ROWS newest rows (ids are UUIDv7).

    The newest rows are a walk down the primary key index, so the cost stays
    the same however long the history; a value only older rows have is still
    reachable by typing it in the URL, as the filters add the one asked for.
    """
    newest = queryset.order_by("-pk").values_list(field, flat=True)[:RECENT_ROWS]
    return {str(value) for value in newest}


def uuid7_floor(moment: datetime.datetime) -> uuid.UUID:
    """Return the smallest UUIDv7 created at or after `moment`."""
    millis = int(moment.timestamp() * 1000)
    return uuid.UUID(int=(millis & ((1 << 48) - 1)) << 80)


def _names(queues: Any) -> Iterable[str]:
    if isinstance(queues, list):
        return [str(name) for name in queues if name and name != "*"]
    return []
