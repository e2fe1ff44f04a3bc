"""What a failed attempt leads to: a retry after a delay, the dead-letter queue, or a discard.

A retry is never a sleeping worker: the task goes back to QUEUED with a later
``run_after``, and any worker picks it up when it is due. The policy is the
task's own (``@task(retry_on=..., discard_on=..., backoff=...)``), read by
the worker from the registered function, so changing it needs a deploy but
no migration of queued rows.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import numbers
import random
from collections.abc import Callable
from typing import Any

from django.utils import timezone

from dbqueue.conf import settings

logger = logging.getLogger(__name__)

Backoff = Callable[[int, BaseException], float]
ExceptionTypes = tuple[type[BaseException], ...]


class Retry(Exception):
    """Raise inside a task to run it again later: ``raise Retry(countdown=60)``.

    The attempt counts against ``max_attempts``; once they are used up the
    task goes to the dead-letter queue as for any other failure. Give
    `countdown` (seconds) or `eta` (an aware datetime); with neither, the
    task's backoff decides.
    """

    def __init__(
        self,
        reason: str = "",
        *,
        countdown: float | None = None,
        eta: datetime.datetime | None = None,
    ) -> None:
        if countdown is not None and eta is not None:
            raise ValueError("Give Retry a countdown or an eta, not both.")
        if countdown is not None and (
            isinstance(countdown, bool)
            or not isinstance(countdown, numbers.Real)
            or countdown < 0
        ):
            raise ValueError(
                f"Retry countdown must be seconds >= 0, got {countdown!r}."
            )
        if eta is not None and (
            not isinstance(eta, datetime.datetime) or timezone.is_naive(eta)
        ):
            raise ValueError(f"Retry eta must be an aware datetime, got {eta!r}.")
        self.countdown = countdown
        self.eta = eta
        super().__init__(reason or "The task asked to be retried.")

    def delay(self) -> float | None:
        """Seconds until the retry, or None to let the backoff decide."""
        if self.countdown is not None:
            return float(self.countdown)
        if self.eta is not None:
            return max(0.0, (self.eta - timezone.now()).total_seconds())
        return None


@dataclasses.dataclass(frozen=True)
class Decision:
    """What to do with a failed attempt."""

    retry: bool
    delay: float | None = None  # seconds; None: the default backoff
    discard: bool = False  # end the task without a dead-letter entry


DEAD_LETTER = Decision(retry=False)
DISCARD = Decision(retry=False, discard=True)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """A task's rules for failed attempts.

    - `retry_on`: only these exception classes are retried (Celery's
      ``autoretry_for``); None retries every exception.
    - `discard_on`: these end the task at once with no dead-letter entry, for
      failures that are expected and final (the row it was about is gone).
    - `backoff`: the base delay in seconds, doubling each attempt up to
      `backoff_max`, or a callable ``(attempt, exception) -> seconds`` for
      full control. None means DBQUEUE_RETRY_BACKOFF.
    - `jitter`: randomise half of each computed delay ("equal jitter").
    """

    retry_on: ExceptionTypes | None = None
    discard_on: ExceptionTypes = ()
    backoff: float | Backoff | None = None
    backoff_max: float | None = None
    jitter: bool = True

    @classmethod
    def build(
        cls,
        *,
        retry_on: Any = None,
        discard_on: Any = None,
        backoff: Any = None,
        backoff_max: Any = None,
        jitter: Any = True,
    ) -> RetryPolicy:
        """Validate @task's retry options; raise TypeError or ValueError at decoration time."""
        if backoff is not None and not callable(backoff):
            _require_seconds(backoff, "backoff")
        if backoff_max is not None:
            _require_seconds(backoff_max, "backoff_max")
        if not isinstance(jitter, bool):
            raise TypeError(f"jitter must be True or False, got {jitter!r}.")
        return cls(
            retry_on=None
            if retry_on is None
            else _exception_types(retry_on, "retry_on"),
            discard_on=_exception_types(discard_on or (), "discard_on"),
            backoff=backoff,
            backoff_max=backoff_max,
            jitter=jitter,
        )

    def decide(self, attempt: int, exc: BaseException) -> Decision:
        """Decide after failed attempt number `attempt` (1-based); attempts left are the model's business."""
        if self.discard_on and isinstance(exc, self.discard_on):
            return DISCARD
        if isinstance(exc, Retry):
            delay = exc.delay()
            return Decision(
                retry=True,
                delay=delay if delay is not None else self.delay(attempt, exc),
            )
        if self.retry_on is not None and not isinstance(exc, self.retry_on):
            return DEAD_LETTER
        return Decision(retry=True, delay=self.delay(attempt, exc))

    def delay(self, attempt: int, exc: BaseException) -> float:
        """Seconds to wait after failed attempt `attempt`."""
        if callable(self.backoff):
            try:
                seconds = float(self.backoff(attempt, exc))
            except Exception:
                logger.exception(
                    "The backoff callable %r raised; using the default backoff.",
                    self.backoff,
                )
            else:
                if seconds >= 0:
                    return seconds
                logger.error(
                    "The backoff callable %r returned %r; using the default backoff.",
                    self.backoff,
                    seconds,
                )
            return backoff_delay(attempt)
        return backoff_delay(
            attempt, base=self.backoff, cap=self.backoff_max, jitter=self.jitter
        )


DEFAULT_POLICY = RetryPolicy()


def backoff_delay(
    attempt: int,
    *,
    base: float | None = None,
    cap: float | None = None,
    jitter: bool = True,
) -> float:
    """Return the seconds to wait after failed attempt number `attempt` (1-based).

    The delay doubles each attempt from `base` (DBQUEUE_RETRY_BACKOFF) up to
    `cap` (DBQUEUE_RETRY_BACKOFF_MAX), and with `jitter` half of it is
    random, so tasks that failed together (a database restart, an API
    outage) do not all come back in the same second.
    """
    base = float(settings.RETRY_BACKOFF if base is None else base)
    cap = float(settings.RETRY_BACKOFF_MAX if cap is None else cap)
    delay = min(cap, base * 2.0 ** max(0, attempt - 1))
    if not jitter:
        return delay
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not security


def _require_seconds(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0:
        raise ValueError(
            f"{name} must be a number of seconds >= 0 or a callable, got {value!r}."
        )


def _exception_types(value: Any, name: str) -> ExceptionTypes:
    types = value if isinstance(value, (tuple, list)) else (value,)
    for kind in types:
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            raise TypeError(f"{name} takes exception classes, got {kind!r}.")
    return tuple(types)
