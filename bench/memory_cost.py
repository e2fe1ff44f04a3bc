"""Where a cluster's memory goes: each process's share after a drain, and what a forked child pays.

The benchmark reports one figure for memory, the proportional set size
(PSS) of a two-worker cluster summed over its processes. This script
breaks it down, on the local PostgreSQL in a throwaway database:

- `qcluster --workers 2` drains --tasks no-op tasks; a second after the
  queue is empty, each process's PSS, the pages only it holds (private:
  dirty ones it wrote or made, clean ones of libraries only it read) and
  the pages it shares, from /proc/<pid>/smaps_rollup. The same again with
  `--no-scheduler`.
- Children forked from a process that has loaded what the supervisor
  loads (share_before_fork(), after one ORM query as the supervisor's
  registration makes): one that only sleeps, one that sends raw SQL
  through Django's cursor, one that runs ORM queries, each twenty times
  a second for three seconds. Their private dirty pages are what a
  process pays for the objects it touches after the fork, since CPython
  writes a reference count into each.

    make bench-memory
    make bench-memory BENCH_MEMORY_ARGS='--tasks 50000'

Linux only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from bench import processes, servers, wakeup

BENCH_DB = f"{servers.PREFIX}memory"
FIELDS = ("Pss", "Private_Dirty", "Private_Clean", "Shared_Dirty", "Shared_Clean")
CHILD_SECONDS = 3.0
CHILD_PAUSE = 0.05


def rollup(pid: int) -> dict[str, float]:
    """The MiB of each FIELDS line of a process's smaps_rollup."""
    found = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, value = line.partition(":")
        if name in FIELDS:
            found[name] = int(value.split()[0]) / 1024
    return found


def cluster(url: str, tasks: int, *extra: str) -> None:
    """Drain `tasks` with a two-worker qcluster and print each process's memory."""
    from django.db import connection

    import dbqueue

    dbqueue.enqueue_many(["bench.tasks.noop"] * tasks)
    command = [sys.executable, "-m", "django", "qcluster", "--workers", "2", *extra]
    running = processes.Cluster(
        [command], wakeup.child_env(url), wakeup.ROOT, Path(os.devnull)
    )
    try:
        with connection.cursor() as cursor:
            deadline = time.monotonic() + 300
            while wakeup.pending(cursor):
                if time.monotonic() > deadline or not running.alive():
                    raise SystemExit("The cluster did not drain its queue.")
                time.sleep(0.1)
            time.sleep(1.0)  # as the benchmark reads it: after the drain, at rest
            cursor.execute("SELECT pid, role FROM dbqueue_worker")
            roles = {pid: role.lower() for pid, role in cursor.fetchall()}
        rows = [(roles.get(pid, "?"), rollup(pid)) for pid in running.pids()]
        total = running.pss_mib()  # the benchmark's own figure
    finally:
        running.stop()
    print(f"\n{' '.join(command[3:])}, after draining {tasks:,} tasks (MiB)")
    print(f"  {'process':<12}" + "".join(f"{name:>15}" for name in FIELDS))
    for role, values in sorted(rows, key=lambda row: row[0]):
        print(f"  {role:<12}" + "".join(f"{values[name]:15.1f}" for name in FIELDS))
    print(f"  {'cluster':<12}{total:15.1f}")


def forked_children() -> None:
    """Fork three children that touch more and more of Django; print what each keeps."""
    from django.db import connection, connections

    from dbqueue import models
    from dbqueue.cluster.supervisor import share_before_fork

    def orm() -> None:
        models.Task.objects.filter(status=models.Status.QUEUED).count()
        list(models.Worker.objects.filter(cluster_id="").values_list("id", flat=True))

    def raw_sql() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM dbqueue_task WHERE status = %s",
                [models.Status.QUEUED],
            )
            cursor.fetchone()

    orm()  # as the supervisor registers itself before it forks
    share_before_fork()
    connections.close_all()
    children = {}
    for name, work in (("sleeps", None), ("raw SQL", raw_sql), ("ORM", orm)):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: work, say so, then wait to be measured
            os.close(read_fd)
            end = time.monotonic() + CHILD_SECONDS
            while work is not None and time.monotonic() < end:
                work()
                time.sleep(CHILD_PAUSE)
            os.write(write_fd, b".")
            time.sleep(600)
            os._exit(0)
        os.close(write_fd)
        children[name] = (pid, read_fd)
    print("\nA child forked the way the supervisor forks one (MiB)")
    print(f"  {'the child':<12}{'Private_Dirty':>15}")
    try:
        for name, (pid, read_fd) in children.items():
            os.read(read_fd, 1)  # it has done its work
            os.close(read_fd)
            print(f"  {name:<12}{rollup(pid)['Private_Dirty']:15.1f}")
    finally:
        for pid, _ in children.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def measure(tasks: int) -> None:
    url = servers.Postgres().create(BENCH_DB)
    os.environ.update(wakeup.child_env(url))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connections

    try:
        print(f"Python {sys.version.split()[0]}, Django {django.get_version()}")
        cluster(url, tasks)
        cluster(url, tasks, "--no-scheduler")
        forked_children()
    finally:
        connections.close_all()
        servers.Postgres().drop(BENCH_DB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    options = parser.parse_args()
    measure(options.tasks)


if __name__ == "__main__":
    main()
