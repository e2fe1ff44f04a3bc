"""E-02(b) and issue 9 part 5: rows forged without SECRET_KEY are never unpickled nor run.

A real qcluster (worker and scheduler processes) meets task rows whose
payload had its bytes changed, was signed with another key, or carries no
signature, plus a schedule and a dead-letter replay with forged payloads.
Each forged payload is a pickle that creates a marker file when unpickled,
so "never unpickled" is checked on the file system, not taken on trust.
"""

import datetime
import signal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from dbqueue import api
from dbqueue.cluster.worker import Worker
from dbqueue.models import FailedTask, Schedule, ScheduleRun, Status, Task
from dbqueue.schedules import schedule
from tests.conftest import wait_until
from tests.security import forgery
from tests.testapp import tasks
from tests.testapp.models import Execution

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RECORD = "tests.testapp.tasks.record"
NOT_VERIFIED = "signature that does not verify"


def tamper(model, pk, **columns):
    """Write columns with SQL, as someone with database access but not the key would."""
    sets = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in columns)
    key = model._meta.pk.get_db_prep_value(pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {model._meta.db_table} SET {sets} WHERE id = %s",
            [*columns.values(), key],
        )


def test_the_forgery_would_run_code_if_unpickled(tmp_path):
    """The marker is a real witness: unpickling the crafted data does create it."""
    forgery.assert_is_evil(forgery.evil_data(tmp_path / "probe"), tmp_path / "probe")


def test_a_real_cluster_never_unpickles_nor_runs_a_forged_payload(
    cluster, tmp_path, admin_client
):
    markers = {}

    def marker(name):
        markers[name] = tmp_path / f"{name}.ran"
        return markers[name]

    # First (the setup worker must claim it, not a forged row): a dead-letter
    # entry whose payload is then forged, replayed from the admin.
    Execution.objects.create(label="blocked:dlq")
    dead_id = api.async_task(tasks.fails_while_blocked, "dlq", max_attempts=1)
    Worker(worker_id="setup", queues=["*"], poll_interval=0).run_once()
    entry = FailedTask.objects.get(task_id=dead_id)
    tamper(
        FailedTask,
        entry.pk,
        payload=forgery.with_changed_bytes(entry.payload, marker("replay")),
    )
    Execution.objects.all().delete()  # a real run would now succeed and record
    response = admin_client.post(
        reverse("admin:dbqueue_failedtask_replay", args=[entry.pk])
    )
    assert response.status_code == 302
    replayed = FailedTask.objects.get(pk=entry.pk).replayed_as
    assert replayed is not None

    forged = {}
    task_id = api.async_task(tasks.record, "changed-bytes", max_attempts=3)
    stored = Task.objects.get(id=task_id).payload
    tamper(Task, task_id, payload=forgery.with_changed_bytes(stored, marker("changed")))
    forged["changed"] = task_id
    task_id = api.async_task(tasks.record, "other-key", max_attempts=3)
    payload = forgery.signed_with_another_key(RECORD, marker("other-key"))
    tamper(Task, task_id, payload=payload)
    forged["other-key"] = task_id
    task_id = api.async_task(tasks.record, "unsigned", max_attempts=3)
    tamper(Task, task_id, payload=forgery.unsigned(marker("unsigned")))
    forged["unsigned"] = task_id
    task_id = api.async_task(tasks.record, "moved", max_attempts=3)
    tamper(Task, task_id, func="os.system")  # a genuine payload, moved onto os.system
    forged["moved"] = task_id

    # A schedule due now whose payload was signed with another key.
    nightly = schedule(
        tasks.record,
        "scheduled",
        name="forged",
        schedule_type="MINUTES",
        minutes=1,
        next_run=timezone.now() - datetime.timedelta(seconds=1),
    )
    tamper(
        Schedule,
        nightly.pk,
        payload=forgery.signed_with_another_key(RECORD, marker("schedule")),
    )
    # An honest task queued after the forged ones: the worker is still there for it.
    honest = api.async_task(tasks.record, "honest", countdown=1)

    run = cluster("--workers", "1")
    ids = [*forged.values(), replayed]

    def settled():
        return (
            Task.objects.filter(id__in=ids, status=Status.FAILED).count() == len(ids)
            and Task.objects.filter(id=honest, status=Status.SUCCEEDED).exists()
            and ScheduleRun.objects.filter(schedule=nightly.pk).exists()
        )

    wait_until(settled, timeout=90, message="forged rows failed, honest task ran")
    connection.close()
    run.signal(signal.SIGTERM)
    assert run.wait(timeout=30) == 0, run.output()
    output = run.output()

    assert [name for name, path in markers.items() if path.exists()] == [], output
    for name, task_id in [*forged.items(), ("replay", replayed)]:
        task = Task.objects.get(id=task_id)
        # Failed at once with the reason, no retry storm, and dead-lettered.
        assert task.attempts == 1, (name, task.attempts)
        assert "PayloadSignatureError" in task.error, (name, task.error)
        assert NOT_VERIFIED in task.error, (name, task.error)
        assert FailedTask.objects.filter(task_id=task_id).exists(), name
    run_row = ScheduleRun.objects.get(schedule=nightly.pk)
    assert "PayloadSignatureError" in run_row.error, run_row.error
    assert run_row.task_id is None
    assert list(Execution.objects.values_list("label", flat=True)) == ["honest"]
    assert output.count("started; queues=") == 1, "the worker was never replaced"
