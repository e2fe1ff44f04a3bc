"""dbqueue's settings, read live from Django's settings.

Each default below is a class attribute with its unit. A project overrides one
by setting ``DBQUEUE_<NAME>`` in its settings module. Nothing is copied at import
time, so ``override_settings(DBQUEUE_WORKERS=1)`` works in tests and the system
checks in :mod:`dbqueue.checks` see what the worker will see.

A value is looked up once and remembered until Django's ``setting_changed``
signal says a setting changed (``override_settings`` sends it): enqueue reads
half a dozen settings per call, and a setting the project leaves out costs
Django a raised AttributeError on every lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed

PREFIX = "DBQUEUE_"


class Settings:
    """Defaults for every ``DBQUEUE_*`` setting; attribute access reads the live value."""

    # Alias in DATABASES that holds the queue tables. Enqueueing is transactional
    # with the caller's work only when both use this alias.
    DATABASE: str = "default"
    # Worker processes that `qcluster` forks; None means one per CPU core.
    WORKERS: int | None = None
    # Queues a cluster serves when `qcluster --queues` is not given.
    QUEUES: tuple[str, ...] = ("default",)
    # Queue of a task that names none.
    DEFAULT_QUEUE: str = "default"
    # An idle worker looks for work after POLL_INTERVAL seconds, doubling the
    # wait while the queue stays empty, up to POLL_INTERVAL_MAX. On PostgreSQL
    # a NOTIFY from enqueue wakes it at once instead.
    POLL_INTERVAL: float = 0.2  # seconds
    POLL_INTERVAL_MAX: float = 2.0  # seconds
    # On PostgreSQL an idle worker LISTENs instead: a NOTIFY tells it of every
    # task put in the queue and of when a delayed one falls due, so it looks
    # on its own only this often, as a safety net (dbqueue.claiming.listen).
    LISTEN_POLL_INTERVAL: float = 15.0  # seconds
    # Most tasks one worker claims per transaction (see BatchSizer), from 1
    # to 10,000.
    BATCH_SIZE: int = 50
    HEARTBEAT_INTERVAL: float = (
        5.0  # seconds between a cluster's heartbeats and lease renewals
    )
    # A running task's lease is renewed at every heartbeat; when a cluster dies,
    # its tasks are rescued once the lease has run out.
    LEASE: float = 30.0  # seconds
    TIMEOUT: float | None = None  # seconds a task may run; None for no limit
    # Past its timeout a task first gets a catchable TaskTimeout; a worker
    # still running it this much later is killed.
    TIMEOUT_KILL_AFTER: float = 1.0  # seconds
    MAX_TASKS_PER_CHILD: int | None = None  # tasks before a worker is replaced
    MAX_MEMORY_PER_CHILD: int | None = (
        None  # MiB of resident memory before a worker is replaced
    )
    MAX_ATTEMPTS: int = 3  # runs of a task before it goes to the dead-letter queue
    RETRY_BACKOFF: float = 5.0  # seconds before the first retry; doubles each attempt
    RETRY_BACKOFF_MAX: float = 3600.0  # seconds; the cap on the retry delay
    SERIALIZER: str = "pickle"  # "pickle" (signed) or "json" (signed)
    MAX_PAYLOAD_SIZE: int = 1024 * 1024  # bytes of serialised arguments per task
    # Argument names whose values never show in the admin, logs or error
    # messages: a keyword argument (or a key of a dict argument, or a
    # parameter bound by position) whose name contains one of these,
    # ignoring case, "_" and "-". See dbqueue.redaction.
    SECRET_ARGUMENT_NAMES: tuple[str, ...] = (
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "api_key",
        "access_key",
        "private_key",
        "credential",
        "authorization",
        "cookie",
    )
    SAVE_RESULTS: bool = True  # keep a succeeded task's row and result
    SYNC: bool = False  # run tasks inside async_task(), for a project's own tests
    SHUTDOWN_GRACE: float = 30.0  # seconds running tasks get to finish after SIGTERM
    # Finished tasks are deleted this long after they finish (None: kept
    # forever): succeeded ones, and failed or cancelled ones. Dead-letter
    # entries (FailedTask), replayed or not, are kept until an operator
    # deletes them, unless RETAIN_DEAD_LETTERS is set.
    RETAIN_SUCCEEDED: float | None = 7 * 24 * 3600.0  # seconds (7 days)
    RETAIN_FAILED: float | None = 30 * 24 * 3600.0  # seconds (30 days)
    RETAIN_DEAD_LETTERS: float | None = None  # seconds; None keeps them
    # Each cluster's scheduler process prunes this often (None: never; use
    # `manage.py qprune` from cron instead), deleting PRUNE_BATCH_SIZE rows
    # per short transaction so claiming is never blocked behind it.
    PRUNE_INTERVAL: float | None = 300.0  # seconds
    PRUNE_BATCH_SIZE: int = 1000  # rows
    # Dotted paths of plain callables allowed as tasks without @task,
    # such as "django.core.mail.send_mail".
    TASKS: tuple[str, ...] = ()
    # The scheduler process looks for due schedules at least this often, and
    # sooner when a schedule is due before then.
    SCHEDULER_INTERVAL: float = 1.0  # seconds
    # A due run at most this late is on time and always fires; an older one
    # was missed (no cluster was up) and the schedule's catch_up decides.
    SCHEDULE_GRACE: float = 60.0  # seconds
    # At most this many missed runs of one schedule fire with catch_up="ALL".
    SCHEDULE_CATCH_UP_MAX: int = 100  # runs
    # ScheduleRun records older than this are deleted by the scheduler.
    SCHEDULE_RUN_RETENTION: float = 7 * 24 * 3600.0  # seconds (7 days)
    # `qhealth --readiness` fails once a queue's oldest due task has waited
    # longer than this (None: lag is not checked). Paused queues do not count.
    HEALTH_MAX_LAG: float | None = 300.0  # seconds
    # Queue depth (the admin dashboard, qinfo, qmonitor, the metrics) counts at
    # most this many due and this many waiting tasks per queue, so a huge
    # backlog does not make each read slower; a count that stops here is
    # shown as "at least" (dbqueue.backlog).
    DEPTH_COUNT_LIMIT: int = 100_000  # tasks
    # Schedules declared in code, by name: {"nightly": {"func": "app.tasks.report",
    # "cron": "0 3 * * *", ...}}. Each scheduler syncs them when it starts.
    SCHEDULES: Mapping[str, Mapping[str, Any]] = MappingProxyType({})
    # Prometheus metrics (docs/monitoring.md). The view in dbqueue.urls and the
    # cluster's port let in a request bearing this token ("Authorization:
    # Bearer <token>"); the view also lets in logged-in staff users.
    METRICS_TOKEN: str | None = None
    # Each qcluster serves /metrics on this port too (None: it does not).
    METRICS_PORT: int | None = None
    METRICS_ADDRESS: str = "127.0.0.1"  # interface the port binds; "0.0.0.0" for all
    # Log lines about a task show its arguments (secret ones redacted, see
    # dbqueue.redaction); off by default, since arguments often hold personal data.
    LOG_ARGUMENTS: bool = False

    def __getattribute__(self, name: str) -> Any:
        try:
            return _values[name]
        except KeyError:
            pass
        if name.isupper():
            default = object.__getattribute__(self, name)
            value = getattr(django_settings, PREFIX + name, default)
            _values[name] = value
            return value
        return object.__getattribute__(self, name)

    @classmethod
    def names(cls) -> list[str]:
        """Return every setting name, without the prefix."""
        return [name for name in vars(cls) if name.isupper()]


_values: dict[str, Any] = {}


def _forget(**kwargs: Any) -> None:
    _values.clear()


setting_changed.connect(_forget, dispatch_uid="dbqueue.conf.forget")
settings = Settings()
