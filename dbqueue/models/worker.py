"""Worker: the registry of live qcluster processes and their heartbeats."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    SUPERVISOR = "SUPERVISOR", _("Supervisor")
    WORKER = "WORKER", _("Worker")
    SCHEDULER = "SCHEDULER", _("Scheduler")


class Worker(models.Model):
    """A live qcluster process: the supervisor, a worker or the scheduler, with its heartbeat."""

    id = models.CharField(max_length=100, primary_key=True)
    cluster_id = models.CharField(max_length=100, db_index=True)
    role = models.CharField(max_length=16, choices=Role.choices)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    queues = models.JSONField(default=list, blank=True)
    current_task_id = models.UUIDField(null=True, blank=True)
    current_task_started_at = models.DateTimeField(null=True, blank=True)
    tasks_done = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("worker")
        ordering = ["cluster_id", "role", "id"]

    def __str__(self) -> str:
        return self.id
