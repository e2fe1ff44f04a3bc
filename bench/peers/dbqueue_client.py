"""dbqueue's client side: enqueue the way a Django view would, and time claim()."""

import statistics
import time

import django

NOOP = "bench.tasks.noop"


def setup() -> None:
    django.setup()


def enqueue_one() -> None:
    import dbqueue

    dbqueue.async_task(NOOP)


def enqueue_bulk(count: int) -> None:
    import dbqueue

    dbqueue.enqueue_many([NOOP] * count)


def enqueue_probe(probe_id: int, port: int) -> None:
    import dbqueue

    dbqueue.async_task("bench.tasks.probe", probe_id, port)


def claim_cost(queued: int, claims: int, batch: int) -> dict:
    """Time `claims` calls of claiming.claim() against `queued` due tasks.

    Tasks left over from an earlier measurement are deleted first, so each
    measurement sees the same backlog whatever the table's history.
    """
    from dbqueue import claiming, models

    models.Task.objects.filter(
        status__in=[models.Status.QUEUED, models.Status.RUNNING]
    ).delete()
    enqueue_bulk(queued)
    worker_id = "bench:claim-cost"
    for _ in range(5):  # warm the connection, the plan cache and the imports
        claiming.claim(worker_id, ["default"], batch)
    seconds = []
    for _ in range(claims):
        started = time.perf_counter()
        claimed = claiming.claim(worker_id, ["default"], batch)
        seconds.append(time.perf_counter() - started)
        if not claimed:
            break
    history = models.Task.objects.filter(status=models.Status.SUCCEEDED).count()
    return {
        "claims": len(seconds),
        "median_ms": statistics.median(seconds) * 1000,
        "mean_ms": statistics.fmean(seconds) * 1000,
        "finished_rows": history,
    }
