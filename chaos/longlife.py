"""Long life: one worker through many small tasks, its memory and connections sampled.

A queue worker lives for weeks. Anything it keeps per task (a cache, a list
of results, a connection it forgets to close) shows as a slope here: the
worker's resident memory and the connections open to the database are
sampled while it runs `tasks` quick tasks, and the growth between the
warmed-up start (10 % of the tasks done) and the end is reported.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from django.db import DatabaseError, connection

from chaos import clusters, servers, workload
from chaos.models import Execution
from dbqueue.models import Role, Worker

CHUNK = 5000  # tasks per enqueue_many() call
SHORT_TASKS = 3000  # the suite's form (tests/process/test_longlife.py)
# What the suite allows: resident memory may grow this much between the
# warmed-up start and the end (allocator noise), and connections not at all.
RSS_TOLERANCE_MIB = 5.0
SAMPLES = 40  # about this many samples over the run
# Seconds; a short run still gets several samples (3,000 tasks took 2.4 s on
# PostgreSQL here, where 1,000 had once taken 10).
MIN_SAMPLE_INTERVAL = 0.05


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure(vendor: str, url: str, total: int, logs: Path) -> dict[str, Any]:
    name = servers.database_name(vendor, "longlife")
    servers.create(vendor, name)
    cluster = None
    try:
        items = [(f"l{i:07d}", workload.KINDS["ok"]) for i in range(total)]
        for start in range(0, total, CHUNK):
            workload.enqueue(items[start : start + CHUNK])
        cluster = clusters.Cluster("longlife", 1, clusters.child_env(url, name), logs)
        if not clusters.wait_for(lambda: cluster.started_workers() >= 1, 60):
            raise RuntimeError(f"the worker did not start:\n{cluster.output()}")
        workers = Worker.objects.filter(role=Role.WORKER, pid__in=cluster.children())
        if not clusters.wait_for(workers.exists, 30):
            raise RuntimeError(f"the worker is not registered:\n{cluster.output()}")
        worker = workers.get().pid
        began = time.monotonic()
        samples: list[dict[str, Any]] = []
        every = MIN_SAMPLE_INTERVAL
        done = 0
        while done < total:
            time.sleep(every)
            try:
                done = Execution.objects.count()
                # Minus the runner's own connection.
                connections = servers.connection_count(vendor, name) - 1
            except DatabaseError:  # the server restarted under us: skip a sample
                connection.close()
                continue
            samples.append(
                {
                    "seconds": round(time.monotonic() - began, 1),
                    "done": done,
                    "worker_rss_mib": rss_mib(worker),
                    "supervisor_rss_mib": rss_mib(cluster.pid),
                    "connections": connections,
                }
            )
            if len(samples) == 5:  # now the rate is known: spread SAMPLES over the run
                rate = done / (time.monotonic() - began) or 1.0
                every = max(MIN_SAMPLE_INTERVAL, (total - done) / rate / SAMPLES)
            if not clusters.is_alive(worker):
                raise RuntimeError(f"worker pid {worker} ended:\n{cluster.output()}")
        elapsed = time.monotonic() - began
        code = cluster.terminate(timeout=30)
    finally:
        if cluster is not None and cluster.alive():
            cluster.kill()
        servers.drop(vendor, name)
    return summarise(vendor, total, elapsed, samples, code)


def summarise(
    vendor: str,
    total: int,
    elapsed: float,
    samples: list[dict[str, Any]],
    code: int | None,
) -> dict[str, Any]:
    warm = [s for s in samples if s["done"] >= total * 0.1] or samples
    start, end = warm[: max(1, len(warm) // 5)], warm[-max(1, len(warm) // 5) :]

    def level(part: list[dict[str, Any]], field: str) -> float:
        return float(statistics.median(s[field] for s in part if s[field] is not None))

    return {
        "vendor": vendor,
        "tasks": total,
        "seconds": round(elapsed, 1),
        "tasks_per_second": round(total / elapsed, 1),
        "worker_rss_start_mib": round(level(start, "worker_rss_mib"), 1),
        "worker_rss_end_mib": round(level(end, "worker_rss_mib"), 1),
        "worker_rss_growth_mib": round(
            level(end, "worker_rss_mib") - level(start, "worker_rss_mib"), 1
        ),
        "supervisor_rss_growth_mib": round(
            level(end, "supervisor_rss_mib") - level(start, "supervisor_rss_mib"), 1
        ),
        "connections_min": min(s["connections"] for s in samples),
        "connections_max": max(s["connections"] for s in samples),
        "exit_code": code,
        "samples": samples,
    }


def main(
    vendor: str, url: str, tasks: int | None, short: bool, json_path: Path | None
) -> int:
    total = tasks or (SHORT_TASKS if short else 100_000)
    logs = Path(tempfile.mkdtemp(prefix=f"dbqueue-longlife-{vendor}-"))
    print(f"longlife: {total} tasks through one worker on {vendor}", flush=True)
    result = measure(vendor, url, total, logs)
    print(f"{'s':>7} {'done':>8} {'worker MiB':>10} {'super MiB':>9} {'conns':>5}")
    for s in result["samples"]:
        print(
            f"{s['seconds']:>7} {s['done']:>8} {s['worker_rss_mib'] or 0:>10.1f} "
            f"{s['supervisor_rss_mib'] or 0:>9.1f} {s['connections']:>5}"
        )
    print(
        f"{vendor}: {total} tasks in {result['seconds']} s "
        f"({result['tasks_per_second']}/s); worker RSS {result['worker_rss_start_mib']} -> "
        f"{result['worker_rss_end_mib']} MiB (growth {result['worker_rss_growth_mib']} MiB); "
        f"supervisor growth {result['supervisor_rss_growth_mib']} MiB; "
        f"connections {result['connections_min']}..{result['connections_max']}; "
        f"exit code {result['exit_code']}"
    )
    path = json_path or Path(tempfile.gettempdir()) / f"dbqueue-longlife-{vendor}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"result: {path}")
    return 0 if result["exit_code"] == 0 else 1
