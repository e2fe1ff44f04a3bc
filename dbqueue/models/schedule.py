"""Schedule: a named recurring or one-off call."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dbqueue.indexes import PartialIndex


class ScheduleType(models.TextChoices):
    ONCE = "ONCE", _("Once")
    MINUTES = "MINUTES", _("Every N minutes")
    HOURLY = "HOURLY", _("Hourly")
    DAILY = "DAILY", _("Daily")
    WEEKLY = "WEEKLY", _("Weekly")
    MONTHLY = "MONTHLY", _("Monthly")
    QUARTERLY = "QUARTERLY", _("Quarterly")
    YEARLY = "YEARLY", _("Yearly")
    CRON = "CRON", _("Cron expression")


class CatchUp(models.TextChoices):
    # Run only the next future time; missed times are dropped.
    SKIP = "SKIP", _("Skip missed runs")
    # Run once now for everything missed, then resume.
    ONCE = "ONCE", _("Run once for missed runs")
    # Run every missed time, up to a bound.
    ALL = "ALL", _("Run every missed run")


class Schedule(models.Model):
    """A named recurring or one-off call."""

    name = models.CharField(max_length=100, unique=True)
    func = models.CharField(_("function"), max_length=255)
    payload = models.TextField(editable=False)
    schedule_type = models.CharField(
        max_length=16, choices=ScheduleType.choices, default=ScheduleType.ONCE
    )
    minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("For 'every N minutes'.")
    )
    cron = models.CharField(
        max_length=100, blank=True, default="", help_text=_("For cron schedules.")
    )
    repeats = models.IntegerField(default=-1, help_text=_("Runs left; -1 forever."))
    next_run = models.DateTimeField(default=timezone.now)
    timezone = models.CharField(
        max_length=64, blank=True, default="", help_text=_("Empty for TIME_ZONE.")
    )
    enabled = models.BooleanField(default=True)
    catch_up = models.CharField(
        max_length=8, choices=CatchUp.choices, default=CatchUp.SKIP
    )
    queue = models.CharField(max_length=64, blank=True, default="")
    priority = models.SmallIntegerField(default=0)
    task_options = models.JSONField(default=dict, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_task_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("schedule")
        ordering = ["next_run"]
        indexes = [
            PartialIndex(
                fields=["next_run"],
                where=Q(enabled=True),
                fallback_prefix=("enabled",),
                name="dbqueue_schedule_due",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(priority__gte=-100, priority__lte=100),
                name="dbqueue_schedule_priority_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name
