"""H-01 and issue 9 part 5(c): every admin action checks who asks and how.

tests/admin/test_permissions.py covers view-only staff. Here every action
(changelist actions, the buttons, replay-all-matching, pause and resume, the
schedule's change and delete pages) is also posted by an anonymous client
and, as a superuser, by a client that enforces CSRF checks and sends no
token: each is refused and the database is unchanged. View-only staff are
checked for the actions test_permissions leaves out (enable, resume).
"""

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from dbqueue import api
from dbqueue.models import FailedTask, QueueState, Schedule, ScheduleRun, Status, Task
from dbqueue.schedules import schedule
from tests.admin.conftest import make_user
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(make_failed):
    failed = make_failed()
    queued = Task.objects.get(id=api.async_task(tasks.add, 1, 2, countdown=3600))
    enabled = schedule(tasks.add, 1, 2, name="nightly", cron="0 3 * * *")
    disabled = schedule(tasks.add, 3, 4, name="off", cron="0 4 * * *", enabled=False)
    QueueState.set_paused("held", True, by="setup")
    return {
        "failed": failed,
        "failed_task": Task.objects.get(id=failed.task_id),
        "queued": queued,
        "schedule": enabled,
        "disabled": disabled,
    }


def state():
    """Everything a refused action must leave as it was."""
    return (
        sorted(Task.objects.values_list("id", "status", "run_after")),
        sorted(FailedTask.objects.values_list("id", "replay_count", "replayed_as")),
        sorted(Schedule.objects.values_list("id", "enabled", "name", "payload")),
        ScheduleRun.objects.count(),
        sorted(QueueState.objects.values_list("name", "paused")),
        LogEntry.objects.count(),
    )


ACTIONS = [
    ("task", "retry_selected", "failed_task"),
    ("task", "cancel_selected", "queued"),
    ("task", "delete_selected", "queued"),
    ("failedtask", "replay_selected", "failed"),
    ("failedtask", "delete_selected", "failed"),
    ("schedule", "run_selected", "schedule"),
    ("schedule", "enable_selected", "disabled"),
    ("schedule", "disable_selected", "schedule"),
    ("schedule", "delete_selected", "schedule"),
]


def every_post(rows):
    """(url, data) of every state-changing post the console accepts, filled in as a real form would be."""
    posts = [
        (
            reverse(f"admin:dbqueue_{model}_changelist"),
            {
                "action": action,
                "_selected_action": [rows[row].pk],
                "index": 0,
                "post": "yes",
            },
        )
        for model, action, row in ACTIONS
    ]
    nightly = rows["schedule"].pk
    posts += [
        (reverse("admin:dbqueue_task_retry", args=[rows["failed_task"].pk]), {}),
        (reverse("admin:dbqueue_task_cancel", args=[rows["queued"].pk]), {}),
        (reverse("admin:dbqueue_failedtask_replay", args=[rows["failed"].pk]), {}),
        (reverse("admin:dbqueue_failedtask_replay_matching"), {"again": "1"}),
        (reverse("admin:dbqueue_schedule_run", args=[nightly]), {}),
        (
            reverse("admin:dbqueue_queuestate_pause"),
            {"queue": "default", "paused": "1"},
        ),
        (reverse("admin:dbqueue_queuestate_pause"), {"queue": "held", "paused": "0"}),
        (reverse("admin:dbqueue_schedule_delete", args=[nightly]), {"post": "yes"}),
        (
            reverse("admin:dbqueue_schedule_change", args=[nightly]),
            {"name": "renamed", "func": "tests.testapp.tasks.add", "args": "[9]"},
        ),
    ]
    return posts


def test_an_anonymous_client_is_sent_to_the_login_page_and_changes_nothing(
    client, rows
):
    before = state()
    for url, data in every_post(rows):
        response = client.post(url, data)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url
    assert state() == before


def test_a_post_without_a_csrf_token_is_refused_even_for_a_superuser(rows):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("root", superuser=True))
    before = state()
    for url, data in every_post(rows):
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert b"CSRF" in response.content, url
    assert state() == before


def test_the_same_posts_with_a_token_do_act(rows):
    """The refusals above are about the missing token: with it, the actions work."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("root", superuser=True))
    page = client.get(reverse("admin:dbqueue_task_changelist"))
    token = page.cookies["csrftoken"].value
    response = client.post(
        reverse("admin:dbqueue_task_cancel", args=[rows["queued"].pk]),
        {"csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert Task.objects.get(pk=rows["queued"].pk).status == Status.CANCELLED


def test_view_only_staff_can_neither_enable_a_schedule_nor_resume_a_queue(client, rows):
    client.force_login(
        make_user("viewer", "view_task", "view_failedtask", "view_schedule")
    )
    before = state()
    enable = client.post(
        reverse("admin:dbqueue_schedule_changelist"),
        {"action": "enable_selected", "_selected_action": [rows["disabled"].pk]},
    )
    assert enable.status_code == 403
    resume = client.post(
        reverse("admin:dbqueue_queuestate_pause"), {"queue": "held", "paused": "0"}
    )
    assert resume.status_code == 403
    confirm = client.post(
        reverse("admin:dbqueue_failedtask_replay_matching"), {"again": "1"}
    )
    assert confirm.status_code == 403
    assert state() == before


def test_each_action_needs_its_own_permission_not_a_neighbours(client, rows):
    """Holding every other console permission does not grant an action."""
    everything = [
        "view_task",
        "change_task",
        "delete_task",
        "view_failedtask",
        "change_failedtask",
        "delete_failedtask",
        "view_schedule",
        "change_schedule",
        "delete_schedule",
        "view_queuestate",
        "change_queuestate",
        "view_task_arguments",
    ]
    client.force_login(make_user("almost", *everything))
    before = state()
    for url in (
        reverse("admin:dbqueue_failedtask_replay", args=[rows["failed"].pk]),
        reverse("admin:dbqueue_failedtask_replay_matching"),
        reverse("admin:dbqueue_task_retry", args=[rows["failed_task"].pk]),
        reverse("admin:dbqueue_task_cancel", args=[rows["queued"].pk]),
        reverse("admin:dbqueue_schedule_run", args=[rows["schedule"].pk]),
        reverse("admin:dbqueue_queuestate_pause"),
    ):
        data = {"again": "1", "queue": "held", "paused": "0"}
        assert client.post(url, data).status_code == 403, url
    for model, action, row in (
        ("task", "retry_selected", "failed_task"),
        ("task", "cancel_selected", "queued"),
        ("failedtask", "replay_selected", "failed"),
        ("schedule", "run_selected", "schedule"),
    ):
        response = client.post(
            reverse(f"admin:dbqueue_{model}_changelist"),
            {"action": action, "_selected_action": [rows[row].pk], "post": "yes"},
        )
        assert response.status_code == 403, action
    assert state() == before
