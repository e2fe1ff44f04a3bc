"""Unique tasks: at most one task per key is queued or running.

The database enforces it, not a check-then-insert: a task that asks for a
key stores it in ``Task.unique_hold``, a column unique among its non-NULL
values (a partial unique index where the vendor has them, a plain unique
constraint on MySQL and MariaDB: the same rule, as NULLs never collide).
Finished tasks set it back to NULL, except while their ``unique_for``
period runs. So two processes enqueueing the same
key at the same instant cannot both succeed; the loser's INSERT fails, and
the policy below decides what the caller gets.

Why not a partial unique index on (unique_key) WHERE status is active?
MariaDB has none, and one column that means "holds the key now" reads the
same on every vendor.
"""

from __future__ import annotations

import datetime
import logging
import math
import numbers
import random
import time
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from dbqueue import claiming, exceptions, models, validation

logger = logging.getLogger(__name__)

POLICIES = ("ignore", "replace", "raise")
DEFAULT_POLICY = "ignore"
TRIES = 20  # inserts before giving up on a key that keeps changing hands


def validate(
    key: Any, unique_for: Any, now: datetime.datetime
) -> tuple[str | None, datetime.datetime | None]:
    """Check unique_key and unique_for; return the key and how long it stays held."""
    if key is None:
        if unique_for is not None:
            raise ValueError("unique_for needs a unique_key to hold.")
        return None, None
    if not isinstance(key, str):
        raise TypeError(f"unique_key must be a string, got {type(key).__name__}.")
    if not 1 <= len(key) <= 255:
        raise ValueError(
            f"unique_key must be 1 to 255 characters, got {len(key)} characters."
        )
    if unique_for is None:
        return key, None
    if isinstance(unique_for, datetime.timedelta):
        seconds = unique_for.total_seconds()
    elif isinstance(unique_for, numbers.Real) and not isinstance(unique_for, bool):
        try:
            seconds = float(unique_for)
        except OverflowError:  # an int too large for a float
            seconds = -math.inf if unique_for < 0 else math.inf
    else:
        raise TypeError(
            "unique_for must be a number of seconds or a timedelta, "
            f"got {type(unique_for).__name__}."
        )
    if not 0 < seconds < math.inf:
        raise ValueError(
            f"unique_for must be more than 0 seconds, and finite, got {seconds:g}."
        )
    try:
        return key, now + datetime.timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(
            f"unique_for of {seconds:g} seconds would hold the key past the year 9999."
        ) from None


def conflict_policy(value: Any) -> str:
    if value is None:
        return DEFAULT_POLICY
    if value not in POLICIES:
        raise ValueError(
            f"on_conflict must be one of {', '.join(map(repr, POLICIES))}, "
            f"got {validation.shown(value)}."
        )
    return str(value)


def insert(task: models.Task, policy: str) -> models.Task:
    """Insert `task`; on a held key, apply `policy` and return the task holding it.

    Idle workers hear of the task once it commits (see claiming.insert); a
    task that loses its key to a holder wakes nobody.

    The INSERT runs in a savepoint, so a conflict inside the caller's
    transaction leaves the rest of that transaction intact. The holder is
    then read with a plain query: under READ COMMITTED (PostgreSQL, and
    Django's default on MySQL) it sees the row that made the INSERT fail. A
    locking read here would deadlock on InnoDB, where every loser of the
    race keeps a shared lock on the duplicate key.
    """
    db = models.queue_db()
    if task.unique_hold is None:
        claiming.insert(task, using=db)
        return task
    key = task.unique_hold
    last_error: DatabaseError = IntegrityError(
        f"unique_key {key!r} kept changing hands"
    )
    for attempt in range(1, TRIES + 1):
        _pause_before_retry(attempt)
        try:
            try:
                with transaction.atomic(using=db):
                    claiming.insert(task, using=db)
                return task
            except IntegrityError as exc:
                last_error = exc
            holder = models.Task.objects.using(db).filter(unique_hold=key).first()
            if holder is None:
                continue  # released between our INSERT and the read; try again
            if _release_if_lapsed(holder):
                continue
            if policy == "raise":
                raise exceptions.DuplicateTask(key, holder.id)
            if policy == "replace" and _withdraw(holder, task):
                continue
        except DatabaseError as exc:
            # Racing writers of one key can deadlock on InnoDB: in the INSERT,
            # or in the UPDATE that releases or withdraws the holder. Retried
            # only outside the caller's transaction: inside one, the server
            # rolled it back.
            if transaction.get_connection(db).in_atomic_block or not (
                claiming.is_transient(exc, using=db)
            ):
                raise
            last_error = exc
            time.sleep(0.01 * attempt)
            continue
        logger.debug(
            "Task %s not stored: unique_key=%r is held by task %s (%s).",
            task.id,
            key,
            holder.id,
            holder.status,
        )
        return holder
    # The key kept changing hands, or the INSERT broke another constraint.
    raise last_error


def _pause_before_retry(attempt: int) -> None:
    """Wait a random moment before the `attempt`th insert, from the third on (the second retry).

    Writers that replace one another's task on one key take turns: each
    withdraws the holder and inserts again, and the same ones kept colliding
    in step until one of them ran out of tries (about one run in fifty of
    eight threads replacing five times each). A random pause breaks the
    step. The first retry goes at once, so a key that changes hands once,
    as when its holder finishes, costs nothing. A retry after a deadlock
    has waited already and gets this pause on top: a millisecond or two.
    """
    if attempt > 2:
        time.sleep(random.uniform(0, 0.001 * (attempt - 1)))  # noqa: S311 - jitter, not a secret


def _release_if_lapsed(holder: models.Task) -> bool:
    """Free the key of a finished task whose unique_for period has passed."""
    if not holder.is_finished:
        return False
    now = timezone.now()
    if holder.unique_until is not None and holder.unique_until > now:
        return False
    return (
        models.Task.objects.using(models.queue_db())
        .finished()
        .filter(pk=holder.pk, unique_hold=holder.unique_hold)
        .filter(Q(unique_until__isnull=True) | Q(unique_until__lte=now))
        .update(unique_hold=None)
        == 1
    )


def _withdraw(holder: models.Task, replacement: models.Task) -> bool:
    """Cancel a still-queued holder so `replacement` can take its key.

    A running holder cannot be withdrawn (only its own outcome may finish
    it), nor a finished one inside its unique_for period: then the call is
    treated as "ignore", as Oban's replace does for executing jobs.
    """
    withdrawn = (
        models.Task.objects.using(models.queue_db())
        .queued()
        .filter(pk=holder.pk)
        .update(
            status=models.Status.CANCELLED,
            finished_at=timezone.now(),
            error=f"Replaced by task {replacement.id}",
            unique_hold=None,
        )
        == 1
    )
    if withdrawn:
        logger.info(
            "Task id=%s path=%s queue=%s state=CANCELLED reason=Replaced by task %s",
            holder.id,
            holder.func,
            holder.queue,
            replacement.id,
        )
    return withdrawn
