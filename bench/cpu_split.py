"""Where a drain's CPU goes: each qcluster process's, and the database server's.

A throughput figure says how fast a drain went; this says who paid for it,
which is what decides the rate on a small machine where the workers and the
database server share the cores. It queues no-op tasks in a throwaway
database on the local PostgreSQL, starts `qcluster --workers N`, and once
the queue starts to move reads the CPU time of each cluster process
(/proc/<pid>/stat) and of the whole machine (/proc/stat) until the queue is
empty. What the cluster did not use is charged to the database server: on a
quiet machine that is nearly all of the rest, this script's own count of
the queue every 50 ms included. Linux only.

    make bench-cpu                                   # 2 workers, 40,000 tasks
    make bench-cpu BENCH_CPU_ARGS='--workers 1 --tasks 20000'
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time

from bench import servers, wakeup

BENCH_DB = f"{servers.PREFIX}cpu"
POLL = 0.05  # seconds between counts of the queue
TICK = os.sysconf("SC_CLK_TCK")  # clock ticks per second in /proc


def process_ticks(pid: int) -> int:
    """User plus system clock ticks a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def machine_busy_ticks() -> int:
    """Clock ticks all cores have spent not idle (nor waiting for I/O) so far."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4]


def measure(workers: int, tasks: int) -> None:
    url = servers.Postgres().create(BENCH_DB)
    os.environ.update(wakeup.child_env(url))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connection

    import dbqueue

    dbqueue.enqueue_many(["bench.tasks.noop"] * tasks)
    cluster = wakeup.start_cluster(url, "--workers", str(workers), quiet=True)
    try:
        with connection.cursor() as cursor:
            deadline = time.monotonic() + 60
            while wakeup.pending(cursor) == tasks:
                if time.monotonic() > deadline:
                    raise SystemExit("The cluster did not start a task within 60 s.")
                time.sleep(POLL)
            children = subprocess.run(
                ["pgrep", "-P", str(cluster.pid)], capture_output=True, text=True
            ).stdout.split()
            pids = [cluster.pid, *map(int, children)]
            before = {pid: process_ticks(pid) for pid in pids}
            busy_before, started, first = (
                machine_busy_ticks(),
                time.monotonic(),
                wakeup.pending(cursor),
            )
            while wakeup.pending(cursor):
                time.sleep(POLL)
            after = {pid: process_ticks(pid) for pid in pids}
            busy, elapsed = (
                machine_busy_ticks() - busy_before,
                time.monotonic() - started,
            )
            # The cluster's registry says which child is which.
            cursor.execute("SELECT pid, role FROM dbqueue_worker")
            roles = {pid: role.lower() for pid, role in cursor.fetchall()}
        cluster_ticks = sum(after[pid] - before[pid] for pid in pids)
        print(
            f"{first:,} tasks drained by {workers} worker(s) in {elapsed:.2f} s: {first / elapsed:,.0f} tasks/s"
        )
        print("CPU per task (µs):")
        for pid in pids:
            role = roles.get(pid, "?")
            print(
                f"  {role:<12} pid {pid:<8} {(after[pid] - before[pid]) / TICK / first * 1e6:7.1f}"
            )
        print(f"  {'cluster':<21} {cluster_ticks / TICK / first * 1e6:7.1f}")
        print(
            f"  {'rest (server)':<21} {(busy - cluster_ticks) / TICK / first * 1e6:7.1f}"
        )
    finally:
        os.killpg(cluster.pid, signal.SIGTERM)
        cluster.wait(30)
        connection.close()
        servers.Postgres().drop(BENCH_DB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=40_000)
    options = parser.parse_args()
    measure(options.workers, options.tasks)


if __name__ == "__main__":
    main()
