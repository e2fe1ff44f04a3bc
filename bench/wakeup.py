"""Wake-up benchmark: enqueue-to-start latency and an idle cluster's database load.

For each database given (PostgreSQL, MariaDB/MySQL; SQLite has no server to
count queries on) it migrates a throwaway database, starts a real
`qcluster --workers 2`, lets it go idle, then:

- counts the statements the idle cluster sends per second (PostgreSQL:
  pg_stat_database.xact_commit; MariaDB: the global Questions counter),
  minus the benchmark's own two reads;
- enqueues one no-op task at a time into the idle cluster, waiting for each to
  finish, and reads enqueue-to-start latency from the rows' own timestamps.

Run with `make bench-wakeup`; prints one table.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import servers, systems

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = f"{servers.PREFIX}wakeup"
SAMPLES = 50
IDLE_SECONDS = 10.0


def child_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DBQUEUE_BENCH_DATABASE_URL": url,
        "PYTHONPATH": str(ROOT),
    }


def start_cluster(url: str, *arguments: str, quiet: bool = False) -> subprocess.Popen:
    """Start `qcluster` on this database in a session of its own, which os.killpg() stops whole."""
    output = subprocess.DEVNULL if quiet else None
    return subprocess.Popen(
        [sys.executable, "-m", "django", "qcluster", *arguments],
        cwd=ROOT,
        env=child_env(url),
        stdout=output,
        stderr=output,
        start_new_session=True,
    )


def pending(cursor) -> int:
    """The tasks still queued or running, counted on a cursor of the benchmark's database."""
    cursor.execute(systems.DBQUEUE_PENDING)
    return cursor.fetchone()[0]


def recreate_database(vendor: str) -> str:
    """Create the benchmark's database afresh, set Django up on it, migrate; return its URL."""
    import django
    from django.core.management import call_command

    url = servers.server_of(vendor, servers.TEST_URLS[vendor]).create(BENCH_DB)
    os.environ.update(child_env(url))
    django.setup()
    call_command("migrate", verbosity=0)
    return url


def statements(vendor: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
                [BENCH_DB],
            )
        else:
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Questions'")
        row = cursor.fetchone()
    return int(row[-1])


def measure(vendor: str) -> dict[str, float]:
    url = recreate_database(vendor)
    from dbqueue import async_task, fetch

    cluster = start_cluster(url, "--workers", "2", "-v", "0")
    try:
        warm = async_task("bench.tasks.noop")
        if fetch(warm, wait=30_000) is None or not fetch(warm).is_finished:
            raise SystemExit(f"{vendor}: the cluster did not run a task within 30 s")
        time.sleep(3)  # let the workers' idle backoff reach its ceiling
        before, started = statements(vendor), time.monotonic()
        time.sleep(IDLE_SECONDS)
        after, elapsed = statements(vendor), time.monotonic() - started
        idle_qps = max(0, after - before - 2) / elapsed  # -2: our own two reads
        latencies = []
        for _ in range(SAMPLES):
            time.sleep(0.3)  # idle again between samples
            task = fetch(async_task("bench.tasks.noop"), wait=10_000)
            if task is None or task.started_at is None:
                raise SystemExit(f"{vendor}: a task did not start within 10 s")
            latencies.append(
                (task.started_at - task.enqueued_at).total_seconds() * 1000
            )
        latencies.sort()
        return {
            "idle_qps": idle_qps,
            "p50": statistics.median(latencies),
            "p95": latencies[int(len(latencies) * 0.95) - 1],
            "max": latencies[-1],
        }
    finally:
        os.killpg(cluster.pid, signal.SIGTERM)
        cluster.wait(30)


def main() -> None:
    vendor = sys.argv[1] if len(sys.argv) > 1 else "postgresql"
    result = measure(vendor)
    print(
        f"{vendor:<11} idle cluster (2 workers): {result['idle_qps']:6.1f} statements/s   "
        f"enqueue-to-start over {SAMPLES} tasks: p50 {result['p50']:6.1f} ms  "
        f"p95 {result['p95']:6.1f} ms  max {result['max']:6.1f} ms"
    )


if __name__ == "__main__":
    main()
