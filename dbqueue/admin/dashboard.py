"""The dashboard: the "queues" entry of the admin, with pause and resume.

Its list page is the dashboard itself (queue depth, lag, the last hour's
throughput and failure rate as server-drawn SVG charts, the live workers).
The page re-reads its panel every few seconds with a small script of its own
(static/dbqueue/admin/dashboard.js), without a full reload; with scripts off
it is a plain page that a refresh updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from dbqueue import models, stats
from dbqueue.admin import base, operations, permissions

REFRESH = 5  # seconds between panel refreshes
CHART_WIDTH = 600  # SVG user units
CHART_HEIGHT = 120
PANEL_TEMPLATE = "dbqueue/admin/dashboard_panel.html"


@dataclass
class Bar:
    x: float
    width: float
    succeeded_y: float
    succeeded_height: float
    failed_y: float
    failed_height: float
    title: str


def chart(buckets: list[stats.Bucket]) -> dict[str, Any]:
    """Lay out a stacked bar per minute (succeeded below, failed on top) for the SVG."""
    peak = max((bucket.succeeded + bucket.failed for bucket in buckets), default=0)
    scale = CHART_HEIGHT / peak if peak else 0.0
    step = CHART_WIDTH / max(len(buckets), 1)
    bars = []
    for index, bucket in enumerate(buckets):
        ok_height = bucket.succeeded * scale
        fail_height = bucket.failed * scale
        bars.append(
            Bar(
                x=round(index * step, 2),
                width=round(step * 0.8, 2),
                succeeded_y=round(CHART_HEIGHT - ok_height, 2),
                succeeded_height=round(ok_height, 2),
                failed_y=round(CHART_HEIGHT - ok_height - fail_height, 2),
                failed_height=round(fail_height, 2),
                title=f"{bucket.start:%H:%M} UTC: {bucket.succeeded} succeeded, {bucket.failed} failed",
            )
        )
    return {"bars": bars, "peak": peak, "width": CHART_WIDTH, "height": CHART_HEIGHT}


@admin.register(models.QueueState)
class QueueStateAdmin(base.ConsoleAdmin):
    """The dashboard; queue states are changed only by pause and resume."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: models.QueueState | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: models.QueueState | None = None
    ) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.dashboard_view), name="dbqueue_queuestate_changelist"),
            path("panel/", wrap(self.panel_view), name="dbqueue_queuestate_panel"),
            path(
                "pause/",
                wrap(require_POST(self.pause_view)),
                name="dbqueue_queuestate_pause",
            ),
        ]

    def context(self, request: HttpRequest) -> dict[str, Any]:
        if not self.has_view_permission(request):
            raise PermissionDenied("You may not view the dbqueue dashboard.")
        snapshot = stats.snapshot()
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Queues",
            "snapshot": snapshot,
            "chart": chart(snapshot.buckets),
            "can_pause": permissions.has(request, permissions.PAUSE_QUEUE),
            "refresh": REFRESH,
            "panel_url": reverse("admin:dbqueue_queuestate_panel"),
            "pause_url": reverse("admin:dbqueue_queuestate_pause"),
        }

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        return TemplateResponse(
            request, "dbqueue/admin/dashboard.html", self.context(request)
        )

    def panel_view(self, request: HttpRequest) -> HttpResponse:
        return TemplateResponse(request, PANEL_TEMPLATE, self.context(request))

    def pause_view(self, request: HttpRequest) -> HttpResponse:
        """Pause or resume the posted queue; workers stop or resume claiming from it."""
        permissions.require(request, permissions.PAUSE_QUEUE)
        name = request.POST.get("queue", "")
        paused = request.POST.get("paused") == "1"
        try:
            if "\x00" in name:
                # PostgreSQL refuses NUL in text with an error, not a no.
                raise ValueError("A queue name cannot hold a NUL character.")
            models.QueueState.set_paused(name, paused, by=permissions.username(request))
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            word = "Paused" if paused else "Resumed"
            operations.log(
                permissions.user_id(request),
                models.QueueState,
                [(name, name)],
                CHANGE,
                f"{word}.",
            )
            self.message_user(
                request,
                f"{word} queue {name!r}."
                + (" Workers stop claiming from it within a second." if paused else ""),
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:dbqueue_queuestate_changelist"))
