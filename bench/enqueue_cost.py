"""What one enqueue costs, from the benchmark's floor up to async_task(), one step at a time.

The benchmark compares async_task(), one per transaction, with the floor: a
bare psycopg INSERT of two values into a table with a bigserial key. This
script runs the statements in between on one throwaway database of the
local PostgreSQL, each on its own connection, in interleaved rounds, so that
each step's price can be read off the same run:

- the floor, as the benchmark runs it (psycopg prepares a statement on its
  5th run), then the same with preparing off, which is Django's default;
- the floor's table with a UUIDv7 primary key in place of the bigserial;
- dbqueue's INSERT exactly as async_task() builds it, sent through psycopg
  with no Django and no dbqueue code around it: first without the NOTIFY
  that wakes idle workers, then with it, prepared and not;
- async_task() itself, at Django's defaults and with OPTIONS
  prepare_threshold=5.

Each row is the median over the rounds of the mean time per enqueue.

    make bench-enqueue
    make bench-enqueue BENCH_ENQUEUE_ARGS='--rounds 9 --count 3000'
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import time
from collections.abc import Callable

from bench import servers, wakeup
from bench.peers import floor

BENCH_DB = f"{servers.PREFIX}enqueue_cost"
WARMUP = 20  # calls before timing: connection, imports, psycopg's prepare
PREPARED = "prepared"  # the alias of async_task() with prepare_threshold=5
UUID_FLOOR_SCHEMA = floor.SCHEMA.replace("floor_job", "floor_uuid_job").replace(
    "id bigserial", "id uuid"
)


@dataclasses.dataclass
class Step:
    name: str
    enqueue: Callable[[], object]  # one enqueue of this step
    queue_alias: str | None = None  # DBQUEUE_DATABASE during its rounds


def steps(prepared, unprepared) -> list[Step]:
    """The ladder, from the floor up; the floor's steps on these two psycopg connections."""
    from django.db import DEFAULT_DB_ALIAS, connection, connections
    from django.utils import timezone

    import dbqueue
    from dbqueue import api, ids
    from dbqueue.claiming import inserting, listen

    prepared.execute(floor.SCHEMA)
    prepared.execute(UUID_FLOOR_SCHEMA)
    row = (floor.FUNC, floor.PAYLOAD)
    uuid_insert = "INSERT INTO floor_uuid_job (id, func, payload) VALUES (%s, %s, %s)"

    task = api.build_task("bench.tasks.noop")
    insert, insert_params = inserting._statement(connection).one(task, connection)
    notifying, notifying_params = listen.with_notify(
        insert,
        list(insert_params),
        listen.notices([(task.queue, task.run_after)], timezone.now()),
    )
    assert isinstance(insert_params[0], type(task.id)), "the id leads the parameters"

    def dbqueue_row(cursor, sql: str, params: list) -> Callable[[], object]:
        def enqueue() -> object:
            # A new id for each row, as async_task() makes; the rest, its
            # times included, stay those of the one task built above.
            return cursor.execute(sql, [ids.uuid7(), *params[1:]])

        return enqueue

    # A second alias on the same database, with psycopg's prepare on: the
    # queue's alias is switched around each of its rounds, so neither
    # connection is closed between rounds.
    connections.settings[PREPARED] = {
        **connections.settings[DEFAULT_DB_ALIAS],
        "OPTIONS": {"prepare_threshold": 5},
    }

    def async_task() -> object:
        return dbqueue.async_task("bench.tasks.noop")

    on = prepared.cursor()
    off = unprepared.cursor()
    return [
        Step(
            "floor (the benchmark's), prepared", lambda: on.execute(floor.INSERT, row)
        ),
        Step("floor, not prepared", lambda: off.execute(floor.INSERT, row)),
        Step(
            "floor with a UUIDv7 key, prepared",
            lambda: on.execute(uuid_insert, (ids.uuid7(), *row)),
        ),
        Step("dbqueue's row, prepared", dbqueue_row(on, insert, insert_params)),
        Step(
            "dbqueue's row + NOTIFY, prepared",
            dbqueue_row(on, notifying, notifying_params),
        ),
        Step(
            "dbqueue's row + NOTIFY, not prepared",
            dbqueue_row(off, notifying, notifying_params),
        ),
        Step("async_task(), prepare_threshold=5", async_task, PREPARED),
        Step("async_task(), Django's default", async_task),
    ]


def measure(rounds: int, count: int) -> None:
    url = servers.Postgres().create(BENCH_DB)
    os.environ.update(wakeup.child_env(url))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    import psycopg
    from django.db import connections

    try:
        with (
            psycopg.connect(url, autocommit=True) as prepared,
            psycopg.connect(url, autocommit=True, prepare_threshold=None) as unprepared,
        ):
            run(steps(prepared, unprepared), rounds, count)
    finally:
        connections.close_all()
        servers.Postgres().drop(BENCH_DB)


def run(ladder: list[Step], rounds: int, count: int) -> None:
    """Time the ladder's steps in turn, round after round, and print the table."""
    times: dict[str, list[float]] = {step.name: [] for step in ladder}
    for round_ in range(rounds + 1):  # the first warms every connection up
        for step in ladder:
            with queue_database(step.queue_alias):
                started = time.perf_counter()
                for _ in range(count if round_ else WARMUP):
                    step.enqueue()
                if round_:
                    times[step.name].append((time.perf_counter() - started) / count)
    report(times, rounds, count)


def queue_database(alias: str | None) -> contextlib.AbstractContextManager:
    """Put the queue on `alias` for a step's round; None leaves it alone."""
    from django.test import override_settings

    if alias is None:
        return contextlib.nullcontext()
    return override_settings(DBQUEUE_DATABASE=alias)


def report(times: dict[str, list[float]], rounds: int, count: int) -> None:
    medians = {name: statistics.median(values) for name, values in times.items()}
    floor_time = next(iter(medians.values()))
    print(
        f"One enqueue per transaction, {count:,} per round, median of {rounds} rounds"
    )
    print(f"{'':40} {'µs':>6} {'per s':>7} {'÷ floor':>8} {'spread µs':>12}")
    for name, seconds in medians.items():
        low, high = min(times[name]), max(times[name])
        print(
            f"{name:40} {seconds * 1e6:6.0f} {1 / seconds:7,.0f} "
            f"{floor_time / seconds:8.2f} {low * 1e6:5.0f}-{high * 1e6:<5.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--count", type=int, default=1500)
    options = parser.parse_args()
    measure(options.rounds, options.count)


if __name__ == "__main__":
    main()
