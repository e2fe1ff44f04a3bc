import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from dbqueue import models, overview, progress, stats
from dbqueue.management import arguments


class Command(BaseCommand):
    help = (
        "Show dbqueue on one screen: the clusters and their workers (host, pid, "
        "queues, the task each runs, last heartbeat; STALE when a cluster stopped "
        "heartbeating), per queue the queued, running and failed counts and the "
        "lag (age of the oldest due task), paused queues, and the throughput and "
        "failure rate of the last minutes. For a live view, use qmonitor."
    )
    # Nothing here needs the system checks, and on Django 6 some of them
    # query the database: an unreachable one must get the one-line error below.
    requires_system_checks = ()

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the same figures as one JSON object (times in ISO 8601, "
            "ages in seconds), for scripts and monitoring.",
        )
        parser.add_argument(
            "--minutes",
            default=str(overview.RECENT_MINUTES),
            metavar="N",
            help="Span of the throughput figures, in minutes, the current one "
            f"included (1 to {int(stats.WINDOW / stats.BUCKET)}; default "
            f"{overview.RECENT_MINUTES}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        arguments.refuse_double_dash(options, ["minutes"])
        minutes = arguments.whole_number(
            "--minutes",
            options["minutes"],
            maximum=int(stats.WINDOW / stats.BUCKET),
        )
        try:
            found = overview.read(minutes=minutes)
        except DatabaseError as exc:
            raise CommandError(
                f"Cannot read the queue from database {models.queue_db()!r}: "
                f"{progress.first_line(exc)}"
            ) from None
        if options["json"]:
            self.stdout.write(json.dumps(overview.as_dict(found), indent=2))
        else:
            self.stdout.write(overview.render(found))
