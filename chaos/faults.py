"""The faults the runner injects, each a function of the run that returns what it did.

Each returns a short description and records every pid it killed in
``run.killed`` (pid -> fault number), which is how the report tells a
duplicate caused by a kill from one that is not.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from chaos import clusters, servers
from chaos.report import pid_of
from dbqueue.models import Role, Status, Task, Worker

if TYPE_CHECKING:
    from chaos.runner import Run


def busy_pids(run: Run) -> set[int]:
    """Pids of the processes holding a RUNNING task now (empty if the database is away)."""
    holders = run.query(
        lambda: list(
            Task.objects.filter(status=Status.RUNNING).values_list(
                "locked_by", flat=True
            )
        ),
        [],
    )
    return {pid for holder in holders if (pid := pid_of(holder)) is not None}


def kill_worker(run: Run, number: int) -> str:
    """SIGKILL one worker process, one running a task if any does, as the OOM killer would."""
    busy = busy_pids(run)
    workers: dict[int, clusters.Cluster] = {}
    for cluster in run.clusters:
        scheduler = run.query(lambda c=cluster: schedulers(c), set())
        workers.update(
            {pid: cluster for pid in cluster.children() if pid not in scheduler}
        )
    candidates = sorted(set(workers) & busy) or sorted(workers)
    if not candidates:
        return "no worker to kill"
    pid = random.choice(candidates)
    run.killed[pid] = number
    clusters.signal_pid(pid)
    state = "running a task" if pid in busy else "idle"
    return f"SIGKILL worker pid {pid} of {workers[pid].label} ({state})"


def schedulers(cluster: clusters.Cluster) -> set[int]:
    return set(
        Worker.objects.filter(
            role=Role.SCHEDULER, pid__in=cluster.children()
        ).values_list("pid", flat=True)
    )


def kill_cluster(run: Run, number: int) -> str:
    """SIGKILL a whole cluster (supervisor and children) while the others live on.

    Its tasks are rescued by another cluster once their lease runs out; the
    recovery time measured includes that wait. The cluster is started again
    afterwards by the runner (see ``Run.after``).
    """
    busy = busy_pids(run)
    cluster = max(
        run.clusters, key=lambda c: (len(busy & set(c.children())), random.random())
    )
    holding = len(busy & set(cluster.children()))
    for pid in cluster.kill():
        run.killed[pid] = number
    run.down.append(cluster)
    return f"SIGKILL cluster {cluster.label} (pid {cluster.pid} and its children, {holding} running a task)"


def rolling_restart(run: Run, number: int) -> str:
    """SIGTERM each cluster in turn and start its replacement, as a rolling deploy does."""
    codes = []
    for index, cluster in enumerate(list(run.clusters)):
        for pid in cluster.children():
            run.killed[pid] = number  # killed only if still running at the grace's end
        code = cluster.terminate(timeout=run.grace + 20)
        if code is None:
            run.hung.append(
                f"{cluster.label} ignored SIGTERM for {run.grace + 20:.0f}s"
            )
            cluster.kill()
        codes.append(code)
        run.clusters[index] = run.start_cluster()
        run.wait_started(run.clusters[index])
    return f"SIGTERM and restart of each cluster in turn; exit codes {codes}"


def restart_database(run: Run, number: int) -> str:
    away = servers.restart(run.vendor)
    return f"{run.vendor} server stopped and started again ({away:.1f} s)"


def kill_connections(run: Run, number: int) -> str:
    killed = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            killed = servers.kill_connections(run.vendor)
            break
        except Exception:  # our own connection may be one just killed
            run.reset_connection()
            time.sleep(0.2)
    return f"{killed} connections killed from the server side"


FAULTS = {
    "kill_worker": kill_worker,
    "kill_cluster": kill_cluster,
    "rolling_restart": rolling_restart,
    "restart_database": restart_database,
    "kill_connections": kill_connections,
}
