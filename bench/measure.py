"""The measurements of one workload on a running cluster: drain, concurrent drain, idle load.

A mixin of bench.runner.Runner, which supplies the servers, clients and plan.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

from bench import systems
from bench.processes import Cluster
from bench.systems import System

POLL = 0.03  # seconds between counts of the queue while it drains
STARTUP_DEADLINE = 60.0  # seconds for a cluster to finish its first task
# Seconds an idle cluster gets before its transactions are counted. A
# PostgreSQL 15 backend that goes idle within a second of its last report
# holds its counts for up to 10 s (PGSTAT_IDLE_INTERVAL) before it reports
# them: a shorter wait counted the tail of the drain as idle load.
SETTLE = 11.0
CONCURRENT_SECONDS = 20.0  # the concurrent enqueuer stops after this long, done or not


class BenchError(Exception):
    """A workload could not be measured; the message says why."""


def drain_rate(
    samples: list[tuple[float, int]], start_count: int
) -> tuple[float, bool]:
    """Tasks/s between the first and last counts taken while the queue was draining.

    Both ends are real counts at known times, so neither the workers' start-up
    nor the polling interval biases the rate. Return (rate, coarse): coarse
    when the drain was too quick for two such counts.
    """
    interior = [(t, p) for t, p in samples if 0 < p < start_count]
    if len(interior) >= 2 and interior[-1][0] > interior[0][0]:
        (t0, p0), (t1, p1) = interior[0], interior[-1]
        return (p0 - p1) / (t1 - t0), False
    full_until = max(t for t, p in samples if p >= start_count)
    empty_at = min((t for t, p in samples if p == 0), default=samples[-1][0])
    done = start_count - samples[-1][1]
    return done / max(empty_at - full_until, 1e-6), True


def tail(text: str, lines: int = 15) -> str:
    """The last `lines` lines of a command's output, for an error message."""
    return "\n".join((text or "").strip().splitlines()[-lines:])


class Measurements:
    """Measure a cluster the runner started (self: a bench.runner.Runner)."""

    def drain(self, system: System, name: str, cluster: Cluster) -> dict:
        """Count the queue down while `cluster` works it; return the rate."""
        server = self.server(system)
        connection = server.connect(name)
        counts_transactions = server.vendor == "postgresql"
        transactions_before = server.transactions(name) if counts_transactions else 0
        try:
            start_count = self.count(connection, system)
            launched = time.monotonic()
            samples = [(launched, start_count)]
            started = None
            while True:
                now, pending = time.monotonic(), self.count(connection, system)
                samples.append((now, pending))
                if started is None and pending < start_count:
                    started = now
                if pending == 0:
                    break
                if started is None and now - launched > STARTUP_DEADLINE:
                    raise BenchError(
                        f"no task finished within {STARTUP_DEADLINE:.0f}s of starting the workers:\n"
                        + cluster.log_tail()
                    )
                if started is not None and now - started > self.plan.drain_deadline:
                    break
                if not cluster.alive():
                    raise BenchError(
                        f"the workers exited with {pending} tasks left:\n"
                        + cluster.log_tail()
                    )
                time.sleep(POLL)
            rate, coarse = drain_rate(samples, start_count)
            left = samples[-1][1]
            result = {
                "rate": rate,
                "tasks": start_count,
                "left": left,
                "coarse": coarse,
            }
            if counts_transactions:
                # Every transaction in the database while it drained, less
                # this loop's counts, per task drained. Backends report to
                # pg_stat_database up to a second late, hence the wait.
                time.sleep(1.5)
                drained = start_count - self.count(connection, system)
                spent = (
                    server.transactions(name) - transactions_before - len(samples) - 1
                )
                result["transactions_per_task"] = spent / max(1, drained)
        finally:
            connection.close()
        return result

    def purge(self, system: System, name: str, cluster: Cluster) -> None:
        """Drop what a drain left at its deadline, so the cluster is idle for what follows."""
        connection = self.server(system).connect(name)
        try:
            cursor = connection.cursor()
            cursor.execute(system.purge_sql)
            cursor.close()
            deadline = time.monotonic() + STARTUP_DEADLINE
            while self.count(connection, system):
                if time.monotonic() > deadline or not cluster.alive():
                    raise BenchError(
                        "the cluster did not finish its tasks in flight:\n"
                        + cluster.log_tail()
                    )
                time.sleep(POLL)
        finally:
            connection.close()

    def concurrent(self, system: System, url: str, name: str, cluster: Cluster) -> dict:
        """Enqueue one per transaction while the cluster drains; tasks/s start to finish."""
        command = [
            sys.executable,
            "-m",
            "bench.client",
            system.client,
            "single",
            "--count",
            str(self.plan.concurrent),
            "--seconds",
            str(CONCURRENT_SECONDS),
        ]
        # The enqueuer writes to files, not pipes: nobody reads a pipe while
        # the drain is watched, and Django-Q2 logs a line per enqueue, which
        # filled the pipe and blocked the enqueuer until the deadline.
        with (
            tempfile.TemporaryFile("w+") as out_file,
            tempfile.TemporaryFile("w+") as err_file,
        ):
            enqueuer = subprocess.Popen(
                command,
                cwd=systems.ROOT,
                env=self.env(system, url),
                stdout=out_file,
                stderr=err_file,
                text=True,
            )
            ended = self._drained_while(enqueuer, system, name, cluster)
            out_file.seek(0)
            err_file.seek(0)
            out, err = out_file.read(), err_file.read()
        if enqueuer.returncode != 0:
            raise BenchError("the enqueuer failed: " + tail(err))
        result = json.loads(out.strip().splitlines()[-1])
        total = result["count"] + result["warmup"]
        return {
            "rate": total / (ended - result["started_at"]),
            "enqueue_rate": result["count"] / result["seconds"],
        }

    def _drained_while(
        self,
        enqueuer: subprocess.Popen[str],
        system: System,
        name: str,
        cluster: Cluster,
    ) -> float:
        """Wait until the enqueuer has exited and the queue is empty; return when."""
        connection = self.server(system).connect(name)
        deadline = time.monotonic() + 600
        try:
            while True:
                finished = enqueuer.poll() is not None
                if finished and self.count(connection, system) == 0:
                    return time.time()
                if time.monotonic() > deadline or not cluster.alive():
                    raise BenchError(
                        "the concurrent drain did not finish:\n" + cluster.log_tail()
                    )
                time.sleep(POLL)
        finally:
            connection.close()
            if enqueuer.poll() is None:
                enqueuer.kill()
            enqueuer.wait()

    def idle(self, system: System, name: str) -> float:
        server = self.server(system)
        time.sleep(SETTLE)
        before, started = server.transactions(name), time.monotonic()
        time.sleep(self.plan.idle_seconds)
        after, elapsed = server.transactions(name), time.monotonic() - started
        return (after - before) / elapsed
