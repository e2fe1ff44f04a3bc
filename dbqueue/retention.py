"""Retention: delete finished tasks and dead letters once they are old enough.

Pruning runs while workers claim, so it must never hold a lock they wait
for, nor any lock for long. A single ``DELETE … WHERE finished_at < cutoff``
would lock every old row in one transaction, for minutes on a big table;
PostgreSQL has no ``DELETE … LIMIT``, and MySQL refuses ``LIMIT`` in an
``IN`` subquery. So each batch is one short transaction of two statements:

1. ``SELECT id … WHERE status = … AND finished_at < cutoff ORDER BY
   finished_at LIMIT n FOR UPDATE SKIP LOCKED``: the oldest rows of one
   status, read in order from the ``(status, finished_at)`` index;
2. ``DELETE … WHERE id IN (those ids)``.

The locks are taken on finished rows only, which no worker touches again,
and claiming locks only QUEUED rows, so neither waits for the other. A row
another pruner (another cluster) holds is skipped, so concurrent pruners
delete disjoint batches. Locked rows cannot change before the DELETE, which
therefore names them by primary key alone: with ``AND status = … AND
finished_at < …`` added, SQLite without table statistics plans the DELETE
as a range scan of the finished index, a second per batch on a million
rows instead of milliseconds. SQLite has no FOR UPDATE; there the batch's
transaction holds the one write lock (BEGIN IMMEDIATE, dbqueue.W001), some
tens of milliseconds per 1000 rows, and a claim waits that long under the
busy timeout.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import logging
import time
from collections.abc import Callable
from typing import Any, Final, Literal

from django.db import DatabaseError, connections, transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from dbqueue import claiming, models
from dbqueue.conf import settings
from dbqueue.validation import MAX_BATCH_SIZE

logger = logging.getLogger(__name__)

CONFLICT_BACKOFF = 0.05  # seconds after the first lock conflict; doubles
CONFLICT_BACKOFF_MAX = 1.0  # seconds
CONFLICTS_MAX = 8  # lock conflicts in a row before a call gives up
# The scheduler prunes in slices this long, so that no schedule fires late.
TICK_BUDGET = 0.5  # seconds


class _Setting(enum.Enum):
    SETTING = "setting"


SETTING: Final = _Setting.SETTING
"""Take the retention from its ``DBQUEUE_RETAIN_*`` setting."""

Retention = float | None | Literal[_Setting.SETTING]


@dataclasses.dataclass
class PruneReport:
    """What one call of prune() deleted (or, in a dry run, would delete)."""

    succeeded: int = 0
    failed: int = 0  # FAILED and CANCELLED tasks
    dead_letters: int = 0  # FailedTask rows
    dry_run: bool = False
    # The time budget ran out while rows of some kind may be left.
    out_of_time: bool = False
    # Batches that hit a lock conflict and were tried again.
    conflicts: int = 0
    # Stopped after CONFLICTS_MAX lock conflicts in a row.
    gave_up: bool = False

    @property
    def total(self) -> int:
        return self.succeeded + self.failed + self.dead_letters

    @property
    def is_complete(self) -> bool:
        """Tell whether nothing old enough was left behind."""
        return not (self.out_of_time or self.gave_up)

    def add(self, other: PruneReport) -> None:
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.dead_letters += other.dead_letters
        self.conflicts += other.conflicts


@dataclasses.dataclass(frozen=True)
class _Kind:
    """Rows of one model and status, pruned by the age of one timestamp."""

    field: str  # the PruneReport count it adds to
    model: type[Model]
    age_field: str
    status: str | None = None

    def older_than(self, cutoff: datetime.datetime) -> QuerySet[Any]:
        rows = self.model._default_manager.using(models.queue_db()).filter(
            **{f"{self.age_field}__lt": cutoff}
        )
        if self.status is not None:
            rows = rows.filter(status=self.status)
        return rows


# FAILED and CANCELLED are pruned one status at a time: with `status IN
# (…)` the index no longer yields rows in finished_at order, and every
# batch would sort all the old rows to find the oldest few.
KINDS = (
    _Kind("succeeded", models.Task, "finished_at", models.Status.SUCCEEDED),
    _Kind("failed", models.Task, "finished_at", models.Status.FAILED),
    _Kind("failed", models.Task, "finished_at", models.Status.CANCELLED),
    _Kind("dead_letters", models.FailedTask, "failed_at"),
)


def retention_of(field: str, override: Retention = SETTING) -> float | None:
    """Return the seconds rows of `field` are kept, None for forever."""
    if override is not SETTING:
        return override
    value = {
        "succeeded": settings.RETAIN_SUCCEEDED,
        "failed": settings.RETAIN_FAILED,
        "dead_letters": settings.RETAIN_DEAD_LETTERS,
    }[field]
    return None if value is None else float(value)


def prune(
    now: datetime.datetime | None = None,
    *,
    retain_succeeded: Retention = SETTING,
    retain_failed: Retention = SETTING,
    retain_dead_letters: Retention = SETTING,
    batch_size: int | None = None,
    time_budget: float | None = None,
    dry_run: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    on_batch: Callable[[PruneReport], object] | None = None,
) -> PruneReport:
    """Delete finished tasks and dead letters older than their retention.

    Each retention defaults to its ``DBQUEUE_RETAIN_*`` setting; None keeps
    that kind forever. QUEUED and RUNNING tasks are never deleted. With
    `time_budget` (seconds), no new batch starts once it is spent, but one
    batch always runs, so that repeated short calls still make progress;
    ``out_of_time`` then tells the caller to call again.
    A lock conflict is retried after a short backoff; after CONFLICTS_MAX
    in a row the call stops and reports ``gave_up``. `on_batch`, if given,
    is called with the report so far after each batch that deleted rows
    (qprune shows progress with it).

    Raise DatabaseError for any other database error.
    """
    now = now or timezone.now()
    size = min(
        int(batch_size if batch_size is not None else settings.PRUNE_BATCH_SIZE),
        MAX_BATCH_SIZE,
    )
    if size < 1:
        raise ValueError(f"batch_size must be at least 1, got {size}.")
    overrides = {
        "succeeded": retain_succeeded,
        "failed": retain_failed,
        "dead_letters": retain_dead_letters,
    }
    deadline = None if time_budget is None else clock() + time_budget
    report = PruneReport(dry_run=dry_run)
    batches = 0
    for kind in KINDS:
        seconds = retention_of(kind.field, overrides[kind.field])
        if seconds is None:
            continue
        try:
            cutoff = now - datetime.timedelta(seconds=seconds)
        except OverflowError:
            continue  # kept since before the year 1: nothing is that old
        old = kind.older_than(cutoff)
        if dry_run:
            setattr(report, kind.field, getattr(report, kind.field) + old.count())
            continue
        while True:
            if deadline is not None and batches and clock() >= deadline:
                report.out_of_time = True
                return report
            started = time.monotonic()
            found, picked, deleted = _delete_batch(kind, old, size, report, sleep)
            if report.gave_up:
                return report
            # A look that finds nothing is cheap and spends no budget.
            batches += picked > 0
            setattr(report, kind.field, getattr(report, kind.field) + deleted)
            if deleted and on_batch is not None:
                on_batch(report)
            # The end is a look that finds fewer rows than a batch. Fewer
            # rows locked than found means another pruner holds the rest
            # and goes on; none locked, that it holds them all.
            if found < size or picked == 0:
                break
            _let_writers_in(time.monotonic() - started)
    return report


def _let_writers_in(held: float) -> None:
    """Pause as long as the last batch took, where it held the whole database.

    Without row locks (SQLite) a batch takes the one write lock, and a claim
    waiting for it sleeps in its busy handler, in steps of up to 100 ms.
    Taking the lock again at once, batch after batch, would starve it.
    """
    if not connections[models.queue_db()].features.has_select_for_update:
        time.sleep(held)


def _delete_batch(
    kind: _Kind,
    old: QuerySet[Any],
    size: int,
    report: PruneReport,
    sleep: Callable[[float], object],
) -> tuple[int, int, int]:
    """Delete the oldest `size` rows of `old`; return how many were found, picked and deleted."""
    alias = models.queue_db()
    in_a_row = 0
    while True:
        try:
            with transaction.atomic(using=alias):
                # The oldest ids first, read without locks, then locked by
                # primary key. A locking read down the age index would also
                # lock the entry past its last match, on InnoDB: the first
                # QUEUED task, after the FAILED ones in (status, finished_at)
                # order, which a claim would then skip as locked.
                oldest = list(
                    old.order_by(kind.age_field).values_list("pk", flat=True)[:size]
                )
                if not oldest:
                    return 0, 0, 0
                ids = list(
                    old.filter(pk__in=oldest)
                    .select_for_update(skip_locked=True)
                    .values_list("pk", flat=True)
                )
                # Rows another pruner holds are skipped; it is deleting them.
                deleted = claiming.delete_by_pk(kind.model, ids, using=alias)
            return len(oldest), len(ids), deleted
        except DatabaseError as exc:
            # Inside the caller's transaction the error may have spoilt
            # it (InnoDB rolls back a whole transaction on deadlock).
            if connections[alias].in_atomic_block or not claiming.is_transient(exc):
                raise
            in_a_row += 1
            report.conflicts += 1
            if in_a_row >= CONFLICTS_MAX:
                logger.warning(
                    "Pruning stopped after %s lock conflicts in a row (%s); "
                    "it goes on at its next run.",
                    in_a_row,
                    exc,
                )
                report.gave_up = True
                return 0, 0, 0
            sleep(min(CONFLICT_BACKOFF_MAX, CONFLICT_BACKOFF * 2 ** (in_a_row - 1)))


class AutoPruner:
    """Prune from the scheduler's loop: a round every PRUNE_INTERVAL, in short slices.

    A round that outlasts its slice goes on at the next tick instead of
    holding up the schedules, and logs one line when it ends.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._next_round: datetime.datetime | None = None
        self._round: PruneReport | None = None
        self._round_started = 0.0

    def is_due(self, now: datetime.datetime) -> bool:
        """Tell whether a round is under way or should start at `now`."""
        if settings.PRUNE_INTERVAL is None:
            self._round = None
            return False
        if self._round is not None:
            return True
        return self._next_round is None or now >= self._next_round

    def run(
        self, now: datetime.datetime, *, time_budget: float = TICK_BUDGET
    ) -> PruneReport | None:
        """Prune one slice of the current round, starting one if it is due."""
        interval = settings.PRUNE_INTERVAL
        if interval is None or not self.is_due(now):
            return None
        if self._round is None:
            self._round = PruneReport()
            self._round_started = self.clock()
            self._next_round = now + datetime.timedelta(seconds=float(interval))
        report = prune(now, time_budget=time_budget, clock=self.clock)
        self._round.add(report)
        if not report.out_of_time:
            done, self._round = self._round, None
            if done.total:
                logger.info(
                    "Pruned old rows: succeeded=%s failed=%s dead_letters=%s "
                    "duration=%.1fs",
                    done.succeeded,
                    done.failed,
                    done.dead_letters,
                    self.clock() - self._round_started,
                )
        return report
