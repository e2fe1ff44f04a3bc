from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from dbqueue import monitor, overview, stats
from dbqueue.management import arguments


class Command(BaseCommand):
    help = (
        "Show qinfo's overview and refresh it every few seconds until Ctrl-C "
        "(or SIGTERM). On a terminal the screen is redrawn in place; when the "
        "output is a file or a pipe, each refresh is printed after the last, "
        "under a line of dashes. The database may go away meanwhile: the "
        "monitor says so and keeps trying."
    )
    requires_system_checks = ()  # as qinfo: an unreachable database is shown, not raised

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval",
            default=str(monitor.INTERVAL),
            metavar="SECONDS",
            help=f"Seconds between refreshes (at least {monitor.MIN_INTERVAL:g}; "
            f"default {monitor.INTERVAL:g}).",
        )
        parser.add_argument(
            "--count",
            metavar="N",
            help="Stop after N refreshes (default: run until stopped).",
        )
        parser.add_argument(
            "--minutes",
            default=str(overview.RECENT_MINUTES),
            metavar="N",
            help="Span of the throughput figures, in minutes "
            f"(1 to {int(stats.WINDOW / stats.BUCKET)}; default {overview.RECENT_MINUTES}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        arguments.refuse_double_dash(options, ["interval", "count", "minutes"])
        interval = arguments.seconds(
            "--interval", options["interval"], minimum=monitor.MIN_INTERVAL
        )
        count = (
            None
            if options["count"] is None
            else arguments.whole_number("--count", options["count"])
        )
        minutes = arguments.whole_number(
            "--minutes", options["minutes"], maximum=int(stats.WINDOW / stats.BUCKET)
        )
        monitor.Monitor(
            self.stdout, interval=interval, count=count, minutes=minutes
        ).run()
