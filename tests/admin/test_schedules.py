"""H-03: the schedule form offers registered tasks only; JSON arguments; cron checked and previewed."""

import datetime

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from dbqueue.models import RunOutcome, Schedule, ScheduleRun, Task
from dbqueue.schedules import schedule
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

ADD = "admin:dbqueue_schedule_add"
LIST = "admin:dbqueue_schedule_changelist"
DANGEROUS = (
    "os.system",
    "subprocess.run",
    "builtins.exec",
    "django.core.management.call_command",
)


def form_data(**overrides):
    now = timezone.now() + datetime.timedelta(hours=1)
    data = {
        "name": "nightly",
        "func": "tests.testapp.tasks.add",
        "args": "[1, 2]",
        "kwargs": "{}",
        "schedule_type": "CRON",
        "minutes": "",
        "cron": "0 3 * * *",
        "timezone": "Europe/Berlin",
        "next_run_0": now.strftime("%Y-%m-%d"),
        "next_run_1": now.strftime("%H:%M:%S"),
        "repeats": "-1",
        "enabled": "on",
        "catch_up": "SKIP",
        "allow_overlap": "on",
        "queue": "",
        "priority": "",
    }
    data.update(overrides)
    return data


def test_the_form_offers_only_registered_tasks(operator_client):
    page = operator_client.get(reverse(ADD))
    choices = [
        value for value, _ in page.context["adminform"].form.fields["func"].choices
    ]
    assert "tests.testapp.tasks.add" in choices
    assert not any(path in choices for path in DANGEROUS)


@pytest.mark.parametrize("path", DANGEROUS)
def test_an_import_path_that_is_not_a_task_is_refused(operator_client, path):
    response = operator_client.post(reverse(ADD), form_data(func=path))
    assert response.status_code == 200
    assert "func" in response.context["adminform"].form.errors
    assert not Schedule.objects.exists()


def test_a_valid_form_stores_signed_json_arguments(operator_client):
    response = operator_client.post(
        reverse(ADD),
        form_data(
            args='[1, "two"]', kwargs='{"b": 3}', func="tests.testapp.tasks.echo"
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    stored = Schedule.objects.get(name="nightly")
    assert (stored.args, stored.kwargs) == ((1, "two"), {"b": 3})
    assert stored.next_run.hour in (1, 2)  # 03:00 in Berlin


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("args", "[1,", "not valid JSON"),
        ("args", '{"a": 1}', "must be a JSON list"),
        ("kwargs", "[1]", "must be a JSON object"),
        ("cron", "0 25 * * *", "hour"),
        ("timezone", "Mars/Olympus", "Mars/Olympus"),
    ],
)
def test_bad_arguments_and_timing_are_reported_on_their_field(
    operator_client, field, value, message
):
    response = operator_client.post(reverse(ADD), form_data(**{field: value}))
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors.get(field, [])), errors
    assert not Schedule.objects.exists()


def test_the_preview_shows_the_next_runs_or_the_problem(operator_client):
    url = reverse("admin:dbqueue_schedule_preview")
    good = operator_client.get(
        url, {"schedule_type": "CRON", "cron": "*/15 * * * *", "timezone": "UTC"}
    ).json()
    assert len(good["runs"]) == 5
    first, second = (datetime.datetime.fromisoformat(r) for r in good["runs"][:2])
    assert second - first == datetime.timedelta(minutes=15)
    bad = operator_client.get(
        url, {"schedule_type": "CRON", "cron": "61 * * * *"}
    ).json()
    assert bad["runs"] == []
    assert "cron" in bad["errors"]
    daily = operator_client.get(
        url,
        {
            "schedule_type": "MINUTES",
            "minutes": "30",
            "next_run_0": "2030-01-01",
            "next_run_1": "10:00:00",
        },
    ).json()
    assert daily["runs"][:2] == [
        "2030-01-01 10:00:00+00:00",
        "2030-01-01 10:30:00+00:00",
    ]


