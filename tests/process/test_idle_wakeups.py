"""An idle cluster on PostgreSQL waits for notifications, not for its next poll.

Its workers poll only every DBQUEUE_LISTEN_POLL_INTERVAL (set long here) and
its scheduler sleeps until the next schedule is due. So a delayed task must
start when it falls due, and a schedule created while the cluster sleeps must
fire when due: both are told by NOTIFY (dbqueue.claiming.listen).
"""

from __future__ import annotations

import datetime
import json
import time

import pytest
from django.utils import timezone

from dbqueue import async_task, schedule
from dbqueue.models import Role, Worker
from tests.conftest import wait_until
from tests.testapp import tasks
from tests.testapp.models import Execution

pytestmark = pytest.mark.vendor("postgresql")

# An idle worker's first wait is already 30 s, and its back-off stops at 60 s.
LONG = {
    "DBQUEUE_TEST_SET_POLL_INTERVAL": json.dumps(30.0),
    "DBQUEUE_TEST_SET_POLL_INTERVAL_MAX": json.dumps(60.0),
    "DBQUEUE_TEST_SET_LISTEN_POLL_INTERVAL": json.dumps(60.0),
}


def test_a_sleeping_cluster_starts_delayed_tasks_and_new_schedules_on_time(cluster):
    run = cluster("--workers", "1", env=LONG)
    wait_until(
        lambda: Worker.objects.filter(role=Role.WORKER).exists(),
        timeout=30,
        message=f"the worker registered\n{run.output()}",
    )
    time.sleep(1)  # into its first long wait

    enqueued = timezone.now()
    async_task(tasks.record, "delayed", countdown=1.5)
    wait_until(
        lambda: Execution.objects.filter(label="delayed").exists(),
        timeout=10,
        message=f"the delayed task ran\n{run.output()}",
    )
    started = Execution.objects.get(label="delayed").created_at
    assert 1.4 <= (started - enqueued).total_seconds() <= 3.5, run.output()

    due = timezone.now() + datetime.timedelta(seconds=1.5)
    schedule(tasks.record, "scheduled", name="once", next_run=due)
    wait_until(
        lambda: Execution.objects.filter(label="scheduled").exists(),
        timeout=10,
        message=f"the new schedule fired\n{run.output()}",
    )
    fired = Execution.objects.get(label="scheduled").created_at
    assert (fired - due).total_seconds() <= 2.0, run.output()
    assert run.stop() == 0, run.output()
