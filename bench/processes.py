"""Start a system's worker processes as a user would, measure them, stop them.

Each command runs in its own session (so its children can be found and
killed with it), with its output in a log file whose tail goes into the error
message when something fails. Processes are found in /proc (proc_stat,
live_processes), which the chaos runner uses too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

STOP_GRACE = 20.0  # seconds between SIGTERM and SIGKILL


def proc_stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name, or None if `pid` is gone.

    Index 0 is the state ("Z": a zombie), 1 the parent pid, 3 the session id.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: split after it.
    return stat.rsplit(")", 1)[1].split()


def live_processes() -> Iterator[tuple[int, list[str]]]:
    """(pid, proc_stat fields) of every process that is not a zombie."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = proc_stat(entry.name)
            if fields is not None and fields[0] != "Z":
                yield int(entry.name), fields


class Cluster:
    """The processes of one system's cluster: one or more commands, each with its children."""

    def __init__(
        self, commands: list[list[str]], env: dict[str, str], cwd: Path, log: Path
    ):
        self.log_path = log
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.processes = [
            subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for command in commands
        ]

    @property
    def sessions(self) -> set[int]:
        return {p.pid for p in self.processes}

    def pids(self) -> list[int]:
        """Every live process in the cluster's sessions, children included."""
        sessions = self.sessions
        return sorted(
            pid for pid, fields in live_processes() if int(fields[3]) in sessions
        )

    def alive(self) -> bool:
        return any(p.poll() is None for p in self.processes)

    def pss_mib(self) -> float:
        """Proportional set size of the whole cluster, from /proc/<pid>/smaps_rollup."""
        total_kib = 0
        for pid in self.pids():
            try:
                text = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
                    break
        return total_kib / 1024

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
        for session in self.sessions:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(session, signal.SIGKILL)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        self.log.close()
