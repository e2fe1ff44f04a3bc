"""A real qcluster logs each task's state changes and serves the same metrics as the view."""

from __future__ import annotations

import json
import re
import signal
import socket
import urllib.request

import pytest
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from dbqueue import async_task
from dbqueue.models import Status, Task
from tests.conftest import wait_until
from tests.monitoring.conftest import parse, value
from tests.testapp import monitoring_tasks, tasks

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TOKEN = "process-scrape-token"  # noqa: S105
ADD = "tests.testapp.tasks.add"
FAIL = "tests.testapp.tasks.fail"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape_port(port):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
        return parse(response.read().decode())


def test_a_cluster_logs_every_state_change_once_and_serves_metrics(cluster, client):
    added = [async_task(tasks.add, n, n) for n in range(3)]
    failed = async_task(tasks.fail, "nope", max_attempts=2)
    chatty = async_task(monitoring_tasks.chatty, "job-1")
    port = free_port()
    run = cluster(
        "--workers",
        "1",
        env={
            "DBQUEUE_TEST_SET_METRICS_PORT": json.dumps(port),
            "DBQUEUE_TEST_SET_METRICS_TOKEN": json.dumps(TOKEN),
        },
    )
    everything = [*added, failed, chatty]

    def finished():
        done = Task.objects.filter(
            pk__in=everything, status__in=[Status.SUCCEEDED, Status.FAILED]
        ).count()
        connection.close()
        return done == len(everything)

    wait_until(finished, timeout=60, message="every task finished")
    wait_until(
        lambda: f"Serving metrics on http://127.0.0.1:{port}" in run.output(),
        timeout=20,
    )
    samples = wait_until(
        lambda: (
            (s := scrape_port(port))
            and value(s, "dbqueue_workers", role="scheduler") == 1
            # The worker writes its counts once it finds nothing to claim.
            and value(s, "dbqueue_task_dead_letters_total", queue="default", func=FAIL)
            and s
        ),
        timeout=30,
        message="the scheduler registered and the worker wrote its counts",
    )
    assert value(samples, "dbqueue_workers", role="worker") == 1
    assert value(samples, "dbqueue_workers", role="supervisor") == 1
    assert (
        value(
            samples,
            "dbqueue_task_runs_total",
            queue="default",
            func=ADD,
            outcome="succeeded",
        )
        == 3
    )
    assert (
        value(
            samples,
            "dbqueue_task_runs_total",
            queue="default",
            func=FAIL,
            outcome="failed",
        )
        == 2
    )
    assert value(samples, "dbqueue_task_retries_total", queue="default", func=FAIL) == 1
    assert (
        value(samples, "dbqueue_task_dead_letters_total", queue="default", func=FAIL)
        == 1
    )
    assert (
        value(samples, "dbqueue_task_duration_seconds_count", queue="default", func=ADD)
        == 3
    )
    assert value(samples, "dbqueue_queue_depth", queue="default") == 0
    with override_settings(DBQUEUE_METRICS_TOKEN=TOKEN):
        response = client.get(
            reverse("dbqueue:metrics"), HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
        )
    from_view = parse(response.content.decode())
    for name in (
        "dbqueue_task_runs_total",
        "dbqueue_task_retries_total",
        "dbqueue_task_duration_seconds_count",
    ):
        view_series = {k: v for k, v in from_view.items() if k[0] == name}
        assert view_series == {k: v for k, v in samples.items() if k[0] == name}
    connection.close()
    run.signal(signal.SIGTERM)
    assert run.wait(timeout=30) == 0, run.output()
    output = run.output()

    def lines(task_id):
        return [
            (match.group(1), match.group(2), match.group(3))
            for match in re.finditer(
                rf"^\S+ \S+ (\w+) \[([\w.]+)\] Task id={task_id} .*?state=(\w+)",
                output,
                re.MULTILINE,
            )
        ]

    executor = "dbqueue.cluster.executor"
    for task_id in added:
        assert lines(task_id) == [
            ("INFO", executor, "RUNNING"),
            ("INFO", executor, "SUCCEEDED"),
        ], output
    assert lines(failed) == [
        ("INFO", executor, "RUNNING"),
        ("WARNING", executor, "QUEUED"),
        ("INFO", executor, "RUNNING"),
        ("ERROR", executor, "FAILED"),
    ], output
    assert re.search(rf"^Working on job-1 task_id={chatty}$", output, re.MULTILINE), (
        output
    )
    assert "nope" in output
    assert "job-1" in output
    assert "args=" not in output
