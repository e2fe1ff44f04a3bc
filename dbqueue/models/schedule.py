"""Schedule: a named recurring or one-off call; ScheduleRun: one due time, decided once.

The time math lives in :mod:`dbqueue.scheduling`; this module stores what it
needs and owns the state transitions of a firing (``Schedule.record_firing``).
The scheduler process (:mod:`dbqueue.cluster.scheduler`) selects due rows with
``Schedule.objects.due(now)``.
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import uuid
import zoneinfo
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dbqueue import exceptions, registry, scheduling, serialization, wallclock
from dbqueue.indexes import PartialIndex
from dbqueue.models.base import queue_db

if TYPE_CHECKING:
    from dbqueue.models.task import Task

PREVIEW_COUNT = 5  # run times Schedule.preview() returns by default


class ScheduleType(models.TextChoices):
    # Runs once, at next_run.
    ONCE = scheduling.ONCE, _("Once")
    # Every `minutes` minutes of elapsed time from the first run.
    MINUTES = scheduling.MINUTES, _("Every N minutes")
    # Every 60 minutes of elapsed time from the first run.
    HOURLY = scheduling.HOURLY, _("Hourly")
    # At the first run's local time of day, every day.
    DAILY = scheduling.DAILY, _("Daily")
    # At the first run's local weekday and time, every week.
    WEEKLY = scheduling.WEEKLY, _("Weekly")
    # On the first run's day of the month (clamped to the month's end) and time.
    MONTHLY = scheduling.MONTHLY, _("Monthly")
    # Every third month, like MONTHLY.
    QUARTERLY = scheduling.QUARTERLY, _("Quarterly")
    # Every year on the first run's date (29 February: the 28th) and time.
    YEARLY = scheduling.YEARLY, _("Yearly")
    # Whenever the cron expression matches the local wall clock.
    CRON = scheduling.CRON, _("Cron expression")


class CatchUp(models.TextChoices):
    # Drop runs missed while no scheduler was running; wait for the next due time.
    SKIP = scheduling.SKIP, _("Skip missed runs")
    # Run once now for everything missed, then resume.
    ONCE = scheduling.CATCH_UP_ONCE, _("Run once for missed runs")
    # Run every missed time, up to DBQUEUE_SCHEDULE_CATCH_UP_MAX.
    ALL = scheduling.ALL, _("Run every missed run")


class RunOutcome(models.TextChoices):
    # A task was enqueued for the due time (ScheduleRun.task_id).
    ENQUEUED = "ENQUEUED", _("Enqueued")
    # Not enqueued: the previous run was still queued or running (allow_overlap off).
    OVERLAP = "OVERLAP", _("Skipped: previous run still active")
    # Not enqueued: the function or the stored arguments could not be enqueued.
    ERROR = "ERROR", _("Could not enqueue")


class ScheduleQuerySet(models.QuerySet["Schedule"]):
    def active(self) -> ScheduleQuerySet:
        """Enabled schedules with runs left."""
        return self.filter(enabled=True).exclude(repeats=0)

    def due(self, now: datetime.datetime) -> ScheduleQuerySet:
        """Active schedules whose next run is at or before `now`, the most overdue first."""
        return self.active().filter(next_run__lte=now).order_by("next_run", "id")


class Schedule(models.Model):
    """A named recurring or one-off call of a registered task."""

    # Django-Q's constants, so that ``schedule_type=Schedule.DAILY`` ports as is.
    ONCE = ScheduleType.ONCE
    MINUTES = ScheduleType.MINUTES
    HOURLY = ScheduleType.HOURLY
    DAILY = ScheduleType.DAILY
    WEEKLY = ScheduleType.WEEKLY
    MONTHLY = ScheduleType.MONTHLY
    QUARTERLY = ScheduleType.QUARTERLY
    YEARLY = ScheduleType.YEARLY
    CRON = ScheduleType.CRON

    name = models.CharField(max_length=100, unique=True)
    func = models.CharField(
        _("function"), max_length=255, help_text=_("Dotted path of a registered task.")
    )
    payload = models.TextField(
        editable=False, help_text=_("Signed, serialised args and kwargs.")
    )
    schedule_type = models.CharField(
        max_length=16, choices=ScheduleType.choices, default=ScheduleType.ONCE
    )
    minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("For 'every N minutes'.")
    )
    cron = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text=_("For cron schedules: 5 fields, or 6 with seconds last."),
    )
    repeats = models.IntegerField(
        default=-1, help_text=_("Runs left; -1 forever, 0 finished.")
    )
    next_run = models.DateTimeField(default=timezone.now)
    anchor = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text=_("The first run: interval schedules run whole periods after it."),
    )
    timezone = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text=_("IANA name such as Europe/Berlin; empty for TIME_ZONE."),
    )
    enabled = models.BooleanField(default=True)
    catch_up = models.CharField(
        max_length=8,
        choices=CatchUp.choices,
        default=CatchUp.SKIP,
        help_text=_("What to do with runs missed while no cluster was running."),
    )
    allow_overlap = models.BooleanField(
        default=True,
        help_text=_("Enqueue even while the previous run is still queued or running."),
    )
    queue = models.CharField(
        max_length=64, blank=True, default="", help_text=_("Empty for the task's own.")
    )
    priority = models.SmallIntegerField(
        null=True, blank=True, help_text=_("-100 to 100; empty for the task's own.")
    )
    task_options = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("Options of each task: task_name, group, hook, save, timeout, …"),
    )
    fingerprint = models.CharField(
        max_length=64,
        blank=True,
        default="",
        editable=False,
        help_text=_(
            "Hash of the timing schedule() was last given; unchanged keeps next_run."
        ),
    )
    declared = models.BooleanField(
        default=False,
        editable=False,
        help_text=_("Declared in DBQUEUE_SCHEDULES and kept in sync with it."),
    )
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_task_id = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScheduleQuerySet.as_manager()

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
            models.CheckConstraint(
                condition=Q(repeats__gte=-1), name="dbqueue_schedule_repeats"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    # The time math, in the schedule's own zone.

    def zone(self) -> zoneinfo.ZoneInfo:
        """Return the schedule's time zone (TIME_ZONE when none is set).

        Raise ValueError for a name that is not an IANA zone.
        """
        name = self.timezone or timezone.get_default_timezone_name()
        return wallclock.zone(name)

    def rule(self) -> scheduling.Rule:
        """Return the schedule's timing as a scheduling.Rule.

        Raise ValueError if the stored timing is not usable (a row edited in SQL).
        """
        problems = scheduling.timing_problems(
            self.schedule_type,
            minutes=self.minutes,
            cron=self.cron,
            timezone_name=self.timezone,
        )
        if problems:
            raise ValueError(" ".join(problems.values()))
        return scheduling.Rule(
            self.schedule_type,
            anchor=self.anchor or self.next_run,
            zone=self.zone(),
            minutes=self.minutes,
            cron=self.cron,
        )

    def align(self, not_before: datetime.datetime | None = None) -> None:
        """Set next_run (and the anchor) from `not_before`, the first time it may run.

        A cron schedule's next run is its first match at or after `not_before`;
        any other schedule's first run is `not_before` itself, and interval
        schedules keep their phase from it. Defaults to next_run (or now).
        """
        start = not_before or self.next_run or timezone.now()
        self.anchor = start
        if self.schedule_type == ScheduleType.CRON:
            first = self.rule().next_after(start - scheduling.EPSILON)
            if first is None:
                raise ValueError(f"cron {self.cron!r} never fires after {start}.")
            self.next_run = first
        else:
            self.next_run = start

    def preview(
        self, count: int = PREVIEW_COUNT, *, now: datetime.datetime | None = None
    ) -> list[datetime.datetime]:
        """Return the next `count` run times in the schedule's zone (none when finished).

        A run that is already due shows first. With a catch-up policy the
        times that actually fire after an outage may differ; see scheduling.plan().
        """
        if self.is_finished:
            return []
        rule = self.rule()
        start = self.next_run
        if now is not None and start < now and self.schedule_type != ScheduleType.ONCE:
            following = rule.next_after(now - scheduling.EPSILON)
            start = following if following is not None else start
        zone = self.zone()
        return [
            moment.astimezone(zone) for moment in scheduling.preview(rule, start, count)
        ]

    @property
    def is_finished(self) -> bool:
        """No runs left: a one-off that ran, or `repeats` used up."""
        return self.repeats == 0

    # What the schedule last did.

    def last_task(self) -> Task | None:
        """Return the task the last run enqueued (None if none, or its row was removed)."""
        if self.last_task_id is None:
            return None
        from dbqueue.models.task import Task

        return Task.objects.using(queue_db()).filter(id=self.last_task_id).first()

    @property
    def last_status(self) -> str | None:
        """The Status of the last run's task, or None when there is no such row."""
        task = self.last_task()
        return task.status if task is not None else None

    # The stored call.

    @property
    def hook(self) -> str:
        return str(self.task_options.get("hook") or "")

    @property
    def args(self) -> tuple[Any, ...]:
        return serialization.loads_payload(self.func, self.payload, hook=self.hook)[0]

    @property
    def kwargs(self) -> dict[str, Any]:
        return serialization.loads_payload(self.func, self.payload, hook=self.hook)[1]

    # State transitions.

    def record_firing(
        self,
        *,
        fired: int,
        last_task_id: uuid.UUID | None,
        next_run: datetime.datetime | None,
        now: datetime.datetime,
    ) -> None:
        """Move the schedule past a firing: count the runs, store the last task and the next run.

        Called by the scheduler inside the transaction that holds the row's
        lock and inserted the ScheduleRun records, so all of it commits at once.
        """
        fields = ["next_run", "repeats", "updated_at"]
        if self.anchor is None:
            # A row made without schedule() keeps the phase of its first firing.
            self.anchor = self.next_run
            fields.append("anchor")
        if fired:
            self.last_run_at = now
            fields.append("last_run_at")
            if self.repeats > 0:
                self.repeats = max(0, self.repeats - fired)
        if last_task_id is not None:
            self.last_task_id = last_task_id
            fields.append("last_task_id")
        if next_run is None:
            self.repeats = 0
        else:
            self.next_run = next_run
        self.save(using=queue_db(), update_fields=fields)

    def clean(self) -> None:
        """Validate a schedule edited in a form, with the messages schedule() raises."""
        errors: dict[str, str] = dict(
            scheduling.timing_problems(
                self.schedule_type,
                minutes=self.minutes,
                cron=self.cron,
                timezone_name=self.timezone,
            )
        )
        problem = task_problem(self.func)
        if problem:
            errors["func"] = problem
        if self.repeats < -1:
            errors["repeats"] = (
                f"repeats must be -1 (forever), 0 (finished) or a number of runs, got {self.repeats}."
            )
        if errors:
            raise ValidationError(errors)
        self._sign_payload()
        if self.next_run is not None and not self.is_finished and not self.is_aligned():
            try:
                self.align(self.next_run)
            except ValueError as exc:
                raise ValidationError({"cron": str(exc)}) from exc

    def _sign_payload(self) -> None:
        """Give a form-made schedule a signed empty call, and re-sign when func or hook changed.

        The payload's signature is bound to the function and hook it was written
        for; it is read back with the stored ones and signed for the new ones,
        so a form can change the function without ever handling pickled data.
        """
        try:
            serialization.loads_payload(self.func, self.payload, hook=self.hook)
            return
        except exceptions.PayloadError:
            pass
        args: tuple[Any, ...] = ()
        kwargs: dict[str, Any] = {}
        vouched_hook = ""
        stored = (
            Schedule.objects.using(queue_db())
            .filter(pk=self.pk)
            .values_list("func", "payload", "task_options")
            .first()
            if self.pk
            else None
        )
        if stored is not None:
            func, payload, options = stored
            hook = str((options or {}).get("hook") or "")
            with contextlib.suppress(exceptions.PayloadError):
                args, kwargs = serialization.loads_payload(func, payload, hook=hook)
                vouched_hook = hook
        if self.hook and self.hook != vouched_hook:
            # Only a payload that verifies can vouch for a hook: re-signing
            # whatever hook a row carries would bless one written in SQL.
            raise ValidationError(
                f"The hook {self.hook!r} was not set through dbqueue.schedule(); "
                "set it there, or remove it."
            )
        self.payload = serialization.dumps_payload(
            self.func, args, kwargs, hook=self.hook
        )

    def is_aligned(self) -> bool:
        """Tell whether next_run is one of the rule's run times (so the anchor can stay)."""
        if self.anchor is None:
            return False
        rule = self.rule()
        return rule.last_at_or_before(self.next_run) == self.next_run


