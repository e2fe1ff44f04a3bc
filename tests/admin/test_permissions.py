"""H-01: view-only staff can look at everything and change nothing, whatever they post."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from dbqueue import api
from dbqueue.models import FailedTask, QueueState, Schedule, Status, Task
from dbqueue.schedules import schedule
from tests.admin.conftest import make_user
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

CHANGELISTS = ("task", "failedtask", "schedule", "worker", "queuestate")


@pytest.fixture
def rows(make_failed):
    """One row of each kind an action could change."""
    failed = make_failed()
    queued = Task.objects.get(id=api.async_task(tasks.add, 1, 2, countdown=3600))
    nightly = schedule(tasks.add, 1, 2, name="nightly", cron="0 3 * * *")
    return {
        "failed": failed,
        "failed_task": Task.objects.get(id=failed.task_id),
        "queued": queued,
        "schedule": nightly,
    }


def state():
    """Everything a refused action must leave as it was."""
    return (
        sorted(Task.objects.values_list("id", "status", "run_after")),
        sorted(FailedTask.objects.values_list("id", "replay_count")),
        sorted(Schedule.objects.values_list("id", "enabled", "last_task_id")),
        list(QueueState.objects.values_list("name", "paused")),
        LogEntry.objects.count(),
    )


@pytest.mark.parametrize("model", CHANGELISTS)
def test_view_only_staff_can_open_every_list(viewer_client, rows, model):
    response = viewer_client.get(reverse(f"admin:dbqueue_{model}_changelist"))
    assert response.status_code == 200


def test_view_only_staff_can_open_every_detail_page(viewer_client, rows):
    for url in (
        reverse("admin:dbqueue_task_change", args=[rows["failed_task"].pk]),
        reverse("admin:dbqueue_failedtask_change", args=[rows["failed"].pk]),
        reverse("admin:dbqueue_schedule_change", args=[rows["schedule"].pk]),
    ):
        response = viewer_client.get(url)
        assert response.status_code == 200, url
        assert b"Retry now" not in response.content
        assert b'value="Replay"' not in response.content
        assert b"Run now" not in response.content


@pytest.mark.parametrize("model", ["task", "failedtask", "schedule"])
def test_no_action_is_offered_to_view_only_staff(viewer_client, rows, model):
    response = viewer_client.get(reverse(f"admin:dbqueue_{model}_changelist"))
    assert b'name="action"' not in response.content
    assert b"Replay all matching" not in response.content


@pytest.mark.parametrize(
    ("model", "action", "row"),
    [
        ("task", "retry_selected", "failed_task"),
        ("task", "cancel_selected", "queued"),
        ("task", "delete_selected", "queued"),
        ("failedtask", "replay_selected", "failed"),
        ("failedtask", "delete_selected", "failed"),
        ("schedule", "run_selected", "schedule"),
        ("schedule", "disable_selected", "schedule"),
        ("schedule", "delete_selected", "schedule"),
    ],
)
def test_a_crafted_action_post_is_refused_and_changes_nothing(
    viewer_client, rows, model, action, row
):
    before = state()
    for extra in ({}, {"post": "yes"}, {"post": "yes", "select_across": "1"}):
        response = viewer_client.post(
            reverse(f"admin:dbqueue_{model}_changelist"),
            {"action": action, "_selected_action": [rows[row].pk], "index": 0, **extra},
        )
        assert response.status_code == 403
    assert state() == before


def test_crafted_posts_to_the_buttons_are_refused_and_change_nothing(
    viewer_client, rows
):
    before = state()
    for url, data in (
        (reverse("admin:dbqueue_task_retry", args=[rows["failed_task"].pk]), {}),
        (reverse("admin:dbqueue_task_cancel", args=[rows["queued"].pk]), {}),
        (reverse("admin:dbqueue_failedtask_replay", args=[rows["failed"].pk]), {}),
        (reverse("admin:dbqueue_failedtask_replay_matching"), {}),
        (reverse("admin:dbqueue_schedule_run", args=[rows["schedule"].pk]), {}),
        (
            reverse("admin:dbqueue_queuestate_pause"),
            {"queue": "default", "paused": "1"},
        ),
    ):
        assert viewer_client.post(url, data).status_code == 403, url
    assert state() == before


def test_a_get_never_triggers_an_action(operator_client, rows):
    before = state()
    for url in (
        reverse("admin:dbqueue_task_retry", args=[rows["failed_task"].pk]),
        reverse("admin:dbqueue_task_cancel", args=[rows["queued"].pk]),
        reverse("admin:dbqueue_failedtask_replay", args=[rows["failed"].pk]),
        reverse("admin:dbqueue_schedule_run", args=[rows["schedule"].pk]),
        reverse("admin:dbqueue_queuestate_pause") + "?queue=default&paused=1",
    ):
        assert operator_client.get(url).status_code == 405, url
    # The replay-all page and an action named in a query string only show pages.
    confirm = operator_client.get(reverse("admin:dbqueue_failedtask_replay_matching"))
    assert confirm.status_code == 200
    listing = operator_client.get(
        reverse("admin:dbqueue_task_changelist")
        + f"?action=cancel_selected&_selected_action={rows['queued'].pk}"
    )
    assert listing.status_code in (200, 302)
    assert state() == before


def test_each_permission_unlocks_only_its_own_action(client, rows):
    user = make_user("retrier", "view_task", "retry_task")
    client.force_login(user)
    listing = client.get(reverse("admin:dbqueue_task_changelist"))
    assert b"retry_selected" in listing.content
    assert b"cancel_selected" not in listing.content
    assert b"delete_selected" not in listing.content
    response = client.post(
        reverse("admin:dbqueue_task_changelist"),
        {"action": "cancel_selected", "_selected_action": [rows["queued"].pk]},
    )
    assert response.status_code == 403
    assert Task.objects.get(pk=rows["queued"].pk).status == Status.QUEUED
    client.post(
        reverse("admin:dbqueue_task_changelist"),
        {"action": "retry_selected", "_selected_action": [rows["failed_task"].pk]},
    )
    assert Task.objects.filter(func=rows["failed_task"].func).count() == 2


def test_secret_looking_keyword_arguments_are_masked_without_the_permission(client):
    task_id = api.async_task(
        tasks.echo,
        "visible",
        password="hunter2",  # noqa: S106 - a kwarg the page must mask
        options={"api_key": "k-123"},
        cache_key="ck-9",
    )
    url = reverse("admin:dbqueue_task_change", args=[task_id])
    client.force_login(make_user("looker", "view_task"))
    page = client.get(url).content.decode()
    assert "visible" in page
    assert "hunter2" not in page
    assert "k-123" not in page
    assert "ck-9" not in page
    assert "********" in page
    client.force_login(make_user("trusted", "view_task", "view_task_arguments"))
    page = client.get(url).content.decode()
    assert "ck-9" in page  # only looked secret: the permission shows it
    # password and api_key are in DBQUEUE_SECRET_ARGUMENT_NAMES: hidden from everyone.
    assert "hunter2" not in page
    assert "k-123" not in page
    assert "[redacted]" in page