def test_run_now_enqueues_a_task_and_shows_the_outcome_in_the_list(operator_client):
    nightly = schedule(tasks.add, 2, 3, name="nightly", cron="0 3 * * *")
    next_run = nightly.next_run
    operator_client.post(reverse("admin:dbqueue_schedule_run", args=[nightly.pk]))
    task = Task.objects.get()
    assert (task.func, task.args, task.group) == (
        "tests.testapp.tasks.add",
        (2, 3),
        "nightly",
    )
    nightly.refresh_from_db()
    assert (nightly.next_run, nightly.last_task_id) == (next_run, task.id)
    run = ScheduleRun.objects.get()
    assert (run.outcome, run.task_id, run.fired_by) == (
        RunOutcome.ENQUEUED,
        task.id,
        "admin:admin",
    )
    listing = operator_client.get(reverse(LIST)).content.decode()
    assert "Enqueued: Queued" in listing


def set_func(schedule_id, path):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE dbqueue_schedule SET func = %s WHERE id = %s", [path, schedule_id]
        )


def test_a_row_with_an_unregistered_path_shows_as_such_and_never_runs(operator_client):
    nightly = schedule(tasks.add, 2, 3, name="nightly", cron="0 3 * * *")
    set_func(nightly.pk, "os.system")
    listing = operator_client.get(reverse(LIST)).content.decode()
    assert "not registered" in listing
    page = operator_client.get(
        reverse("admin:dbqueue_schedule_change", args=[nightly.pk])
    )
    assert "os.system (not registered)" in page.content.decode()
    response = operator_client.post(
        reverse("admin:dbqueue_schedule_run", args=[nightly.pk]), follow=True
    )
    assert "No task is registered as &#x27;os.system&#x27;" in response.content.decode()
    operator_client.post(
        reverse(LIST), {"action": "run_selected", "_selected_action": [nightly.pk]}
    )
    assert not Task.objects.exists()
    # Saving the form with that path is refused too.
    saved = operator_client.post(
        reverse("admin:dbqueue_schedule_change", args=[nightly.pk]),
        form_data(func="os.system"),
    )
    assert "func" in saved.context["adminform"].form.errors


def test_a_hook_whose_payload_does_not_verify_is_not_re_signed(operator_client):
    hooked = schedule(tasks.hooked, 2, name="hooked", cron="0 3 * * *")
    Schedule.objects.filter(pk=hooked.pk).update(
        payload="p:forged:sig", task_options={"hook": "os.system"}
    )
    response = operator_client.post(
        reverse("admin:dbqueue_schedule_change", args=[hooked.pk]),
        form_data(name="hooked", func="tests.testapp.tasks.hooked", args="[2]"),
    )
    assert response.status_code == 200
    assert "cannot be verified" in str(response.context["adminform"].form.errors)
    assert Schedule.objects.get(pk=hooked.pk).payload == "p:forged:sig"


def test_arguments_that_are_not_json_are_kept_and_not_editable(operator_client):
    when = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    stored = schedule(tasks.echo, when, name="dated", cron="0 3 * * *")
    page = operator_client.get(
        reverse("admin:dbqueue_schedule_change", args=[stored.pk])
    )
    form = page.context["adminform"].form
    assert form.fields["args"].disabled
    payload = Schedule.objects.get(pk=stored.pk).payload
    response = operator_client.post(
        reverse("admin:dbqueue_schedule_change", args=[stored.pk]),
        form_data(name="dated", func="tests.testapp.tasks.echo", cron="0 4 * * *"),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Schedule.objects.get(pk=stored.pk).payload == payload


def test_enable_and_disable_actions(operator_client):
    nightly = schedule(tasks.add, 1, 2, name="nightly", cron="0 3 * * *")
    data = {"_selected_action": [nightly.pk]}
    operator_client.post(reverse(LIST), {**data, "action": "disable_selected"})
    assert not Schedule.objects.get(pk=nightly.pk).enabled
    operator_client.post(reverse(LIST), {**data, "action": "enable_selected"})
    assert Schedule.objects.get(pk=nightly.pk).enabled


def test_a_view_only_user_sees_decoded_arguments_not_the_payload(viewer_client):
    stored = schedule(
        tasks.echo,
        "weekly",
        token="s3cret",  # noqa: S106 - a kwarg the page must mask
        name="report",
        cron="0 3 * * *",
    )
    page = viewer_client.get(reverse("admin:dbqueue_schedule_change", args=[stored.pk]))
    text = page.content.decode()
    assert "weekly" in text
    assert "s3cret" not in text
    assert stored.payload not in text
    assert "********" in text
