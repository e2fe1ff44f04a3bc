"""qcluster processes as the runner starts, kills and restarts them.

Each cluster is ``python -m django qcluster`` in its own session, its output in
a log file of the run. Its children are found in /proc, not in dbqueue's
registry, so the runner still finds them while the database is down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import processes

ROOT = Path(__file__).resolve().parent.parent


def child_env(url: str, name: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chaos.settings",
        "DBQUEUE_CHAOS_DATABASE_URL": url,
        "DBQUEUE_CHAOS_DATABASE_NAME": name,
        "PYTHONPATH": str(ROOT),
    }


class Cluster:
    """One qcluster process group."""

    def __init__(self, label: str, workers: int, env: dict[str, str], logs: Path):
        self.label = label
        self.workers = workers
        self.log_path = logs / f"{label}.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "django", "qcluster", "--workers", str(workers)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[int]:
        """Pids of the supervisor's live children (its workers and its scheduler)."""
        return children_of(self.pid)

    def started_workers(self) -> int:
        return self.output().count("started; queues=")

    def kill(self) -> list[int]:
        """SIGKILL the supervisor and its children at once; return every pid killed."""
        pids = [self.pid, *self.children()]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(30)
        return pids

    def terminate(self, timeout: float) -> int | None:
        """SIGTERM, as a deploy does; return the exit code, or None if it did not exit in time."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


def children_of(parent: int) -> list[int]:
    return [
        pid for pid, fields in processes.live_processes() if int(fields[1]) == parent
    ]


def is_alive(pid: int) -> bool:
    """True if `pid` runs and is not a zombie (which no init may reap in a container)."""
    fields = processes.proc_stat(pid)
    return fields is not None and fields[0] != "Z"


def wait_for(
    predicate: Callable[[], object], timeout: float, interval: float = 0.1
) -> bool:
    """Poll `predicate` until it is true or `timeout` passes; return whether it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def signal_pid(pid: int, signum: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
