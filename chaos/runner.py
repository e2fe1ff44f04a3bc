"""One chaos run on one database: enqueue, start clusters, inject faults, count.

The run enqueues its workload in chunks, one before each fault, so there is
always work in flight when a fault lands. After each fault it measures the
time until the system has recovered: tasks finish again, no task is held by
a dead process, and every cluster the runner meant to be up is up. At the
end it waits for the queue to drain, stops every cluster with SIGTERM (each
must exit 0) and counts the outcome of every task (:mod:`chaos.report`).
"""

from __future__ import annotations

import dataclasses
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from django.db import connection

from chaos import clusters, faults, report, servers, workload
from dbqueue.models import Status, Task

CYCLE = [
    "kill_worker",
    "kill_worker",
    "kill_connections",
    "kill_cluster",
    "kill_worker",
    "rolling_restart",
    "kill_worker",
    "restart_database",
]


@dataclasses.dataclass(frozen=True)
class Plan:
    form: str
    tasks: int
    clusters: int
    workers: int
    faults: list[str]
    interval: float  # seconds between a recovery and the next fault
    drain_timeout: float


# Three cycles of faults; the server restart (which disturbs everything else
# on the machine) only in the middle one.
FULL = Plan(
    "full",
    40_000,
    3,
    3,
    [f for f in CYCLE if f != "restart_database"]
    + CYCLE
    + [f for f in CYCLE if f != "restart_database"],
    interval=5.0,
    drain_timeout=900.0,
)
SHORT = Plan(
    "short",
    3_000,
    3,
    2,
    [
        "kill_worker",
        "kill_cluster",
        "kill_worker",
        "kill_connections",
        "rolling_restart",
        "restart_database",
        "kill_worker",
    ],
    interval=1.5,
    drain_timeout=60.0,
)
RECOVERY_TIMEOUT = 90.0  # seconds; a fault not recovered from by then is a failure


