"""The process registry, read-only: who is alive, on which host, running what."""

from __future__ import annotations

import datetime

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from dbqueue import models
from dbqueue.admin import base, tasks
from dbqueue.conf import settings


@admin.register(models.Worker)
class WorkerAdmin(base.ConsoleAdmin):
    list_display = (
        "id",
        "role",
        "cluster_id",
        "host",
        "pid",
        "queue_names",
        "current_task",
        "tasks_done",
        "heartbeat",
    )
    list_filter = ("role", "host")
    search_fields = ("=id", "=cluster_id", "=host")
    ordering = ("cluster_id", "role", "id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: models.Worker | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: models.Worker | None = None
    ) -> bool:
        # Rows come and go with the processes; the supervisor removes stale ones.
        return False

    @admin.display(description="queues")
    def queue_names(self, worker: models.Worker) -> str:
        if not isinstance(worker.queues, list) or not worker.queues:
            return "*"
        return ", ".join(map(str, worker.queues))

    @admin.display(description="current task")
    def current_task(self, worker: models.Worker) -> str:
        return tasks.task_link(worker.current_task_id)

    @admin.display(description="last heartbeat", ordering="last_seen")
    def heartbeat(self, worker: models.Worker) -> str:
        age = timezone.now() - worker.last_seen
        text = f"{age.total_seconds():.0f} s ago"
        if age > datetime.timedelta(seconds=float(settings.LEASE)):
            return format_html('<strong class="dbqueue-stale">stale: {}</strong>', text)
        return text
