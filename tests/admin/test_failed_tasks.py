"""H-02: the dead-letter queue in the admin: replay one, the selected, all matching, with history."""

import uuid

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse
from django.utils import timezone

from dbqueue import api, serialization
from dbqueue.models import FailedTask, Status, Task
from tests.admin.conftest import drain, make_user, unblock
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

LIST = "admin:dbqueue_failedtask_changelist"
MATCHING = "admin:dbqueue_failedtask_replay_matching"


def entries(count, *, func=tasks.add, queue="default"):
    """Dead-letter entries as mark_failed() writes them, made in one INSERT."""
    now = timezone.now()
    rows = []
    for n in range(count):
        task = api.build_task(func, (n, n), queue=queue)
        rows.append(
            FailedTask(
                task_id=uuid.uuid4(),
                name=task.name,
                func=task.func,
                payload=task.payload,
                queue=task.queue,
                enqueued_at=now,
                attempts=1,
                error="ValueError: x",
                exception_class="builtins.ValueError",
            )
        )
    return FailedTask.objects.bulk_create(rows)


def test_replay_all_matching_a_filter_asks_how_many_then_replays_only_those(
    operator_client, make_failed, worker
):
    reports = [make_failed(f"report-{n}", queue="reports") for n in range(3)]
    other = make_failed("mail", queue="emails")
    query = {"queue": "reports"}
    page = operator_client.get(reverse(MATCHING), query)
    assert page.status_code == 200
    assert page.context["count"] == 3
    assert FailedTask.objects.filter(replay_count__gt=0).count() == 0
    for n in range(3):
        unblock(f"report-{n}")
    response = operator_client.post(reverse(MATCHING) + "?queue=reports")
    assert response.status_code == 302
    assert response["Location"].endswith("?queue=reports")
    replayed = FailedTask.objects.filter(replay_count=1)
    assert set(replayed.values_list("id", flat=True)) == {e.id for e in reports}
    assert FailedTask.objects.get(id=other.id).replay_count == 0
    drain(worker)
    new = Task.objects.filter(id__in=replayed.values_list("replayed_as", flat=True))
    assert sorted(new.values_list("status", flat=True)) == [Status.SUCCEEDED] * 3


def test_the_list_links_to_replay_all_matching_with_its_filters(operator_client):
    entries(2, queue="reports")
    page = operator_client.get(reverse(LIST), {"queue": "reports", "p": "1"})
    assert page.context["replay_matching_url"] == reverse(MATCHING) + "?queue=reports"
    assert b"Replay all matching" in page.content


def test_replay_selected_confirms_the_count_then_logs_each_replay(operator_client):
    rows = entries(3)
    selected = [rows[0].pk, rows[1].pk]
    data = {"action": "replay_selected", "_selected_action": selected}
    confirm = operator_client.post(reverse(LIST), data)
    assert confirm.context["count"] == 2
    assert Task.objects.count() == 0
    operator_client.post(reverse(LIST), {**data, "post": "yes"})
    assert Task.objects.count() == 2
    logged = LogEntry.objects.filter(action_flag=CHANGE)
    assert sorted(logged.values_list("object_id", flat=True)) == sorted(
        map(str, selected)
    )
    assert all(
        m.startswith("Replayed as task")
        for m in logged.values_list("change_message", flat=True)
    )
    for pk in selected:
        entry = FailedTask.objects.get(pk=pk)
        assert entry.replay_log[-1]["by"] == "admin"


def test_replaying_one_entry_twice_is_refused_unless_asked_again(operator_client):
    [entry] = entries(1)
    url = reverse("admin:dbqueue_failedtask_replay", args=[entry.pk])
    operator_client.post(url)
    second = operator_client.post(url, follow=True)
    assert "already replayed" in second.content.decode()
    assert Task.objects.count() == 1
    operator_client.post(url, {"again": "1"})
    assert Task.objects.count() == 2
    assert FailedTask.objects.get(pk=entry.pk).replay_count == 2


def test_a_thousand_entries_replay_in_short_batches(operator_client):
    entries(1000)
    response = operator_client.post(
        reverse(LIST),
        {
            "action": "replay_selected",
            "select_across": "1",
            "_selected_action": [FailedTask.objects.first().pk],
            "post": "yes",
        },
        follow=True,
    )
    assert "Replayed 1000, skipped 0" in response.content.decode()
    assert Task.objects.count() == 1000
    assert not FailedTask.objects.filter(replay_count=0).exists()
    assert LogEntry.objects.filter(action_flag=CHANGE).count() == 1000


def test_the_detail_page_shows_the_failure_and_the_replay_history(
    operator_client, make_failed
):
    entry = make_failed("history")
    operator_client.post(reverse("admin:dbqueue_failedtask_replay", args=[entry.pk]))
    entry.refresh_from_db()
    page = operator_client.get(
        reverse("admin:dbqueue_failedtask_change", args=[entry.pk])
    ).content.decode()
    assert "history is blocked" in page
    assert "Traceback" in page
    assert "queued as <a href" in page
    assert str(entry.replayed_as) in page
    assert "by <strong>admin</strong>" in page


def test_an_entry_whose_function_is_gone_is_shown_and_not_replayed(operator_client):
    [entry] = entries(1)
    path = "tests.testapp.tasks.gone"
    FailedTask.objects.filter(pk=entry.pk).update(
        func=path, payload=serialization.dumps_payload(path, (), {})
    )
    page = operator_client.get(
        reverse("admin:dbqueue_failedtask_change", args=[entry.pk])
    ).content.decode()
    assert "is not a registered task" in page
    response = operator_client.post(
        reverse("admin:dbqueue_failedtask_replay", args=[entry.pk]), follow=True
    )
    assert "Not replayed" in response.content.decode()
    assert Task.objects.count() == 0


def test_filters_and_search_of_the_dead_letter_list(operator_client, make_failed):
    first = make_failed("a", queue="reports")
    entries(2, func=tasks.send_email, queue="emails")
    url = reverse(LIST)

    def listed(**query):
        return {e.pk for e in operator_client.get(url, query).context["cl"].result_list}

    assert listed(queue="reports") == {first.pk}
    assert len(listed(func="tests.testapp.tasks.send_email")) == 2
    assert listed(q=str(first.task_id)) == {first.pk}
    assert listed(q=str(first.pk)) == {first.pk}
    assert len(listed(exception="builtins.ValueError")) == 3
    assert len(listed(replayed="no")) == 3


def test_a_replayer_without_delete_permission_cannot_delete(client):
    [entry] = entries(1)
    client.force_login(make_user("replayer", "view_failedtask", "replay_failedtask"))
    response = client.post(
        reverse(LIST),
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    assert response.status_code == 403
    assert FailedTask.objects.filter(pk=entry.pk).exists()
