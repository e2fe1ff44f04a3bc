"""H-03 and issue 9 part 5(b): nothing in a row or a post makes dbqueue import and call a path.

The worker runs only registered tasks, whatever a row says and even when its
payload's signature verifies (a row left by a removed task, a key that
leaked); a hook runs only when the payload that names it verifies; the admin
offers only registered functions and takes arguments as JSON, never a pickle.
Each dangerous call is given arguments that would leave a witness file.
"""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from dbqueue import api, serialization
from dbqueue.cluster.worker import Worker
from dbqueue.models import FailedTask, Schedule, Status, Task
from tests.conftest import run_all
from tests.security import forgery
from tests.testapp import tasks
from tests.testapp.models import Execution

pytestmark = pytest.mark.django_db

EVIL = "tests.security.evil"


@pytest.fixture
def marker(tmp_path, monkeypatch):
    path = tmp_path / "witness"
    monkeypatch.setenv("DBQUEUE_TEST_EVIL_MARKER", str(path))
    return path


@pytest.fixture
def worker():
    return Worker(worker_id="security-test-worker", queues=["*"], poll_interval=0)


def dangerous_calls(marker):
    """Each dangerous path with arguments that would create `marker` if it were called."""
    code = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": ((f"touch {marker}",), {}),
        "subprocess.run": ((["touch", str(marker)],), {}),
        "builtins.exec": ((code,), {}),
        "django.core.management.call_command": (("shell",), {"command": code}),
        f"{EVIL}.create_marker": ((), {}),
    }


def stored_row(func, args, kwargs, **columns):
    """A task row written straight to the table, its payload signed with the real key."""
    payload = serialization.dumps_payload(
        func, args, kwargs, hook=columns.get("hook", "")
    )
    return Task.objects.create(func=func, payload=payload, **columns)


def test_the_worker_refuses_an_unregistered_path_even_with_a_valid_signature(
    worker, marker
):
    rows = {
        path: stored_row(path, args, kwargs, max_attempts=3)
        for path, (args, kwargs) in dangerous_calls(marker).items()
    }
    assert len(run_all(worker)) == len(rows)
    assert not marker.exists()
    for path, row in rows.items():
        row.refresh_from_db()
        assert (row.status, row.attempts) == (Status.FAILED, 1), path
        assert row.error.startswith("TaskNotFound: "), row.error
        assert repr(path) in row.error, row.error
        assert "not a registered task" in row.error, row.error


@pytest.mark.parametrize("column", ["hook", "func"])
def test_a_hook_edited_into_a_row_is_never_imported_nor_called(worker, marker, column):
    task_id = api.async_task(tasks.record, "x", max_attempts=1)
    if column == "hook":
        Task.objects.filter(id=task_id).update(hook=f"{EVIL}.hook")
    else:
        # A genuine hook, and the function swapped under it.
        Task.objects.filter(id=task_id).update(hook=f"{EVIL}.hook", func="os.system")
    worker.run_once()
    task = Task.objects.get(id=task_id)
    assert task.status == Status.FAILED
    assert "does not verify" in task.error
    assert not marker.exists(), marker.read_text()
    assert not Execution.objects.exists()


def test_a_replayed_entry_whose_hook_was_edited_never_calls_it(worker, marker):
    Execution.objects.create(label="blocked:h")
    dead_id = api.async_task(tasks.fails_while_blocked, "h", max_attempts=1)
    worker.run_once()
    entry = FailedTask.objects.get(task_id=dead_id)
    FailedTask.objects.filter(pk=entry.pk).update(hook=f"{EVIL}.hook")
    Execution.objects.all().delete()
    from dbqueue import replays

    replayed = replays.replay(FailedTask.objects.get(pk=entry.pk), by="test")
    worker.run_once()
    replayed.refresh_from_db()
    assert replayed.status == Status.FAILED
    assert "does not verify" in replayed.error
    assert not marker.exists()


def test_a_verified_hook_still_runs(worker, marker):
    """The refusal above is about forged rows: a hook given at enqueue is called."""
    task_id = api.async_task(tasks.add, 1, 2, hook=f"{EVIL}.hook")
    worker.run_once()
    assert Task.objects.get(id=task_id).status == Status.SUCCEEDED
    assert marker.read_text() == f"hook ran for {task_id}"


# The admin: only registered functions, arguments as JSON, no payload field.


def schedule_post(**overrides):
    data = {
        "name": "nightly",
        "func": "tests.testapp.tasks.add",
        "args": "[1, 2]",
        "kwargs": "{}",
        "schedule_type": "DAILY",
        "minutes": "",
        "cron": "",
        "timezone": "UTC",
        "next_run_0": (timezone.now() + datetime.timedelta(hours=1)).strftime(
            "%Y-%m-%d"
        ),
        "next_run_1": "03:00:00",
        "repeats": "-1",
        "enabled": "on",
        "catch_up": "SKIP",
        "allow_overlap": "on",
        "queue": "",
        "priority": "0",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("path", [*dangerous_calls("x"), f"{EVIL}.hook"])
def test_the_schedule_form_refuses_an_import_path(admin_client, path, marker):
    response = admin_client.post(
        reverse("admin:dbqueue_schedule_add"), schedule_post(func=path)
    )
    assert response.status_code == 200
    assert "func" in response.context["adminform"].form.errors
    assert not Schedule.objects.exists()


def test_the_schedule_form_takes_no_hook_and_no_payload_from_a_post(
    admin_client, marker
):
    evil = forgery.evil_data(marker)
    response = admin_client.post(
        reverse("admin:dbqueue_schedule_add"),
        schedule_post(
            payload=f"p:{evil}:sig",
            hook=f"{EVIL}.hook",
            task_options='{"hook": "os.system"}',
        ),
    )
    assert response.status_code == 302
    row = Schedule.objects.get()
    assert row.hook == ""
    assert "hook" not in (row.task_options or {})
    assert row.args == (1, 2)
    assert evil not in row.payload
    assert not marker.exists()


@pytest.mark.parametrize(
    "field",
    ["args", "kwargs"],
)
def test_the_schedule_form_refuses_a_pickle_for_arguments(admin_client, marker, field):
    for text in (forgery.raw_pickle(marker), forgery.evil_data(marker)):
        response = admin_client.post(
            reverse("admin:dbqueue_schedule_add"), schedule_post(**{field: text})
        )
        assert response.status_code == 200
        assert field in response.context["adminform"].form.errors
    assert not Schedule.objects.exists()
    assert not marker.exists()


def test_pages_showing_a_forged_pickle_never_unpickle_it(admin_client, marker):
    """Detail pages decode arguments; a forged payload shows why, and runs nothing."""
    task_id = api.async_task(tasks.add, 1, 2)
    stored = Task.objects.get(id=task_id).payload
    Task.objects.filter(id=task_id).update(
        payload=forgery.with_changed_bytes(stored, marker)
    )
    page = admin_client.get(reverse("admin:dbqueue_task_change", args=[task_id]))
    assert page.status_code == 200
    assert "does not verify" in page.content.decode()
    listing = admin_client.get(reverse("admin:dbqueue_task_changelist"))
    assert listing.status_code == 200
    assert not marker.exists()
