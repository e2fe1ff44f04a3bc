"""How long a failed task waits before its next attempt."""

from __future__ import annotations

import random

from dbqueue.conf import settings


def backoff_delay(attempt: int) -> float:
    """Return the seconds to wait after failed attempt number `attempt` (1-based).

    The delay doubles each attempt from DBQUEUE_RETRY_BACKOFF up to
    DBQUEUE_RETRY_BACKOFF_MAX, and half of it is random ("equal jitter"), so
    tasks that failed together (a database restart, an API outage) do not all
    come back in the same second.
    """
    base = float(settings.RETRY_BACKOFF)
    cap = float(settings.RETRY_BACKOFF_MAX)
    delay = min(cap, base * 2.0 ** max(0, attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not security
