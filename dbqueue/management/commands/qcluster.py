import logging
import math
import os
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import OperationalError, connections

from dbqueue import progress, validation
from dbqueue.cluster import shutdown
from dbqueue.cluster.supervisor import Supervisor
from dbqueue.conf import settings
from dbqueue.management import arguments

DATABASE_WAIT_MAX = 30.0  # seconds between tries while the database is unreachable


class Command(BaseCommand):
    help = (
        "Run a dbqueue cluster: worker processes that claim and run queued tasks. "
        "Stop it with SIGTERM or Ctrl-C; running tasks finish first."
    )
    # The checks run in handle(), once the database answers: on Django 6 some
    # model checks query it, and a cluster started before its database must
    # wait for it rather than crash in a check.
    requires_system_checks = ()

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--workers",
            type=int,
            help="Worker processes to run (default: DBQUEUE_WORKERS, else one per CPU core).",
        )
        parser.add_argument(
            "--queues",
            help="Comma-separated queues to serve, or '*' for all (default: DBQUEUE_QUEUES).",
        )
        parser.add_argument(
            "--burst",
            action="store_true",
            help="Exit once no task is due (runs no scheduler).",
        )
        parser.add_argument(
            "--no-scheduler",
            action="store_true",
            help="Run no scheduler process in this cluster (another cluster fires the schedules).",
        )
        parser.add_argument(
            "--max-tasks",
            type=int,
            help="Replace a worker after this many tasks (default: DBQUEUE_MAX_TASKS_PER_CHILD).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            help="Tasks a worker claims at once (default: DBQUEUE_BATCH_SIZE).",
        )
        parser.add_argument(
            "--poll-interval",
            type=float,
            help="Seconds an idle worker waits between claims (default: DBQUEUE_POLL_INTERVAL).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        arguments.refuse_double_dash(
            options, ("workers", "max_tasks", "batch_size", "poll_interval", "queues")
        )
        workers = (
            options["workers"]
            if options["workers"] is not None
            else settings.WORKERS or os.cpu_count() or 1
        )
        for flag, value, minimum in (
            ("--workers", workers, 1),
            ("--max-tasks", options["max_tasks"], 1),
            ("--batch-size", options["batch_size"], 1),
        ):
            if value is not None and value < minimum:
                raise CommandError(f"{flag} must be at least {minimum}, got {value}.")
        if (options["batch_size"] or 0) > validation.MAX_BATCH_SIZE:
            raise CommandError(
                f"--batch-size must be at most {validation.MAX_BATCH_SIZE}, "
                f"got {options['batch_size']}."
            )
        interval = options["poll_interval"]
        if interval is not None and not 0 <= interval < math.inf:
            raise CommandError(
                f"--poll-interval must be a finite number of seconds, 0 or more, got {interval}."
            )
        queues = (
            arguments.queue_names("--queues", options["queues"], wildcard=True)
            if options["queues"]
            else None
        )
        _show_logs(options["verbosity"])
        _wait_for_database()
        # The database checks (server version) are not part of the default
        # run; a cluster must not start on a server it cannot claim on.
        self.check(databases=[settings.DATABASE])
        supervisor = Supervisor(
            workers=workers,
            queues=queues,
            burst=options["burst"],
            max_tasks=options["max_tasks"],
            batch_size=options["batch_size"],
            poll_interval=options["poll_interval"],
            scheduler=not options["no_scheduler"],
        )
        code = supervisor.run()
        if code:
            raise SystemExit(code)


def _show_logs(verbosity: int) -> None:
    """Print dbqueue's log lines when the project has not routed them anywhere."""
    logger = logging.getLogger("dbqueue")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG))


def _wait_for_database() -> None:
    """Wait, with a backoff, until the queue database answers.

    A cluster started before its database (a host booting, a container
    starting first) waits with one log line per try instead of crashing.
    SIGTERM or Ctrl-C while waiting ends it with one message and exit code 1.
    """
    connection = connections[settings.DATABASE]
    logger = logging.getLogger("dbqueue.cluster")
    stop = threading.Event()
    shutdown.on_stop(lambda signum: stop.set())
    delay = 1.0
    while True:
        try:
            connection.ensure_connection()
        except OperationalError as exc:
            logger.warning(
                "Database %r is unreachable (%s); retrying in %.0fs.",
                settings.DATABASE,
                progress.first_line(exc),
                delay,
            )
            connection.close()
            if stop.wait(delay):
                raise CommandError(
                    f"Stopped while waiting for database {settings.DATABASE!r}."
                ) from None
            delay = min(delay * 2, DATABASE_WAIT_MAX)
        else:
            return