class Run:
    def __init__(
        self, vendor: str, plan: Plan, *, restart_db: bool, seed: int, url: str
    ) -> None:
        self.vendor, self.plan, self.seed, self.url = vendor, plan, seed, url
        self.faults = [
            name for name in plan.faults if restart_db or name != "restart_database"
        ]
        self.grace = 10.0  # chaos.settings.DBQUEUE_SHUTDOWN_GRACE
        self.logs = Path(tempfile.mkdtemp(prefix=f"dbqueue-chaos-{vendor}-"))
        self.name = servers.database_name(vendor)
        self.clusters: list[clusters.Cluster] = []
        self.down: list[clusters.Cluster] = []  # killed, to be started again
        self.killed: dict[int, int] = {}  # pid -> number of the fault that killed it
        self.hung: list[str] = []
        self.crashed: list[str] = []
        self.started = time.monotonic()
        self._count = 0

    def start_cluster(self) -> clusters.Cluster:
        self._count += 1
        env = clusters.child_env(self.url, self.name)
        return clusters.Cluster(
            f"cluster{self._count}", self.plan.workers, env, self.logs
        )

    def wait_started(self, cluster: clusters.Cluster, timeout: float = 60.0) -> None:
        if (
            not clusters.wait_for(
                lambda: (
                    cluster.started_workers() >= cluster.workers or not cluster.alive()
                ),
                timeout,
            )
            or not cluster.alive()
        ):
            raise RuntimeError(
                f"{cluster.label} did not start its workers:\n{cluster.output()[-3000:]}"
            )

    def reset_connection(self) -> None:
        connection.close()

    def query(self, work: Any, default: Any = None) -> Any:
        """Run a read for the runner; during an outage, return `default`."""
        try:
            return work()
        except Exception:  # the fault may have cut our connection too
            self.reset_connection()
            return default

    def execute(self) -> dict[str, Any]:
        servers.create(self.vendor, self.name)
        try:
            return self._execute()
        finally:
            for cluster in self.clusters + self.down:
                if cluster.alive():
                    cluster.kill()
            servers.ensure_running(self.vendor)
            servers.drop(self.vendor, self.name)

    def _execute(self) -> dict[str, Any]:
        items = workload.build(self.plan.tasks, self.seed)
        # A large first chunk keeps a backlog from the start; the rest arrives
        # before each fault, so enqueueing goes on while faults land.
        head = len(items) * 2 // 5
        rest = items[head:]
        chunks = [items[:head]] + [
            rest[i :: len(self.faults)] for i in range(len(self.faults))
        ]
        workload.enqueue(chunks[0])
        self.clusters = [self.start_cluster() for _ in range(self.plan.clusters)]
        for cluster in self.clusters:
            self.wait_started(cluster)
        self.started = time.monotonic()
        done: list[report.Fault] = []
        rng = random.Random(self.seed)
        random.seed(rng.random())
        for number, name in enumerate(self.faults, start=1):
            self._enqueue(chunks[number])
            time.sleep(self.plan.interval)
            self._check_clusters()
            at = time.monotonic() - self.started
            detail = faults.FAULTS[name](self, number)
            fault = report.Fault(number, name, detail, round(at, 1))
            fault.recovery = self._recover(number, at)
            for cluster in self.down:
                self.clusters[self.clusters.index(cluster)] = self.start_cluster()
            self.down.clear()
            for cluster in self.clusters:
                self.wait_started(cluster)
            print(
                f"  fault {number:>2} at {at:6.1f} s: {detail}; recovered in "
                f"{'never' if fault.recovery is None else f'{fault.recovery:.1f} s'}",
                flush=True,
            )
            done.append(fault)
        self._until(lambda: self.query(self._drained, False), self.plan.drain_timeout)
        duration = time.monotonic() - self.started
        for cluster in self.clusters:
            code = cluster.terminate(timeout=self.grace + 20)
            if code != 0:
                self.hung.append(f"{cluster.label} exited with {code} on SIGTERM")
                cluster.kill()
        connection.close()
        result = report.count(items, self.killed)
        result.update(
            vendor=self.vendor,
            form=self.plan.form,
            clusters=self.plan.clusters,
            workers=self.plan.workers,
            duration=round(duration, 1),
            faults=[fault.as_dict() for fault in done],
            hung_clusters=self.hung + self.crashed,
            logs=str(self.logs),
            seed=self.seed,
        )
        return result

    def _enqueue(self, items: list[tuple[str, workload.Kind]]) -> None:
        def attempt() -> bool:
            workload.enqueue(items)
            return True

        if not self._until(lambda: self.query(attempt, False), 60):
            raise RuntimeError("could not enqueue for 60 s")

    def _finished(self) -> int:
        return Task.objects.filter(status__in=[Status.SUCCEEDED, Status.FAILED]).count()

    def _drained(self) -> bool:
        return not Task.objects.filter(
            status__in=[Status.QUEUED, Status.RUNNING]
        ).exists()

    def _held_by_dead(self) -> bool:
        holders = Task.objects.filter(status=Status.RUNNING).values_list(
            "locked_by", flat=True
        )
        return any(
            (pid := report.pid_of(holder)) is not None and not clusters.is_alive(pid)
            for holder in holders
        )

    def _recover(self, number: int, at: float) -> float | None:
        """Seconds from the fault until the system is whole again, or None after RECOVERY_TIMEOUT.

        Whole means: every process the fault killed is gone and no task is
        still held by a dead process (released by its supervisor, or rescued
        by another cluster once the lease ran out); every cluster that is
        meant to be up has all its children again; and a task has finished
        since the fault ended (or none is left), so work goes on.
        """
        victims = [pid for pid, fault in self.killed.items() if fault == number]
        ended = self.query(self._finished, 0)

        def recovered() -> bool:
            if any(clusters.is_alive(pid) for pid in victims):
                return False
            if any(
                len(c.children()) < c.workers + 1
                for c in self.clusters
                if c not in self.down
            ):
                return False

            def check() -> bool:
                progressed = self._finished() > ended or self._drained()
                return progressed and not self._held_by_dead()

            return bool(self.query(check, False))

        if self._until(recovered, RECOVERY_TIMEOUT):
            return round(time.monotonic() - self.started - at, 2)
        return None

    def _check_clusters(self) -> None:
        for index, cluster in enumerate(self.clusters):
            if not cluster.alive():
                self.crashed.append(
                    f"{cluster.label} exited by itself with {cluster.process.returncode}"
                )
                self.clusters[index] = self.start_cluster()
                self.wait_started(self.clusters[index])

    @staticmethod
    def _until(predicate: Any, timeout: float) -> bool:
        return clusters.wait_for(predicate, timeout, interval=0.05)
