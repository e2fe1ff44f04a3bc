"""A worker's three busiest steps, timed in-process in CPU time per task.

claiming.claim() of a batch, the store of a batch of successes
(claiming.write_held()) and a success's fields (Task.success_fields()),
each repeated on the local PostgreSQL in a throwaway database, with
time.process_time() around the loop: the worker's own CPU, not the time it
waits for the server. Small changes to these paths show here long before
they show in a drain's rate, which moves with the machine.

    make bench-cpu     # runs bench.cpu_split, then this
"""

from __future__ import annotations

import os
import time

from bench import servers, wakeup

BENCH_DB = f"{servers.PREFIX}hot_path"
BATCH = 50
ROUNDS = 200


def per_task(seconds: float, tasks: int) -> str:
    return f"{seconds / tasks * 1e6:6.1f} µs"


def measure() -> None:
    url = servers.Postgres().create(BENCH_DB)
    os.environ.update(wakeup.child_env(url))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connection

    import dbqueue
    from dbqueue import claiming

    try:
        dbqueue.enqueue_many(["bench.tasks.noop"] * (BATCH * (ROUNDS + 2)))
        claiming.claim("bench", ["default"], BATCH)  # warm the caches
        started, claimed = time.process_time(), 0
        for _ in range(ROUNDS):
            claimed += len(claiming.claim("bench", ["default"], BATCH))
        claim = time.process_time() - started

        tasks = claiming.claim("bench", ["default"], BATCH)
        started = time.process_time()
        for _ in range(ROUNDS):
            for task in tasks:
                task.success_fields("bench", None)
        fields = time.process_time() - started

        rows = [(task, task.success_fields("bench", None)) for task in tasks]
        started = time.process_time()
        for _ in range(ROUNDS):
            claiming.write_held("bench", rows)
        store = time.process_time() - started

        print(f"worker CPU per task, batches of {BATCH}, {ROUNDS} rounds:")
        print(f"  claim (claiming.claim)            {per_task(claim, claimed)}")
        print(
            f"  store (claiming.write_held)       {per_task(store, ROUNDS * len(rows))}"
        )
        print(
            f"  success fields (result, log)      {per_task(fields, ROUNDS * len(tasks))}"
        )
    finally:
        connection.close()
        servers.Postgres().drop(BENCH_DB)


if __name__ == "__main__":
    measure()
