"""The scheduler loop: due Schedule rows become Task rows, each due time exactly once.

One scheduler process runs per cluster, and many clusters share a database,
so several schedulers look at the same due rows. Exactly-once comes from
doing everything for one schedule in ONE transaction:

1. lock the schedule row, skipping it if another scheduler holds it
   (``SELECT … FOR UPDATE SKIP LOCKED``, re-checking that it is still due);
2. decide the due times to fire (:func:`dbqueue.scheduling.plan`);
3. for each, enqueue the task through ``api.enqueue`` and insert a
   ``ScheduleRun`` whose (schedule, due_at) pair is unique;
4. move ``next_run`` past them; commit.

A crash anywhere before the commit rolls all of it back, and the next look
(here or in another cluster) fires the same due times once. A due time that
already has a ScheduleRun is never enqueued again, whatever ``next_run`` says.
SQLite has no row locks; there the single writer serialises schedulers, and
the unique constraint is the backstop: an IntegrityError means another
scheduler fired it first, so this transaction rolls back and moves on.

``Scheduler.run_once(now)`` is the unit of work; tests drive it with their
own clock. ``run()`` repeats it until ``stop()``.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
import uuid
from collections.abc import Callable

from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.models import Min
from django.utils import timezone

from dbqueue import (
    api,
    claiming,
    models,
    retention,
    schedules,
    scheduling,
    serialization,
)
from dbqueue.cluster import worker
from dbqueue.conf import settings

logger = logging.getLogger(__name__)

DB_ERROR_BACKOFF_MAX = 30.0  # seconds between looks while the database is unreachable
CANDIDATES = 100  # due schedule ids read per query
PRUNE_EVERY = datetime.timedelta(minutes=5)  # between deletions of old ScheduleRun rows
PRUNE_BATCH = 1000  # ScheduleRun rows deleted per statement


class Scheduler:
    """Fires due schedules: ``Scheduler().run()`` in the cluster's scheduler process.

    `clock` returns the aware current time and `sleep(seconds)` waits (it
    must return early once stop() is called; the default does). Both are
    injectable so that tests advance time instead of waiting for it.
    """

    def __init__(
        self,
        *,
        scheduler_id: str | None = None,
        interval: float | None = None,
        clock: Callable[[], datetime.datetime] = timezone.now,
        sleep: Callable[[float], object] | None = None,
        sync_declared: bool = True,
    ) -> None:
        self.id = scheduler_id or worker.new_worker_id("scheduler")
        self.interval = (
            interval if interval is not None else float(settings.SCHEDULER_INTERVAL)
        )
        self.clock = clock
        self.stopping = threading.Event()
        self.sleep = sleep if sleep is not None else self.stopping.wait
        # Between rounds: the injected sleep, or a wait for a schedule change.
        self.rest = sleep if sleep is not None else self._rest
        self.listening = False  # whether schedule changes reach us by NOTIFY
        self.sync_declared = sync_declared
        self.fired = 0  # tasks enqueued by this scheduler
        self._reported: set[tuple[int, str]] = set()
        self._next_prune: datetime.datetime | None = None
        self.pruner = retention.AutoPruner()

    def stop(self, signum: int | None = None) -> None:
        """Leave the loop after the current schedule's transaction (a signal handler)."""
        if not self.stopping.is_set():
            logger.info("Scheduler %s stopping.", self.id)
        self.stopping.set()

    def run(self) -> int:
        """Fire due schedules until stop() is called; return the exit code (0).

        Syncs DBQUEUE_SCHEDULES first. A database error is logged and retried
        with a backoff, never raised: a scheduler outlives a database restart.
        """
        logger.info(
            "Scheduler %s started; interval=%.1fs pid=%s",
            self.id,
            self.interval,
            os.getpid(),
        )
        synced = not self.sync_declared
        failures = 0
        while not self.stopping.is_set():
            try:
                worker.refresh_connections()
                if not synced:
                    counts = schedules.sync_declared(now=self.clock())
                    synced = True
                    logger.info(
                        "Scheduler %s synced DBQUEUE_SCHEDULES: %s",
                        self.id,
                        " ".join(f"{k}={v}" for k, v in counts.items()),
                    )
                now = self.clock()
                self.run_once(now)
                self.prune(now)
                self.prune_tasks(now)
                wait = self._wait(now)
            except DatabaseError as exc:
                failures += 1
                delay = min(DB_ERROR_BACKOFF_MAX, max(self.interval, 0.1) * 2**failures)
                logger.warning(
                    "Scheduler %s cannot reach the database (%s: %s); retrying in %.1fs.",
                    self.id,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                connections.close_all()
                self.sleep(delay)
                continue
            failures = 0
            self.rest(wait)
        logger.info(
            "Scheduler %s stopped after enqueueing %s tasks.", self.id, self.fired
        )
        return 0

    def run_once(self, now: datetime.datetime | None = None) -> int:
        """Fire every schedule due at `now` (default: the clock); return the tasks enqueued.

        Each schedule gets its own transaction, so one that cannot be fired
        (its function was removed, its row was edited into nonsense) is
        logged and skipped while the others fire.
        """
        now = now or self.clock()
        alias = models.queue_db()
        fired = 0
        tried: set[int] = set()
        while not self.stopping.is_set():
            candidates = list(
                models.Schedule.objects.using(alias)
                .due(now)
                .exclude(id__in=tried)
                .values_list("id", flat=True)[:CANDIDATES]
            )
            if not candidates:
                break
            for schedule_id in candidates:
                if self.stopping.is_set():
                    break
                tried.add(schedule_id)
                fired += self.fire(schedule_id, now)
        self.fired += fired
        return fired

    def fire(self, schedule_id: int, now: datetime.datetime) -> int:
        """Fire one schedule if it is still due and nobody else holds it; return the tasks enqueued."""
        alias = models.queue_db()
        try:
            with transaction.atomic(using=alias):
                schedule = lock_due(alias, schedule_id, now)
                if schedule is None:
                    return 0
                return self._fire_locked(schedule, now)
        except IntegrityError as exc:
            logger.info(
                "Schedule id=%s was fired by another scheduler meanwhile; rolled back (%s).",
                schedule_id,
                exc,
            )
            return 0
        except DatabaseError:
            raise
        except Exception as exc:
            self._report(schedule_id, exc)
            return 0

    def prune(self, now: datetime.datetime) -> int:
        """Delete ScheduleRun rows older than DBQUEUE_SCHEDULE_RUN_RETENTION, every few minutes.

        Only the rows of due times that next_run has moved past go, so
        exactly-once holds unless next_run is moved back further than that.
        """
        if self._next_prune is not None and now < self._next_prune:
            return 0
        self._next_prune = now + PRUNE_EVERY
        cutoff = now - datetime.timedelta(
            seconds=float(settings.SCHEDULE_RUN_RETENTION)
        )
        runs = models.ScheduleRun.objects.using(models.queue_db())
        deleted = 0
        while True:
            # Ids first: MySQL refuses LIMIT inside an IN subquery.
            ids = list(
                runs.filter(fired_at__lt=cutoff).values_list("id", flat=True)[
                    :PRUNE_BATCH
                ]
            )
            if not ids:
                break
            deleted += runs.filter(id__in=ids).delete()[0]
            if len(ids) < PRUNE_BATCH:
                break
        return deleted

    def prune_tasks(self, now: datetime.datetime) -> retention.PruneReport | None:
        """Delete old finished tasks (DBQUEUE_PRUNE_INTERVAL) for a slice of this tick.

        The slice ends before the next schedule is due, so pruning a large
        backlog never makes a schedule late; the rest waits for the next tick.
        """
        if not self.pruner.is_due(now):
            return None
        budget = min(retention.TICK_BUDGET, self._wait(now))
        return self.pruner.run(now, time_budget=budget)

    def enqueue(self, schedule: models.Schedule) -> models.Task:
        """Enqueue one run of `schedule` through api.enqueue (validated like any call)."""
        args, kwargs = serialization.loads_payload(
            schedule.func, schedule.payload, hook=schedule.hook
        )
        options = dict(schedule.task_options)
        # Django-Q's convention: a schedule's tasks form a group named after it.
        options.setdefault("group", schedule.name)
        return api.enqueue(
            schedule.func,
            args,
            kwargs,
            queue=schedule.queue or None,
            priority=schedule.priority,
            sync=False,
            serializer=serialization.serializer_of(schedule.payload),
            **options,
        )

    def decided(
        self, schedule: models.Schedule, due_times: list[datetime.datetime]
    ) -> set[datetime.datetime]:
        """Return the due times that already have a ScheduleRun: they are never fired again.

        That happens when next_run was moved back (by schedule() with an
        earlier next_run, or in the admin). A run inserted by a racing
        scheduler after this read still fails the unique constraint.
        """
        return set(
            models.ScheduleRun.objects.using(models.queue_db())
            .filter(schedule=schedule, due_at__in=due_times)
            .values_list("due_at", flat=True)
        )

    def _fire_locked(self, schedule: models.Schedule, now: datetime.datetime) -> int:
        alias = models.queue_db()
        decision = scheduling.plan(
            schedule.rule(),
            schedule.next_run,
            now,
            catch_up=schedule.catch_up,
            grace=float(settings.SCHEDULE_GRACE),
            limit=int(settings.SCHEDULE_CATCH_UP_MAX),
        )
        due_times = list(decision.fire)
        if schedule.repeats > 0:
            due_times = due_times[: schedule.repeats]
        if decision.missed_from is not None and decision.missed_until is not None:
            logger.warning(
                "Schedule name=%s missed its runs due from %s to before %s while no "
                "scheduler was running; catch_up=%s, so they are not run.",
                schedule.name,
                decision.missed_from.isoformat(),
                decision.missed_until.isoformat(),
                schedule.catch_up,
            )
        decided = self.decided(schedule, due_times)
        active = not schedule.allow_overlap and _is_active(schedule.last_task_id)
        fired = 0
        last_task_id: uuid.UUID | None = None
        for due in due_times:
            if due in decided:
                logger.info(
                    "Schedule name=%s due=%s was already fired; not again.",
                    schedule.name,
                    due.isoformat(),
                )
                continue
            run = models.ScheduleRun(
                schedule=schedule, due_at=due, fired_at=now, fired_by=self.id
            )
            if active:
                run.outcome = models.RunOutcome.OVERLAP
                logger.info(
                    "Schedule name=%s due=%s skipped: its previous task id=%s is still "
                    "queued or running (allow_overlap is off).",
                    schedule.name,
                    due.isoformat(),
                    last_task_id or schedule.last_task_id,
                )
            else:
                try:
                    # A savepoint: a failed enqueue leaves no half-written task.
                    with transaction.atomic(using=alias):
                        task = self.enqueue(schedule)
                except DatabaseError:
                    raise
                except Exception as exc:
                    run.outcome = models.RunOutcome.ERROR
                    run.error = f"{type(exc).__name__}: {exc}"
                    logger.error(
                        "Schedule name=%s due=%s could not be enqueued and was skipped: %s; "
                        "the schedule stays enabled for its next run.",
                        schedule.name,
                        due.isoformat(),
                        run.error,
                    )
                else:
                    run.outcome = models.RunOutcome.ENQUEUED
                    run.task_id = task.id
                    last_task_id = task.id
                    fired += 1
                    active = not schedule.allow_overlap
                    logger.info(
                        "Schedule name=%s due=%s enqueued task id=%s",
                        schedule.name,
                        due.isoformat(),
                        task.id,
                    )
            run.save(using=alias, force_insert=True)
        schedule.record_firing(
            fired=fired, last_task_id=last_task_id, next_run=decision.next_run, now=now
        )
        return fired

    def _wait(self, now: datetime.datetime) -> float:
        """Seconds to sleep: until the next schedule is due, at most the interval.

        While a NOTIFY tells this scheduler of every schedule change
        (PostgreSQL), the interval stretches to DBQUEUE_LISTEN_POLL_INTERVAL:
        nothing can come due unannounced before the next schedule is.
        """
        interval = self.interval
        if self.listening:
            interval = max(interval, float(settings.LISTEN_POLL_INTERVAL))
        earliest = (
            models.Schedule.objects.using(models.queue_db())
            .active()
            .aggregate(earliest=Min("next_run"))["earliest"]
        )
        if earliest is None or earliest <= now:
            # Nothing planned, or due but held by another scheduler (or
            # broken and reported): look again after a full interval.
            return interval
        return min(interval, scheduling.seconds_until(earliest, self.clock()))

    def _rest(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking early for a schedule change (PostgreSQL) or stop()."""
        self.listening = worker.wait_listening(
            claiming.wait_for_schedules, seconds, self.stopping
        )

    def _report(self, schedule_id: int, exc: Exception) -> None:
        key = (schedule_id, f"{type(exc).__name__}: {exc}")
        level = logging.DEBUG if key in self._reported else logging.ERROR
        self._reported.add(key)
        logger.log(
            level,
            "Schedule id=%s cannot be fired (%s); other schedules go on. Fix or delete "
            "it (see `manage.py check --database default`, dbqueue.W004).",
            schedule_id,
            key[1],
            exc_info=level == logging.ERROR,
        )


def lock_due(
    alias: str, schedule_id: int, now: datetime.datetime
) -> models.Schedule | None:
    """Lock the schedule for this transaction if it is still due, or return None.

    This is the only place where the vendors differ, and Django's
    ``select_for_update(skip_locked=True)`` hides the difference:

    - PostgreSQL, MySQL 8, MariaDB 10.6+: ``SELECT … WHERE id = %s AND <due>
      FOR UPDATE SKIP LOCKED``. A row another scheduler holds is skipped
      instead of waited for; a row it just committed is re-read as committed
      (PostgreSQL re-checks the WHERE clause on the new version, InnoDB's
      locking reads see the latest commit), so its moved next_run no longer
      matches. Locking through the primary key locks this one row: InnoDB
      locks every row a locking read examines (see claiming/mysql.py).
    - SQLite: Django leaves out FOR UPDATE, which SQLite lacks. dbqueue's
      SQLite connections open transactions with BEGIN IMMEDIATE (check
      dbqueue.W001), so one scheduler at a time reads and writes and the next
      one sees the moved next_run; the unique ScheduleRun catches the rest.
    """
    return (
        models.Schedule.objects.using(alias)
        .select_for_update(skip_locked=True)
        .due(now)
        .filter(id=schedule_id)
        .first()
    )


def _is_active(task_id: uuid.UUID | None) -> bool:
    """Tell whether the task is still queued or running (a removed row is not)."""
    if task_id is None:
        return False
    return (
        models.Task.objects.using(models.queue_db())
        .filter(id=task_id, status__in=[models.Status.QUEUED, models.Status.RUNNING])
        .exists()
    )
