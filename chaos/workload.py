"""The workload: what is enqueued, and what each kind of task should end as.

Most tasks are quick; some sleep long enough to be caught by a kill; a few
misbehave on purpose (raise, exit the process, run past their timeout,
ignore it, or hold memory past the recycle limit). Each kind states its
expected end: succeeded after one execution, or dead-lettered after exactly
`max_attempts` executions. Anything more is a duplicate the report explains
or flags.
"""

from __future__ import annotations

import dataclasses
import random

from chaos import tasks

# Attempts of a task that should succeed: enough that repeated kills never
# push it into the dead-letter queue during a run.
SUCCEEDING_ATTEMPTS = 10
FAILING_ATTEMPTS = 2


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    succeeds: bool
    options: dict[str, object]
    kwargs: dict[str, object]

    @property
    def max_attempts(self) -> int:
        return int(self.options["max_attempts"])  # type: ignore[call-overload]


KINDS = {
    kind.name: kind
    for kind in [
        Kind("ok", True, {"max_attempts": SUCCEEDING_ATTEMPTS}, {}),
        Kind("slow", True, {"max_attempts": SUCCEEDING_ATTEMPTS}, {"seconds": 0.5}),
        Kind(
            "hog",
            True,
            {"max_attempts": SUCCEEDING_ATTEMPTS},
            {"mib": 300},  # past DBQUEUE_MAX_MEMORY_PER_CHILD (200 MiB)
        ),
        Kind("raise", False, {"max_attempts": FAILING_ATTEMPTS}, {}),
        Kind("exit", False, {"max_attempts": FAILING_ATTEMPTS}, {}),
        Kind(
            "timeout",
            False,
            {"max_attempts": FAILING_ATTEMPTS, "timeout": 1},
            {"seconds": 30},
        ),
        Kind(
            "stubborn",
            False,
            {"max_attempts": FAILING_ATTEMPTS, "timeout": 1},
            {"seconds": 10},
        ),
    ]
}


def build(total: int, seed: int) -> list[tuple[str, Kind]]:
    """Return `total` (key, kind) pairs in a shuffled order: 1 in 20 slow, a few misbehaving."""
    special = {
        "hog": max(2, total // 5000),
        "raise": max(3, total // 1000),
        "exit": max(2, total // 2000),
        "timeout": max(1, total // 5000),
        "stubborn": max(1, total // 10000),
    }
    special["slow"] = total // 20
    names = [name for name, count in special.items() for _ in range(count)]
    names += ["ok"] * (total - len(names))
    random.Random(seed).shuffle(names)
    return [(f"t{index:06d}", KINDS[name]) for index, name in enumerate(names)]


def enqueue(items: list[tuple[str, Kind]]) -> None:
    """Enqueue `items` with one multi-row INSERT per thousand."""
    from dbqueue import enqueue_many

    enqueue_many(
        [
            (
                tasks.work,
                (key, kind.name),
                {**kind.kwargs, **kind.options, "task_name": key},
            )
            for key, kind in items
        ]
    )
