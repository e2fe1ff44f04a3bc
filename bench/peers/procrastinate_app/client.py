import django


def setup() -> None:
    django.setup()


def enqueue_one() -> None:
    from bench.peers.procrastinate_app.tasks import noop

    noop.defer()


def enqueue_bulk(count: int) -> None:
    from bench.peers.procrastinate_app.tasks import noop

    noop.batch_defer(*({} for _ in range(count)))


def enqueue_probe(probe_id: int, port: int) -> None:
    from bench.peers.procrastinate_app.tasks import probe

    probe.defer(probe_id=probe_id, port=port)
