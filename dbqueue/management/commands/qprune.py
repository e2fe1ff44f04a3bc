import functools
import math
from collections.abc import Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from dbqueue import progress, retention, validation
from dbqueue.conf import settings
from dbqueue.management import arguments

# Report field, flag, the setting it overrides.
KINDS = (
    ("succeeded", "--succeeded-older-than", "RETAIN_SUCCEEDED"),
    ("failed", "--failed-older-than", "RETAIN_FAILED"),
    ("dead_letters", "--dead-letters-older-than", "RETAIN_DEAD_LETTERS"),
)
# What one row and several rows of each kind are called.
LABELS = {
    "succeeded": ("succeeded task", "succeeded tasks"),
    "failed": ("failed or cancelled task", "failed or cancelled tasks"),
    "dead_letters": ("dead letter", "dead letters"),
}


class Command(BaseCommand):
    help = (
        "Delete finished tasks and dead letters older than their retention, in "
        "short batches that never block workers. Run it from cron when "
        "DBQUEUE_PRUNE_INTERVAL is None; otherwise the clusters already do."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        for _, flag, setting in KINDS:
            parser.add_argument(
                flag,
                metavar="SECONDS",
                help=f"Delete those finished more than SECONDS ago, or 'never' "
                f"to keep them (default: DBQUEUE_{setting}).",
            )
        parser.add_argument(
            "--batch-size",
            metavar="N",
            help="Rows deleted per transaction (default: DBQUEUE_PRUNE_BATCH_SIZE).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be deleted and delete nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ages: dict[str, float | None] = {}
        for field, flag, _ in KINDS:
            given = options[flag.removeprefix("--").replace("-", "_")]
            ages[field] = (
                _seconds(flag, str(given))
                if given is not None
                else retention.retention_of(field)
            )
        batch_size = _batch_size(options["batch_size"])
        now = timezone.now()
        prune = functools.partial(
            retention.prune,
            now,
            retain_succeeded=ages["succeeded"],
            retain_failed=ages["failed"],
            retain_dead_letters=ages["dead_letters"],
            batch_size=batch_size,
        )
        show_progress = options["verbosity"] >= 1 and not options["dry_run"]
        bar = progress.Progress(
            self.stderr,
            "Pruning",
            # Counting first costs one indexed count per kind, and gives the
            # counter a total to show a percentage and the time left against.
            total=prune(dry_run=True).total if show_progress else None,
            verbosity=options["verbosity"] if show_progress else 0,
        )
        try:
            report = prune(
                dry_run=options["dry_run"],
                on_batch=lambda so_far: bar.update(so_far.total),
            )
        finally:
            bar.finish()
        if options["verbosity"] >= 1:
            self.stdout.write("\n".join(_summary(report, ages)))
        if report.gave_up:
            raise CommandError(
                f"Stopped after {retention.CONFLICTS_MAX} lock conflicts in a row; "
                "the rows deleted so far stay deleted. Run qprune again later."
            )


def _summary(
    report: retention.PruneReport, ages: dict[str, float | None]
) -> Iterator[str]:
    verb = "Would delete" if report.dry_run else "Deleted"
    for field, _, _ in KINDS:
        age = ages[field]
        one, many = LABELS[field]
        if age is None:
            yield f"Kept all {many} (no retention set)."
        else:
            count = getattr(report, field)
            label = one if count == 1 else many
            yield f"{verb} {count} {label} older than {_duration(age)}."


def _seconds(flag: str, text: str) -> float | None:
    if text.strip().lower() == "never":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise CommandError(
            f"{flag} must be a number of seconds (0 or more) or 'never', got {text!r}."
        )
    return value


def _batch_size(text: object) -> int:
    if text is None:
        return int(settings.PRUNE_BATCH_SIZE)
    value = arguments.whole_number("--batch-size", text)
    if value > validation.MAX_BATCH_SIZE:
        raise CommandError(
            f"--batch-size must be at most {validation.MAX_BATCH_SIZE}, got {text!r}."
        )
    return value


def _duration(seconds: float) -> str:
    """Say `seconds` the way an operator reads it: 604800 is '7 days'."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g}s"
