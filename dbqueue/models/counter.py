"""Counter: running totals of task outcomes, for the Prometheus metrics.

Finished task rows are pruned, and a cluster's processes come and go, so
neither can say how many tasks ever succeeded. These rows can: each process
counts the outcomes it stored and adds them to its rows every few seconds,
and rows are never pruned, so every total only grows. See dbqueue.counters.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class CounterEvent(models.TextChoices):
    # An attempt that ran and returned.
    SUCCEEDED = "SUCCEEDED", _("Succeeded")
    # An attempt that ran and raised (or timed out), whatever came next.
    FAILED = "FAILED", _("Failed")
    # A failed attempt queued again for a retry.
    RETRIED = "RETRIED", _("Retried")
    # Out of attempts: copied to the dead-letter queue.
    DEAD_LETTERED = "DEAD_LETTERED", _("Dead-lettered")
    # Failed for good without a dead letter (a discard_on exception).
    DISCARDED = "DISCARDED", _("Discarded")
    # Claimed after its expires_at, so not run.
    EXPIRED = "EXPIRED", _("Expired")
    # Its worker died or vanished; the task was rescued.
    RESCUED = "RESCUED", _("Orphan rescued")


class Counter(models.Model):
    """One shard of one total: how many `event`s `func` had on `queue`.

    A process adds to the shard its pid picks, so workers flushing counts of
    the same function rarely wait on each other's row lock. `bucket` is the index of
    the duration's histogram bucket (-1 for events without a duration), and
    `seconds` the sum of those durations.
    """

    id = models.BigAutoField(primary_key=True)
    event = models.CharField(max_length=16, choices=CounterEvent.choices)
    func = models.CharField(_("function"), max_length=255)
    queue = models.CharField(max_length=64)
    bucket = models.SmallIntegerField(default=-1)
    shard = models.SmallIntegerField(default=0)
    count = models.BigIntegerField(default=0)
    seconds = models.FloatField(default=0.0)

    class Meta:
        verbose_name = _("counter")
        constraints = [
            models.UniqueConstraint(
                fields=["event", "func", "queue", "bucket", "shard"],
                name="dbqueue_counter_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.func} on {self.queue}: {self.count}"
