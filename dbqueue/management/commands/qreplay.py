import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet

from dbqueue import exceptions, models, progress, registry, replays, validation
from dbqueue.management import arguments

# The options that take a value.
VALUE_OPTIONS = ("func", "queue", "exception", "since", "until", "batch_size", "by")


class Command(BaseCommand):
    help = (
        "Replay dead-letter entries (FailedTask rows) as fresh tasks: the ids given, "
        "the entries matching the filters, or every entry with --all."
    )
    verbosity = 1  # per-entry lines from 1 up; 0 prints the summary only

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", metavar="ID", help="FailedTask ids.")
        parser.add_argument(
            "--func", help="Only entries of this task (its dotted path)."
        )
        parser.add_argument("--queue", help="Only entries from this queue.")
        parser.add_argument(
            "--exception",
            help="Only entries whose last error is this exception class or a "
            "subclass (a dotted path; 'ValueError' means builtins.ValueError).",
        )
        parser.add_argument(
            "--since",
            help="Only entries that failed at or after this ISO date or datetime.",
        )
        parser.add_argument(
            "--until", help="Only entries that failed before this ISO date or datetime."
        )
        parser.add_argument(
            "--all",
            action="store_true",
            help="Replay every entry (required when no id or filter is given).",
        )
        parser.add_argument(
            "--again",
            action="store_true",
            help="Replay entries that were replayed before too (they are skipped otherwise).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List what would be replayed and change nothing.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=replays.BATCH_SIZE,
            help=f"Entries replayed per transaction (default: {replays.BATCH_SIZE}).",
        )
        parser.add_argument(
            "--by",
            default="shell",
            help="Who replays, for the entries' replay log (default: 'shell').",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = options["verbosity"]
        arguments.refuse_double_dash(options, VALUE_OPTIONS)
        ids = [_id(value) for value in options["ids"]]
        filters: dict[str, Any] = {
            "func": arguments.storable("--func", options["func"]),
            "queue": arguments.storable("--queue", options["queue"]),
            "exception": arguments.storable("--exception", options["exception"]),
            "since": arguments.moment("--since", options["since"]),
            "until": arguments.moment("--until", options["until"]),
        }
        arguments.storable("--by", options["by"])
        filters = {name: value for name, value in filters.items() if value is not None}
        if options["all"] and ids:
            raise CommandError("Give ids or --all, not both.")
        if not (ids or filters or options["all"]):
            raise CommandError(
                "Give failed task ids, a filter (--func, --queue, --exception, "
                "--since, --until), or --all to replay every entry."
            )
        arguments.whole_number(
            "--batch-size", options["batch_size"], maximum=validation.MAX_BATCH_SIZE
        )
        try:
            selected = replays.matching(**filters)
        except (TypeError, ValueError) as exc:
            # The dates are parsed above; only --exception can be refused here.
            raise CommandError(f"--exception: {exc}") from exc
        if ids:
            found = set(
                replays.matching().filter(pk__in=ids).values_list("pk", flat=True)
            )
            missing = [pk for pk in ids if pk not in found]
            if missing:
                raise CommandError(
                    f"No failed task has the id {', '.join(map(str, missing))}."
                )
            selected = selected.filter(pk__in=ids)
        if options["dry_run"]:
            self._dry_run(selected, again=options["again"])
            return
        bar = progress.Progress(
            self.stderr,
            "Replaying failed tasks",
            total=selected.count() if self.verbosity >= 1 else None,
            verbosity=self.verbosity,
        )
        try:
            report = replays.replay_many(
                selected,
                by=options["by"],
                again=options["again"],
                batch_size=options["batch_size"],
                on_batch=lambda so_far: bar.update(
                    len(so_far.replayed) + len(so_far.skipped) + len(so_far.failed)
                ),
            )
        except ValueError as exc:
            # Only the arguments are checked this way, before anything is replayed.
            raise CommandError(f"--by: {exc}") from exc
        finally:
            bar.finish()
        self._show(report)
        if report.failed:
            raise CommandError(
                f"{len(report.failed)} replay(s) failed; those entries stay in the "
                "dead-letter queue with the error in their replay log."
            )

    def _dry_run(self, selected: QuerySet[models.FailedTask], *, again: bool) -> None:
        would = skip = unregistered = 0
        registered: dict[str, bool] = {}
        for entry in selected.order_by("failed_at", "pk").iterator():
            if entry.replay_count and not again:
                skip += 1
                self._line(f"Would skip {_describe(entry)}: replayed before.")
                continue
            if entry.func not in registered:
                registered[entry.func] = _is_registered(entry.func)
            if not registered[entry.func]:
                unregistered += 1
                self._line(
                    f"Would fail {_describe(entry)}: the function is not registered."
                )
                continue
            would += 1
            self._line(f"Would replay {_describe(entry)}.")
        self.stdout.write(
            f"Dry run: would replay {would}, skip {skip} (replayed before), "
            f"fail {unregistered} (function not registered). Nothing was changed."
        )

    def _show(self, report: replays.ReplayReport) -> None:
        for failed_id, task_id in report.replayed.items():
            self._line(f"Replayed failed task {failed_id} as task {task_id}.")
        for failed_id in report.skipped:
            self._line(
                f"Skipped failed task {failed_id}: replayed before (use --again)."
            )
        for failed_id, exc in report.failed.items():
            self.stderr.write(
                f"Failed to replay failed task {failed_id}: {type(exc).__name__}: {exc}"
            )
        self.stdout.write(str(report))

    def _line(self, text: str) -> None:
        if self.verbosity >= 1:
            self.stdout.write(text)


def _describe(entry: models.FailedTask) -> str:
    return (
        f"failed task {entry.pk} ({entry.func}, queue {entry.queue!r}, "
        f"failed {entry.failed_at.isoformat()}: {entry.error[:80]})"
    )


def _is_registered(func: str) -> bool:
    try:
        registry.resolve(func)
    except exceptions.TaskNotFound:
        return False
    return True


def _id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a failed task id (a UUID).") from None
