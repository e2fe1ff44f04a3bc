import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet

from dbqueue import models, progress, purging, validation
from dbqueue.management import arguments

VALUE_OPTIONS = ("queue", "func", "older_than", "batch_size")


class Command(BaseCommand):
    help = (
        "Delete QUEUED tasks that should never run, chosen by --queue, --func and "
        "--older-than (all given filters must match), or every queued task with "
        "--all. Running and finished tasks are never touched. Asks before it "
        "deletes (--yes to skip the question); --dry-run only counts. Tasks "
        "enqueued while it runs are left alone. To keep a record of what was "
        "withdrawn, cancel the tasks in the admin instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue", metavar="NAME", help="Only tasks of this queue.")
        parser.add_argument(
            "--func",
            metavar="PATH",
            help="Only tasks of this function, by its dotted path "
            "(it need not be importable any more).",
        )
        parser.add_argument(
            "--older-than",
            metavar="SECONDS",
            help="Only tasks enqueued more than SECONDS ago.",
        )
        parser.add_argument(
            "--all",
            action="store_true",
            help="Delete every queued task (required when no filter is given).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be deleted, by queue and function; delete nothing.",
        )
        parser.add_argument(
            "--yes",
            "-y",
            "--no-input",
            "--noinput",
            action="store_false",
            dest="interactive",
            help="Do not ask for confirmation (for scripts).",
        )
        parser.add_argument(
            "--batch-size",
            metavar="N",
            default=str(purging.BATCH_SIZE),
            help=f"Tasks deleted per transaction (1 to {validation.MAX_BATCH_SIZE}; "
            f"default {purging.BATCH_SIZE}).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the outcome as one JSON object (progress and the question "
            "still go to stderr).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        arguments.refuse_double_dash(options, VALUE_OPTIONS)
        queue = arguments.storable("--queue", options["queue"])
        func = arguments.storable("--func", options["func"])
        for flag, value in (("--queue", queue), ("--func", func)):
            if value is not None and not value.strip():
                raise CommandError(f"{flag} must name something, got {value!r}.")
        older_than = (
            arguments.seconds("--older-than", options["older_than"])
            if options["older_than"] is not None
            else None
        )
        batch_size = arguments.whole_number(
            "--batch-size", options["batch_size"], maximum=validation.MAX_BATCH_SIZE
        )
        filters = {"queue": queue, "func": func, "older_than": older_than}
        given = {name: value for name, value in filters.items() if value is not None}
        if options["all"] and given:
            raise CommandError("Give filters or --all, not both.")
        if not (given or options["all"]):
            raise CommandError(
                "Give a filter (--queue, --func, --older-than), or --all to "
                "delete every queued task."
            )
        selection = purging.matching(queue=queue, func=func, older_than=older_than)
        described = _describe(given)
        if options["dry_run"]:
            self._dry_run(selection, given, json_out=options["json"])
            return
        matched = selection.count()
        if matched and options["interactive"] and not self._confirm(matched, described):
            raise CommandError("Not confirmed; nothing was deleted.")
        bar = progress.Progress(
            self.stderr,
            "Deleting queued tasks",
            total=matched,
            verbosity=options["verbosity"],
        )
        try:
            report = purging.purge(
                selection,
                batch_size=batch_size,
                on_batch=lambda so_far: bar.update(so_far.deleted),
                matched=matched,
            )
        finally:
            bar.finish()  # end the counter's line before any error is printed
        if options["json"]:
            self.stdout.write(json.dumps(_as_dict(report, given)))
            return
        text = (
            f"Deleted {report.deleted:,} queued task{_s(report.deleted)} "
            f"{described} in {report.batches} batch{'es' if report.batches != 1 else ''}."
        )
        if report.left:
            text += (
                f" {report.left:,} more had matched but were claimed by a worker "
                "or deleted by someone else meanwhile."
            )
        self.stdout.write(text)

    def _dry_run(
        self,
        selection: QuerySet[models.Task],
        filters: dict[str, Any],
        *,
        json_out: bool,
    ) -> None:
        report = purging.purge(selection, dry_run=True)
        groups = purging.groups(selection) if report.matched else []
        if json_out:
            data = _as_dict(report, filters)
            data["groups"] = [
                {"queue": queue, "func": func, "count": count}
                for queue, func, count in groups
            ]
            self.stdout.write(json.dumps(data))
            return
        for queue, func, count in groups:
            self.stdout.write(f"  {count:>9,}  queue {queue!r}  {func}")
        if len(groups) == purging.TOP_GROUPS:
            self.stdout.write(f"  (the {purging.TOP_GROUPS} largest groups)")
        self.stdout.write(
            f"Dry run: would delete {report.matched:,} queued "
            f"task{_s(report.matched)} {_describe(filters)}. Nothing was deleted."
        )

    def _confirm(self, matched: int, described: str) -> bool:
        """Ask on stderr and read the answer from stdin; no answer (EOF) means no."""
        self.stderr.write(
            f"Delete {matched:,} queued task{_s(matched)} {described}? "
            "This cannot be undone. [y/N] ",
            style_func=progress.plain,
            ending="",
        )
        self.stderr.flush()
        answer = sys.stdin.readline()
        if answer and not sys.stdin.isatty():
            # A terminal has echoed the answer already.
            self.stderr.write(answer.strip(), style_func=progress.plain)
        if not answer:
            self.stderr.write("")
            self.stderr.write(
                "No answer (stdin is closed); pass --yes to delete without asking."
            )
        return answer.strip().lower() in ("y", "yes")


def _describe(filters: dict[str, Any]) -> str:
    if not filters:
        return "(all queues)"
    parts = []
    if "queue" in filters:
        parts.append(f"queue={filters['queue']!r}")
    if "func" in filters:
        parts.append(f"func={filters['func']!r}")
    if "older_than" in filters:
        parts.append(
            f"enqueued more than {progress.duration(filters['older_than'])} ago"
        )
    return "(" + ", ".join(parts) + ")"


def _as_dict(report: purging.PurgeReport, filters: dict[str, Any]) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "filters": filters,
        "matched": report.matched,
        "deleted": report.deleted,
        "batches": report.batches,
    }


def _s(count: int) -> str:
    return "" if count == 1 else "s"
