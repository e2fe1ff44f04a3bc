"""The task list and detail page: filters, search, retry, cancel, delete, safe display."""

import datetime

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from dbqueue import api
from dbqueue.admin import operations
from dbqueue.models import Status, Task
from tests.admin.conftest import drain
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

LIST = "admin:dbqueue_task_changelist"


def listed(response):
    return {str(task.pk) for task in response.context["cl"].result_list}


def test_the_list_filters_by_status_queue_function_and_enqueue_time(
    operator_client, make_failed
):
    failed = make_failed(queue="reports")
    added = api.async_task(tasks.add, 1, 2)
    mail = api.async_task(tasks.send_email, 7)
    old = Task.objects.get(id=api.async_task(tasks.add, 3, 4))
    old.pk = None  # a task from 40 days ago: its UUIDv7 id carries that time
    Task.objects.filter(func=old.func, status=Status.QUEUED).exclude(id=added).delete()
    url = reverse(LIST)
    assert listed(operator_client.get(url, {"status__exact": "FAILED"})) == {
        str(failed.task_id)
    }
    assert listed(operator_client.get(url, {"queue": "emails"})) == {mail}
    assert listed(operator_client.get(url, {"func": "tests.testapp.tasks.add"})) == {
        added
    }
    assert {added, mail} <= listed(operator_client.get(url, {"enqueued": "1h"}))


def test_the_enqueued_filter_reads_the_time_in_the_uuid7_id(operator_client):
    from dbqueue.admin import filters

    recent = timezone.now()
    floor = filters.uuid7_floor(recent - datetime.timedelta(hours=1))
    task = Task.objects.get(id=api.async_task(tasks.add, 1, 2))
    assert task.id > floor
    assert filters.uuid7_floor(recent + datetime.timedelta(hours=1)) > task.id


def test_search_finds_a_task_by_id_function_or_group(operator_client):
    one = api.async_task(tasks.add, 1, 2, group="import-42")
    other = api.async_task(tasks.send_email, 3)
    dotted = api.async_task(tasks.add, 5, 6, group="v1.import")
    url = reverse(LIST)
    assert listed(operator_client.get(url, {"q": one})) == {one}
    assert listed(operator_client.get(url, {"q": "import-42"})) == {one}
    assert listed(operator_client.get(url, {"q": "v1.import"})) == {dotted}
    assert listed(
        operator_client.get(url, {"q": "tests.testapp.tasks.send_email"})
    ) == {other}
    assert listed(operator_client.get(url, {"q": "no-such-thing"})) == set()


def test_retry_now_copies_a_failed_task_and_the_copy_succeeds(
    operator_client, make_failed, worker
):
    from tests.admin.conftest import unblock

    entry = make_failed("invoice")
    unblock("invoice")
    response = operator_client.post(
        reverse("admin:dbqueue_task_retry", args=[entry.task_id])
    )
    assert response.status_code == 302
    copy = Task.objects.exclude(id=entry.task_id).get(func=entry.func)
    assert (copy.status, copy.attempts, copy.payload) == (
        Status.QUEUED,
        0,
        entry.payload,
    )
    drain(worker)
    copy.refresh_from_db()
    assert (copy.status, copy.result) == (Status.SUCCEEDED, "invoice")
    assert LogEntry.objects.filter(object_id=str(entry.task_id)).exists()


def test_retry_now_makes_a_delayed_task_due_and_refuses_running_ones(
    operator_client,
):
    later = Task.objects.get(id=api.async_task(tasks.add, 1, 2, countdown=3600))
    running = Task.objects.get(id=api.async_task(tasks.add, 3, 4))
    Task.objects.filter(id=running.id).update(status=Status.RUNNING, locked_by="w")
    response = operator_client.post(
        reverse(LIST),
        {"action": "retry_selected", "_selected_action": [later.pk, running.pk]},
        follow=True,
    )
    later.refresh_from_db()
    assert later.run_after <= timezone.now()
    assert Task.objects.count() == 2
    text = response.content.decode()
    assert "1 made due now" in text
    assert "it is RUNNING" in text


def test_retry_of_a_task_whose_function_is_gone_is_refused():
    task = Task.objects.get(id=api.async_task(tasks.add, 1, 2))
    Task.objects.filter(id=task.id).update(
        status=Status.FAILED, func="tests.testapp.tasks.gone"
    )
    report = operations.retry_now(Task.objects.filter(id=task.id))
    assert "not a registered task" in report.refused[task.id]
    assert Task.objects.count() == 1


def test_cancel_withdraws_queued_tasks_only(operator_client):
    queued = api.async_task(tasks.add, 1, 2)
    running = api.async_task(tasks.add, 3, 4)
    Task.objects.filter(id=running).update(status=Status.RUNNING, locked_by="w")
    operator_client.post(
        reverse(LIST),
        {"action": "cancel_selected", "_selected_action": [queued, running]},
    )
    assert Task.objects.get(id=queued).status == Status.CANCELLED
    assert "in the admin" in Task.objects.get(id=queued).error
    assert Task.objects.get(id=running).status == Status.RUNNING


def test_delete_asks_how_many_then_deletes_in_batches(operator_client):
    ids = [api.async_task(tasks.add, n, n) for n in range(5)]
    first = operator_client.post(
        reverse(LIST),
        {
            "action": "delete_selected",
            "select_across": "1",
            "_selected_action": ids[:1],
        },
    )
    assert first.status_code == 200
    assert first.context["count"] == 5
    assert Task.objects.count() == 5
    operator_client.post(
        reverse(LIST),
        {
            "action": "delete_selected",
            "select_across": "1",
            "_selected_action": ids[:1],
            "post": "yes",
        },
    )
    assert Task.objects.count() == 0
    assert LogEntry.objects.filter(action_flag=DELETION).count() == 5
    assert operations.delete_in_batches(Task.objects.all(), user_id=1, batch=2) == 0


def test_the_detail_page_shows_arguments_truncated_result_and_traceback(
    operator_client, make_failed, worker
):
    long_text = "x" * 5000
    done = api.async_task(tasks.echo, long_text, flag=True)
    drain(worker)
    page = operator_client.get(reverse("admin:dbqueue_task_change", args=[done]))
    text = page.content.decode()
    assert "x" * 100 in text
    assert "x" * 400 not in text
    assert "flag" in text
    entry = make_failed("broken")
    page = operator_client.get(
        reverse("admin:dbqueue_task_change", args=[entry.task_id])
    )
    text = page.content.decode()
    assert "ValueError" in text
    assert "Traceback" in text
    assert "broken is blocked" in text
    assert "see the failed-task entry" in text


def test_a_payload_that_does_not_verify_shows_a_message_not_an_error(
    operator_client,
):
    task_id = api.async_task(tasks.add, 1, 2)
    pk = Task._meta.pk.get_db_prep_value(Task.objects.get(id=task_id).id, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE dbqueue_task SET payload = %s WHERE id = %s", ["p:garbage:sig", pk]
        )
    page = operator_client.get(reverse("admin:dbqueue_task_change", args=[task_id]))
    assert page.status_code == 200
    assert (
        "The arguments cannot be shown: PayloadSignatureError" in page.content.decode()
    )
