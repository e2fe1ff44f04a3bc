"""The dashboard, pausing queues (claiming stops, on every vendor), and the worker registry."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dbqueue import api, claiming, stats
from dbqueue.cluster import heartbeat
from dbqueue.models import QueueState, Role, Status, Task, Worker
from tests.admin.conftest import drain
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

DASHBOARD = "admin:dbqueue_queuestate_changelist"
PANEL = "admin:dbqueue_queuestate_panel"
PAUSE = "admin:dbqueue_queuestate_pause"


def register_worker(worker_id="host:1:worker:abc", last_seen=None, **fields):
    heartbeat.register(
        "cluster-1",
        heartbeat.Member(id=worker_id, role=Role.WORKER, pid=1, queues=["default"]),
    )
    if last_seen is not None or fields:
        Worker.objects.filter(id=worker_id).update(
            **({"last_seen": last_seen} if last_seen else {}), **fields
        )


def test_the_dashboard_shows_depth_lag_throughput_and_workers(
    operator_client, worker, make_failed
):
    api.async_task(tasks.add, 1, 2)
    drain(worker)
    make_failed("x", queue="reports")
    api.async_task(tasks.add, 3, 4, queue="reports")
    api.async_task(tasks.add, 5, 6, queue="reports", countdown=600)
    register_worker()
    page = operator_client.get(reverse(DASHBOARD))
    assert page.status_code == 200
    snapshot = page.context["snapshot"]
    queues = {queue.name: queue for queue in snapshot.queues}
    assert (queues["default"].succeeded, queues["default"].due) == (1, 0)
    reports = queues["reports"]
    assert (reports.due, reports.waiting, reports.failed, reports.dead_letters) == (
        1,
        1,
        1,
        1,
    )
    assert reports.lag is not None
    assert reports.failure_percent == "100.0%"
    assert (snapshot.succeeded, snapshot.failed) == (1, 1)
    assert sum(bar.succeeded_height > 0 for bar in page.context["chart"]["bars"]) == 1
    text = page.content.decode()
    assert "host:1:worker:abc" in text
    assert 'id="dbqueue-throughput"' in text
    assert "dbqueue/admin/dashboard.js" in text


def test_the_panel_is_the_refreshable_part_of_the_page(operator_client):
    response = operator_client.get(reverse(PANEL))
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b'id="dbqueue-queues"' in response.content


def test_the_dashboard_costs_a_fixed_number_of_queries(operator_client, worker):
    def count():
        operator_client.get(reverse(PANEL))  # warm the session and user caches
        with CaptureQueriesContext(connection) as queries:
            assert operator_client.get(reverse(PANEL)).status_code == 200
        return len(queries)

    small = count()
    for n in range(6):
        for _ in range(3):
            api.async_task(tasks.add, n, n, queue=f"q{n}")
        QueueState.set_paused(f"q{n}", n % 2 == 0)
        register_worker(f"host:{n}:worker:abc")
    drain(worker)
    for n in range(6):
        api.async_task(tasks.add, n, n, queue=f"q{n}")
    large = count()
    assert small == large, (small, large)
    # Session and user, then the snapshot's seven reads (see dbqueue.stats);
    # a backlog past DBQUEUE_DEPTH_COUNT_LIMIT adds a few per queue.
    assert large <= 9, large


def test_a_paused_queue_is_not_claimed_until_resumed(operator_client, worker):
    emails = api.async_task(tasks.send_email, 1)
    default = api.async_task(tasks.add, 1, 2)
    response = operator_client.post(reverse(PAUSE), {"queue": "emails", "paused": "1"})
    assert response.status_code == 302
    assert QueueState.objects.get(name="emails").paused
    drain(worker)
    assert Task.objects.get(id=default).status == Status.SUCCEEDED
    assert Task.objects.get(id=emails).status == Status.QUEUED
    only_emails = claiming.claim("w2", ["emails"], 10)
    assert only_emails == []
    operator_client.post(reverse(PAUSE), {"queue": "emails", "paused": "0"})
    drain(worker)
    assert Task.objects.get(id=emails).status == Status.SUCCEEDED


def test_pausing_every_queue_a_worker_serves_claims_nothing():
    api.async_task(tasks.add, 1, 2)
    QueueState.set_paused("default", True)
    assert claiming.claim("w", ["default"], 10) == []
    assert claiming.claim("w", None, 10) == []
    assert Task.objects.get().status == Status.QUEUED


def test_other_processes_see_a_pause_within_the_cache_time():
    now = [100.0]
    clock = lambda: now[0]  # noqa: E731
    assert claiming.paused_queues(clock=clock) == frozenset()
    # Written by another process: this one's cache does not know yet.
    QueueState.objects.create(name="default", paused=True)
    assert claiming.paused_queues(clock=clock) == frozenset()
    now[0] += claiming.PAUSED_CACHE_TTL
    assert claiming.paused_queues(clock=clock) == {"default"}


def test_the_worker_list_marks_stale_processes(operator_client):
    register_worker("host:1:worker:live")
    register_worker(
        "host:2:worker:gone",
        last_seen=timezone.now() - datetime.timedelta(hours=1),
    )
    text = operator_client.get(
        reverse("admin:dbqueue_worker_changelist")
    ).content.decode()
    assert "host:1:worker:live" in text
    assert text.count("stale:") == 1
    workers = {item.worker.id: item.is_stale for item in stats.workers(timezone.now())}
    assert workers == {"host:1:worker:live": False, "host:2:worker:gone": True}


def test_a_bad_queue_name_is_refused(operator_client):
    response = operator_client.post(
        reverse(PAUSE), {"queue": "", "paused": "1"}, follow=True
    )
    assert "1 to 64 characters" in response.content.decode()
    assert not QueueState.objects.exists()


def test_the_dashboard_marks_a_depth_past_the_count_limit(operator_client, settings):
    settings.DBQUEUE_DEPTH_COUNT_LIMIT = 2
    for _ in range(3):
        api.async_task(tasks.add, 1, 2, queue="reports")
    api.async_task(tasks.add, 1, 2, queue="emails")
    page = operator_client.get(reverse(PANEL))
    text = page.content.decode()
    reports = text[text.index('data-queue="reports"') :]
    reports = reports[: reports.index("</tr>")]
    assert "≥2</span>" in reports
    assert "DBQUEUE_DEPTH_COUNT_LIMIT" in reports
    emails = text[text.index('data-queue="emails"') :]
    assert "≥" not in emails[: emails.index("</tr>")]
