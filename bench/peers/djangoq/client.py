import django
from django.db import transaction

NOOP = "bench.peers.djangoq.tasks.noop"


def setup() -> None:
    django.setup()


def enqueue_one() -> None:
    from django_q.tasks import async_task

    async_task(NOOP)


def enqueue_bulk(count: int) -> None:
    """Django-Q2 has no bulk API: a loop of async_task() in one transaction."""
    from django_q.tasks import async_task

    with transaction.atomic():
        for _ in range(count):
            async_task(NOOP)


def enqueue_probe(probe_id: int, port: int) -> None:
    from django_q.tasks import async_task

    async_task("bench.peers.djangoq.tasks.probe", probe_id, port)
