"""QueueState: what an operator set on a queue (paused or not), and the console's permissions.

A queue has no row of its own until someone pauses it: queues come into being
when a task names them. Workers read the paused names before each claim (see
:func:`dbqueue.claiming.paused_queues`) and leave those queues alone; tasks
are still enqueued into a paused queue and wait there.
"""

from __future__ import annotations

import datetime

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dbqueue.models.base import queue_db

NAME_MAX = 64  # characters, as Task.queue


class QueueStateQuerySet(models.QuerySet["QueueState"]):
    def paused(self) -> QueueStateQuerySet:
        return self.filter(paused=True)


class QueueState(models.Model):
    """An operator's setting for one queue, by name."""

    name = models.CharField(max_length=NAME_MAX, primary_key=True)
    paused = models.BooleanField(
        default=False, help_text=_("Workers do not claim tasks from a paused queue.")
    )
    changed_at = models.DateTimeField(default=timezone.now)
    changed_by = models.CharField(
        max_length=150, blank=True, default="", help_text=_("Who paused or resumed it.")
    )

    objects = QueueStateQuerySet.as_manager()

    class Meta:
        verbose_name = _("queue")
        verbose_name_plural = _("queues")
        ordering = ["name"]
        # The operations console's actions act on several models, and each
        # needs a permission of its own that the built-in add/change/delete
        # do not give. They live here, on the console's own model, so the
        # task, dead-letter and schedule tables need no migration for them;
        # a permission is checked by "app_label.codename" whatever model
        # holds it (user.has_perm("dbqueue.replay_failedtask")).
        default_permissions = ("view",)
        permissions = [
            ("pause_queue", _("Can pause and resume queues")),
            ("retry_task", _("Can retry tasks now")),
            ("cancel_task", _("Can cancel queued tasks")),
            ("replay_failedtask", _("Can replay failed tasks")),
            ("run_schedule", _("Can run schedules now")),
            ("view_task_arguments", _("Can see task arguments unmasked")),
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def set_paused(
        cls,
        name: str,
        paused: bool,
        *,
        by: str = "",
        now: datetime.datetime | None = None,
    ) -> QueueState:
        """Pause or resume the queue `name`; return its state row.

        Workers in this process see the change at their next claim, others
        within claiming.PAUSED_CACHE_TTL. Raise ValueError for an empty name
        or one longer than a queue name can be.
        """
        from dbqueue import claiming

        if not name or len(name) > NAME_MAX:
            raise ValueError(
                f"A queue name has 1 to {NAME_MAX} characters, got {name!r}."
            )
        state, _ = cls.objects.using(queue_db()).update_or_create(
            name=name,
            defaults={
                "paused": paused,
                "changed_at": now or timezone.now(),
                "changed_by": by[:150],
            },
        )
        claiming.forget_paused()
        if not paused:
            # Idle workers elsewhere trust their paused list for up to
            # PAUSED_CACHE_TTL: wake them once it has run out.
            claiming.notify(
                name,
                due=timezone.now()
                + datetime.timedelta(seconds=claiming.PAUSED_CACHE_TTL + 0.1),
            )
        return state
