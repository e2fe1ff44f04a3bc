"""FailedTask: the dead-letter queue."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dbqueue import ids


class FailedTask(models.Model):
    """The dead-letter queue: a task that used up its attempts, kept for inspection and replay."""

    id = models.UUIDField(primary_key=True, default=ids.uuid7, editable=False)
    task_id = models.UUIDField(db_index=True, help_text=_("The Task row that failed."))
    name = models.CharField(max_length=255)
    func = models.CharField(_("function"), max_length=255)
    payload = models.TextField(editable=False)
    queue = models.CharField(max_length=64)
    priority = models.SmallIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=1)
    timeout = models.FloatField(null=True, blank=True)
    keep_result = models.BooleanField(default=True)
    group = models.CharField(max_length=255, blank=True, default="")
    hook = models.CharField(max_length=255, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(
        blank=True, default="", help_text=_("Why the last attempt failed.")
    )
    traceback = models.TextField(blank=True, default="")
    attempt_log = models.JSONField(default=list, blank=True)
    enqueued_at = models.DateTimeField()
    failed_at = models.DateTimeField(default=timezone.now, db_index=True)
    replayed_at = models.DateTimeField(null=True, blank=True)
    replayed_as = models.UUIDField(
        null=True, blank=True, help_text=_("The Task a replay created.")
    )
    replay_count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("failed task")
        ordering = ["-failed_at"]
        indexes = [
            models.Index(fields=["func", "failed_at"], name="dbqueue_failed_func")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.task_id})"
