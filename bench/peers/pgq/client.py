import os

import psycopg

_queries = None


def setup() -> None:
    global _queries
    from pgqueuer.db import SyncPsycopgDriver
    from pgqueuer.queries import SyncQueries

    connection = psycopg.connect(
        os.environ["DBQUEUE_BENCH_DATABASE_URL"], autocommit=True
    )
    _queries = SyncQueries(SyncPsycopgDriver(connection))


def enqueue_one() -> None:
    _queries.enqueue("noop", None)


def enqueue_bulk(count: int) -> None:
    _queries.enqueue(["noop"] * count, [None] * count, [0] * count)


def enqueue_probe(probe_id: int, port: int) -> None:
    _queries.enqueue("probe", f"{probe_id} {port}".encode())
