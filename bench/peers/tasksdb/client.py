import django
from django.db import transaction


def setup() -> None:
    django.setup()


def enqueue_one() -> None:
    from bench.peers.tasksdb.tasks import noop

    noop.enqueue()


def enqueue_bulk(count: int) -> None:
    """django-tasks has no bulk enqueue: a loop of enqueue() in one transaction."""
    from bench.peers.tasksdb.tasks import noop

    with transaction.atomic():
        for _ in range(count):
            noop.enqueue()


def enqueue_probe(probe_id: int, port: int) -> None:
    from bench.peers.tasksdb.tasks import probe

    probe.enqueue(probe_id, port)
