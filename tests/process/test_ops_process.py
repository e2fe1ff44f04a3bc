"""qinfo, qhealth and qmonitor against a real qcluster with work in flight.

The commands run as an operator (or a Kubernetes exec probe) runs them: as
`python -m django <command>` subprocesses, reading the same database as the
cluster. Waits are on conditions with deadlines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from django.db import connection

from dbqueue import async_task
from dbqueue.models import Role, Worker
from tests.conftest import REPO, wait_until
from tests.testapp import tasks
from tests.testapp.models import Execution

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

COMMAND_TIMEOUT = 60  # seconds for one command on a loaded machine


def command_env() -> dict[str, str]:
    return {
        **os.environ,
        "DBQUEUE_TEST_DATABASE_NAME": str(connection.settings_dict["NAME"]),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(REPO),
    }


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a management command as a shell user would; return its exit status and output."""
    connection.close()  # SQLite: hold no lock the command needs
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=REPO,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def supervisor_pid() -> int:
    row = wait_until(
        lambda: Worker.objects.filter(role=Role.SUPERVISOR).first(),
        timeout=30,
        message="the cluster registered its supervisor",
    )
    return int(row.pid)


def test_qinfo_and_qhealth_see_a_cluster_running_a_task(cluster):
    long = async_task(tasks.slow_record, "long", 30)
    for label in range(3):
        async_task(tasks.record, f"q-{label}", queue="idle-queue")
    run = cluster("--workers", "1")
    wait_until(
        lambda: Execution.objects.filter(label="long:start").exists(),
        timeout=30,
        message="the long task started",
    )
    pid = supervisor_pid()
    assert pid == run.pid

    # The registry shows the running task from the next heartbeat.
    def worker_reports_task() -> bool:
        return Worker.objects.filter(current_task_id=long).exists()

    wait_until(worker_reports_task, timeout=15, message="heartbeat names the task")

    info = manage("qinfo", "--json")
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    [found] = [c for c in data["clusters"] if c["pid"] == pid]
    assert not found["stale"]
    tasks_run = [p["current_task"] for p in found["processes"] if p["current_task"]]
    assert tasks_run[0]["id"] == str(long)
    assert tasks_run[0]["func"] == "tests.testapp.tasks.slow_record"
    queues = {q["name"]: q for q in data["queues"]}
    assert queues["default"]["running"] == 1
    assert queues["idle-queue"]["queued"] == 3

    text = manage("qinfo")
    assert text.returncode == 0, text.stderr
    assert "Clusters: 1 live, 0 stale" in text.stdout
    assert "running tests.testapp.tasks.slow_record for" in text.stdout

    live = manage("qhealth", "--liveness")
    assert live.returncode == 0, live.stdout + live.stderr
    assert live.stdout.startswith("OK: ")
    assert manage("qhealth", "--liveness", f"--cluster={pid}").returncode == 0
    # idle-queue is served by no cluster: its lag grows past a small limit.
    wait_until(
        lambda: manage("qhealth", "--readiness", "--max-lag=1").returncode == 1,
        timeout=30,
        message="readiness fails on the lagging queue",
    )
    ready = manage("qhealth", "--readiness", "--max-lag=1")
    assert "queue 'idle-queue' lags" in ready.stdout
    assert manage("qhealth", "--readiness", "--queues=default").returncode == 0
    bad = manage("qhealth", "--max-lag=soon")
    assert bad.returncode == 2
    assert "--max-lag must be a number of seconds" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_liveness_fails_once_a_killed_cluster_stops_heartbeating(cluster):
    run = cluster("--workers", "1")
    pid = supervisor_pid()
    assert manage("qhealth", "--liveness", f"--cluster={pid}").returncode == 0
    os.killpg(run.pid, signal.SIGKILL)
    run.process.wait(10)
    started = time.monotonic()
    result = wait_until(
        lambda: (r := manage("qhealth", "--liveness")).returncode == 1 and r,
        timeout=30,
        message="liveness fails after the lease",
    )
    assert time.monotonic() - started < 30
    assert "more than DBQUEUE_LEASE (3.0s)" in result.stdout, result.stdout


def test_qmonitor_prints_frames_to_a_pipe_and_stops_cleanly_on_sigterm(cluster):
    cluster("--workers", "1")
    supervisor_pid()
    connection.close()
    monitor = subprocess.Popen(
        [sys.executable, "-m", "django", "qmonitor", "--interval=0.2"],
        cwd=REPO,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        lines: list[str] = []
        assert monitor.stdout is not None
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while sum("Clusters: 1 live" in line for line in lines) < 2:
            assert time.monotonic() < deadline, "".join(lines)
            lines.append(monitor.stdout.readline())
        monitor.send_signal(signal.SIGTERM)
        out, err = monitor.communicate(timeout=COMMAND_TIMEOUT)
    finally:
        if monitor.poll() is None:
            os.killpg(monitor.pid, signal.SIGKILL)
            monitor.wait(10)
    assert monitor.returncode == 0, err
    assert "Traceback" not in err
    assert "\x1b" not in "".join(lines) + out
    assert "-" * 72 in "".join(lines)
