"""Issue 9 part 5: secret arguments never show in the admin, even to trusted users.

Secrets are a task's ``secret_args`` and DBQUEUE_SECRET_ARGUMENT_NAMES (see
dbqueue.redaction). The schedule form shows them as [redacted] and keeps the
stored value when the post leaves the marker in place.
"""

# ruff: noqa: S106 - the fake secrets are the point

import pytest
from django.urls import reverse

from dbqueue import api
from dbqueue.models import FailedTask, Schedule
from dbqueue.redaction import REDACTED
from dbqueue.schedules import schedule
from tests.admin.conftest import make_user
from tests.security import secret_tasks
from tests.security.test_import_paths import schedule_post

pytestmark = pytest.mark.django_db

TRUSTED = ("view_task", "view_failedtask", "view_schedule", "view_task_arguments")


@pytest.fixture
def trusted_client(client):
    client.force_login(make_user("trusted", *TRUSTED))
    return client


def test_task_page_hides_declared_and_named_secrets_from_a_trusted_user(
    trusted_client,
):
    task_id = api.async_task(
        secret_tasks.login,
        "bob",
        "pin-4711",
        "otp-2222",
        note="shown-note",
        api_token="tok-1",
    )
    page = trusted_client.get(reverse("admin:dbqueue_task_change", args=[task_id]))
    text = page.content.decode()
    assert "bob" in text
    assert "shown-note" in text
    for secret in ("pin-4711", "otp-2222", "tok-1"):
        assert secret not in text
    assert REDACTED in text


def test_failed_task_and_schedule_pages_hide_secrets(trusted_client, worker):
    task_id = api.async_task(secret_tasks.charge, "card-77", "pw-in-call", amount=5)
    worker.run_once()
    entry = FailedTask.objects.get(task_id=task_id)
    page = trusted_client.get(
        reverse("admin:dbqueue_failedtask_change", args=[entry.pk])
    ).content.decode()
    assert "card-77" in page
    assert "pw-in-call" not in page
    assert REDACTED in page
    row = schedule(
        secret_tasks.connect, "db.local", password="pw-2", name="n", cron="0 3 * * *"
    )
    page = trusted_client.get(
        reverse("admin:dbqueue_schedule_change", args=[row.pk])
    ).content.decode()
    assert "db.local" in page
    assert "pw-2" not in page


def test_schedule_form_shows_secrets_redacted_and_keeps_them_on_save(admin_client):
    row = schedule(
        secret_tasks.connect,
        "db.local",
        "hunter2",
        name="nightly",
        cron="0 3 * * *",
        options={"retries": 3, "token": "t0k"},
    )
    url = reverse("admin:dbqueue_schedule_change", args=[row.pk])
    page = admin_client.get(url).content.decode()
    assert "hunter2" not in page
    assert "t0k" not in page
    form = admin_client.get(url).context["adminform"].form
    posted_args = form.initial["args"]
    posted_kwargs = form.initial["kwargs"].replace("3", "5")
    response = admin_client.post(
        url,
        schedule_post(
            func="tests.security.secret_tasks.connect",
            args=posted_args,
            kwargs=posted_kwargs,
            schedule_type="CRON",
            cron="0 3 * * *",
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    saved = Schedule.objects.get(pk=row.pk)
    assert saved.args == ("db.local", "hunter2")
    assert saved.kwargs == {"options": {"retries": 5, "token": "t0k"}}


def test_a_redacted_secret_does_not_follow_the_form_to_another_function(admin_client):
    row = schedule(
        secret_tasks.connect, "db.local", "hunter2", name="nightly", cron="0 3 * * *"
    )
    url = reverse("admin:dbqueue_schedule_change", args=[row.pk])
    response = admin_client.post(
        url,
        schedule_post(
            func="tests.testapp.tasks.echo",
            args=f'["db.local", "{REDACTED}"]',
            schedule_type="CRON",
            cron="0 3 * * *",
        ),
    )
    assert response.status_code == 200
    assert "enter them again" in str(response.context["adminform"].form.errors)
    assert Schedule.objects.get(pk=row.pk).func == "tests.security.secret_tasks.connect"


def test_a_secret_typed_in_again_replaces_the_stored_one(admin_client):
    row = schedule(
        secret_tasks.connect, "db.local", "hunter2", name="nightly", cron="0 3 * * *"
    )
    url = reverse("admin:dbqueue_schedule_change", args=[row.pk])
    response = admin_client.post(
        url,
        schedule_post(
            func="tests.security.secret_tasks.connect",
            args='["db.local", "new-password"]',
            schedule_type="CRON",
            cron="0 3 * * *",
        ),
    )
    assert response.status_code == 302
    assert Schedule.objects.get(pk=row.pk).args == ("db.local", "new-password")
