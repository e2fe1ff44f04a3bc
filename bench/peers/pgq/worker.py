"""A pgqueuer worker, as `pgq run bench.peers.pgq.worker:create` would start it, at pgqueuer's defaults."""

import contextlib
import os
from collections.abc import AsyncIterator

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver

from bench import probe as probe_module


@contextlib.asynccontextmanager
async def create() -> AsyncIterator[PgQueuer]:
    connection = await asyncpg.connect(os.environ["DBQUEUE_BENCH_DATABASE_URL"])
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint("noop")
    async def noop(job) -> None:
        """The benchmark task."""

    @pgq.entrypoint("probe")
    async def probe(job) -> None:
        probe_id, port = job.payload.decode().split()
        probe_module.send(int(probe_id), int(port))

    try:
        yield pgq
    finally:
        await connection.close()


def main() -> None:
    """Run one worker as `pgq run` does, with its defaults.

    `pgq run` itself fails before it starts with the typer release pip picks
    today (its --log-level option reaches the logger as a plain string), so the
    benchmark calls pgqueuer.run(), the documented way to run a worker without
    the CLI, on uvloop as the CLI would.
    """
    import uvloop
    from pgqueuer import run

    uvloop.run(run(create))


if __name__ == "__main__":
    main()