def task_problem(path: str) -> str | None:
    """Describe why `path` cannot be scheduled from a form, or return None.

    Only registered tasks are offered (those in installed apps' tasks modules
    and DBQUEUE_TASKS). The path is typed by a user, so unlike
    registry.resolve() this never imports it to look.
    """
    known = registry.registered_paths()
    if path in known:
        return None
    message = f"No task is registered as {path!r}."
    close = difflib.get_close_matches(path, known, n=1, cutoff=0.8)
    if close:
        message += f" Did you mean {close[0]!r}?"
    return (
        message + " Only functions decorated with @task in an installed app's tasks "
        "module, or listed in DBQUEUE_TASKS, can be scheduled."
    )


class ScheduleRun(models.Model):
    """One due time of a schedule, decided exactly once.

    The unique (schedule, due_at) pair is what makes firing idempotent: the
    scheduler inserts it in the transaction that enqueues the task and moves
    next_run, so a second scheduler, a retry or a crash can never enqueue the
    same due time twice, with or without row locks.
    """

    schedule = models.ForeignKey(
        Schedule, on_delete=models.CASCADE, related_name="runs"
    )
    due_at = models.DateTimeField(help_text=_("The due time this run is for."))
    fired_at = models.DateTimeField(
        default=timezone.now, help_text=_("When the scheduler decided it.")
    )
    fired_by = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text=_("The scheduler that decided it."),
    )
    outcome = models.CharField(max_length=16, choices=RunOutcome.choices)
    # Not a foreign key: succeeded tasks with save=False are deleted, and
    # pruning tasks must not cascade into the schedule's history.
    task_id = models.UUIDField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = _("schedule run")
        ordering = ["-due_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "due_at"], name="dbqueue_schedule_run_once"
            ),
        ]
        indexes = [models.Index(fields=["fired_at"], name="dbqueue_run_fired")]

    def __str__(self) -> str:
        return f"{self.schedule_id} @ {self.due_at.isoformat()}"

    def task(self) -> Task | None:
        """Return the task this run enqueued, if its row still exists."""
        if self.task_id is None:
            return None
        from dbqueue.models.task import Task

        return Task.objects.using(queue_db()).filter(id=self.task_id).first()
