import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dbqueue import health
from dbqueue.management import arguments

USAGE_ERROR = 2  # exit status of a bad argument, apart from 1 for "unhealthy"


class Command(BaseCommand):
    help = (
        "Check dbqueue's health for a probe: print one line saying why, and exit 0 "
        "when healthy, 1 when not (2 for a bad argument). --liveness: a cluster on "
        "this host (this container) has heartbeated within DBQUEUE_LEASE. "
        "--readiness: the database answers and no unpaused queue's oldest due "
        "task has waited longer than --max-lag. With neither flag, both are checked."
    )
    # A probe runs this every few seconds: skip the system checks, which on
    # Django 6 query the database and would turn an outage into a traceback.
    requires_system_checks = ()

    def add_arguments(self, parser: CommandParser) -> None:
        kind = parser.add_mutually_exclusive_group()
        kind.add_argument(
            "--liveness",
            action="store_true",
            help="Only check that the cluster heartbeats (for a liveness probe: "
            "restart the container when it fails).",
        )
        kind.add_argument(
            "--readiness",
            action="store_true",
            help="Only check the database and the lag (for a readiness probe or an alert).",
        )
        parser.add_argument(
            "--cluster",
            metavar="PID_OR_ID",
            help="The cluster whose heartbeat counts: the pid of a qcluster on this "
            "host, or a cluster id as qinfo shows it (default: any cluster on this host).",
        )
        parser.add_argument(
            "--max-lag",
            metavar="SECONDS",
            help="Most seconds the oldest due task of a queue may wait (default: "
            "DBQUEUE_HEALTH_MAX_LAG).",
        )
        parser.add_argument(
            "--queues",
            metavar="A,B",
            help="Only check the lag of these queues (default: every queue).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print {healthy, reason, checks: [{name, ok, detail}]} instead of the line.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            arguments.refuse_double_dash(options, ["cluster", "max_lag", "queues"])
        except CommandError as exc:
            raise CommandError(str(exc), returncode=USAGE_ERROR) from None
        liveness = not options["readiness"]
        readiness = not options["liveness"]
        cluster = arguments.storable(
            "--cluster", options["cluster"], returncode=USAGE_ERROR
        )
        if cluster is not None and not cluster.strip():
            raise CommandError(
                "--cluster must be a pid or a cluster id, got an empty value.",
                returncode=USAGE_ERROR,
            )
        if cluster is not None and not liveness:
            raise CommandError(
                "--cluster picks whose heartbeat --liveness checks; it does not "
                "apply to --readiness.",
                returncode=USAGE_ERROR,
            )
        for flag in ("max_lag", "queues"):
            if options[flag] is not None and not readiness:
                raise CommandError(
                    f"{arguments.flag_of(flag)} applies to the readiness check, "
                    "not to --liveness.",
                    returncode=USAGE_ERROR,
                )
        max_lag = (
            arguments.seconds("--max-lag", options["max_lag"], returncode=USAGE_ERROR)
            if options["max_lag"] is not None
            else health.max_lag_setting()
        )
        queues = (
            arguments.queue_names("--queues", options["queues"], returncode=USAGE_ERROR)
            if options["queues"] is not None
            else None
        )
        report = health.check(
            liveness=liveness,
            readiness=readiness,
            cluster=cluster.strip() if cluster else None,
            max_lag=max_lag,
            queues=queues,
        )
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "healthy": report.healthy,
                        "reason": report.line(),
                        "checks": [vars(check) for check in report.checks],
                    }
                )
            )
        else:
            self.stdout.write(report.line())
        if not report.healthy:
            self.stdout.flush()
            sys.exit(1)
