"""The Prometheus metrics, scraped through the view and parsed by prometheus_client's parser."""

from __future__ import annotations

import datetime
import urllib.error
import urllib.request

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from dbqueue import async_task, counters, metrics, models
from dbqueue.cluster import heartbeat, metrics_port
from dbqueue.cluster.worker import EXIT_RECYCLE, Worker
from dbqueue.models import FailedTask, QueueState, Status, Task
from tests.monitoring.conftest import drain, parse, value
from tests.testapp import monitoring_tasks, tasks

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-for-tests"  # noqa: S105
ADD = "tests.testapp.tasks.add"
FAIL = "tests.testapp.tasks.fail"


def scrape(client):
    response = client.get(
        reverse("dbqueue:metrics"), HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


@pytest.fixture(autouse=True)
def _token():
    with override_settings(DBQUEUE_METRICS_TOKEN=TOKEN):
        yield


@pytest.fixture(autouse=True)
def _no_counts_from_earlier_tests():
    # Counts a worker of another test kept in memory would be written into
    # this test's database at its first flush.
    counters._pending.clear()


def test_outcomes_retries_dead_letters_and_durations_are_counted(client, worker):
    for n in range(3):
        async_task(tasks.add, n, 1)
    async_task(tasks.fail, "no", max_attempts=2)
    async_task(monitoring_tasks.lookup, "k")
    drain(worker)
    samples = scrape(client)
    runs = "dbqueue_task_runs_total"
    assert value(samples, runs, queue="default", func=ADD, outcome="succeeded") == 3
    assert value(samples, runs, queue="default", func=ADD, outcome="failed") == 0
    assert value(samples, runs, queue="default", func=FAIL, outcome="failed") == 2
    assert value(samples, "dbqueue_task_retries_total", queue="default", func=FAIL) == 1
    assert (
        value(samples, "dbqueue_task_dead_letters_total", queue="default", func=FAIL)
        == 1
    )
    lookup = "tests.testapp.monitoring_tasks.lookup"
    assert (
        value(samples, "dbqueue_task_discarded_total", queue="default", func=lookup)
        == 1
    )
    assert (
        value(samples, "dbqueue_task_dead_letters_total", queue="default", func=lookup)
        == 0
    )
    # The histogram holds every run of add: 3 in +Inf, cumulative, with a sum.
    count = value(
        samples, "dbqueue_task_duration_seconds_count", queue="default", func=ADD
    )
    inf = value(
        samples,
        "dbqueue_task_duration_seconds_bucket",
        queue="default",
        func=ADD,
        le="+Inf",
    )
    assert count == inf == 3
    buckets = [
        value(
            samples,
            "dbqueue_task_duration_seconds_bucket",
            queue="default",
            func=ADD,
            le=f"{bound:g}",
        )
        for bound in counters.DURATION_BUCKETS
    ]
    assert buckets == sorted(buckets)
    assert buckets[-1] <= 3
    assert (
        value(samples, "dbqueue_task_duration_seconds_sum", queue="default", func=ADD)
        >= 0
    )
    assert value(samples, "dbqueue_dead_letter_entries", queue="default") == 1
    assert value(samples, "dbqueue_queue_depth", queue="default") == 0


def test_counters_only_grow_when_finished_rows_are_pruned(client, worker):
    async_task(tasks.add, 1, 1)
    async_task(tasks.add, 1, 2, save=False)  # its row is deleted as it succeeds
    drain(worker)
    before = scrape(client)
    Task.objects.all().delete()
    FailedTask.objects.all().delete()
    after = scrape(client)
    key = {"queue": "default", "func": ADD, "outcome": "succeeded"}
    assert value(before, "dbqueue_task_runs_total", **key) == 2
    assert value(after, "dbqueue_task_runs_total", **key) == 2


def test_a_worker_writes_its_counts_every_few_seconds_when_idle_and_when_it_stops():
    def succeeded():
        return sum(total.count(counters.Event.SUCCEEDED) for total in counters.totals())

    now = [0.0]
    worker = Worker(
        worker_id="counting", queues=["*"], batch_size=1, clock=lambda: now[0]
    )
    for n in range(3):
        async_task(tasks.add, n, 1)
    assert len(worker.run_once()) == 1
    assert succeeded() == 0  # counted in the worker's memory only
    now[0] += counters.FLUSH_INTERVAL
    assert len(worker.run_once()) == 1
    assert succeeded() == 1  # written before the next claim, once the interval passed
    assert len(worker.run_once()) == 1
    assert worker.run_once() == []
    assert succeeded() == 3  # nothing to claim: written at once
    recycling = Worker(worker_id="recycling", queues=["*"], max_tasks=1)
    async_task(tasks.add, 9, 1)
    assert recycling.run() == EXIT_RECYCLE
    assert succeeded() == 4  # written as it stopped


def test_queue_gauges_read_the_live_rows(client):
    now = timezone.now()
    for _ in range(4):
        async_task(tasks.add, 1, 1)
    async_task(tasks.add, 1, 1, countdown=3600)
    async_task(monitoring_tasks.report, 1)
    Task.objects.filter(
        queue="default", run_after__lte=now + datetime.timedelta(seconds=5)
    ).update(run_after=now - datetime.timedelta(seconds=120))
    running = Task.objects.get(queue="reports")
    Task.objects.filter(pk=running.pk).update(
        status=Status.RUNNING, locked_by="w", attempts=1
    )
    QueueState.objects.create(name="reports", paused=True)
    models.Worker.objects.create(
        id="host:1:worker:abc",
        cluster_id="c",
        role=models.Role.WORKER,
        host="host",
        pid=1,
    )
    models.Worker.objects.create(
        id="host:2:worker:old",
        cluster_id="c",
        role=models.Role.WORKER,
        host="host",
        pid=2,
        last_seen=now - datetime.timedelta(hours=1),
    )
    samples = scrape(client)
    assert value(samples, "dbqueue_queue_depth", queue="default") == 4
    assert value(samples, "dbqueue_queue_scheduled", queue="default") == 1
    assert (
        120 <= value(samples, "dbqueue_queue_oldest_age_seconds", queue="default") < 600
    )
    assert value(samples, "dbqueue_queue_oldest_age_seconds", queue="reports") == 0
    assert value(samples, "dbqueue_tasks_running", queue="reports") == 1
    assert value(samples, "dbqueue_queue_paused", queue="reports") == 1
    assert value(samples, "dbqueue_queue_paused", queue="default") == 0
    assert (
        value(samples, "dbqueue_workers", role="worker") == 1
    )  # the stale one is not live
    assert value(samples, "dbqueue_workers", role="supervisor") == 0
    assert ("dbqueue_metrics_collect_seconds", ()) in samples


def test_rescued_orphans_are_counted_with_what_followed(client):
    task_id = async_task(tasks.add, 1, 1, max_attempts=1)
    again_id = async_task(tasks.add, 2, 2, max_attempts=2)
    gone = timezone.now() - datetime.timedelta(minutes=5)
    Task.objects.filter(pk__in=[task_id, again_id]).update(
        status=Status.RUNNING,
        locked_by="lost:1:worker:x",
        locked_until=gone,
        attempts=1,
    )
    assert heartbeat.rescue_expired() == 2
    samples = scrape(client)
    assert (
        value(samples, "dbqueue_orphans_rescued_total", queue="default", func=ADD) == 2
    )
    assert value(samples, "dbqueue_task_retries_total", queue="default", func=ADD) == 1
    assert (
        value(samples, "dbqueue_task_dead_letters_total", queue="default", func=ADD)
        == 1
    )


def test_an_outcome_stored_too_late_is_not_counted(client, worker):
    async_task(tasks.add, 1, 1)
    [task] = models.Task.objects.all()
    from dbqueue import claiming
    from dbqueue.cluster import executor

    [claimed] = claiming.claim("w1", None, 1)
    outcome = executor.execute(claimed)
    Task.objects.filter(pk=task.pk).update(locked_by="someone-else")
    assert executor.record(outcome, "w1") is False
    samples = scrape(client)
    assert (
        value(
            samples,
            "dbqueue_task_runs_total",
            queue="default",
            func=ADD,
            outcome="succeeded",
        )
        == 0
    )


def test_expired_tasks_are_counted(client, worker):
    task_id = async_task(tasks.add, 1, 1, expires=60)
    Task.objects.filter(pk=task_id).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    drain(worker)
    samples = scrape(client)
    assert value(samples, "dbqueue_task_expired_total", queue="default", func=ADD) == 1
    assert (
        value(
            samples,
            "dbqueue_task_runs_total",
            queue="default",
            func=ADD,
            outcome="succeeded",
        )
        == 0
    )


def test_the_view_needs_the_token_or_a_staff_user(
    client, admin_client, django_user_model
):
    url = reverse("dbqueue:metrics")
    assert url == "/dbqueue/metrics"
    anonymous = client.get(url)
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert client.get(url, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get(url, HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert admin_client.get(url).status_code == 200
    user = django_user_model.objects.create_user("plain", password="x-long-password-1")  # noqa: S106
    client.force_login(user)
    assert client.get(url).status_code == 401
    assert client.post(url, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405
    with override_settings(DBQUEUE_METRICS_TOKEN=None):
        assert client.get(url).status_code == 403
        assert client.get(url, HTTP_AUTHORIZATION="Bearer ").status_code == 403
        assert admin_client.get(url).status_code == 200


@pytest.mark.django_db(databases=["default", "queue"])  # checks read both on Django 6
def test_without_prometheus_client_metrics_fail_clearly_and_tasks_still_run(
    monkeypatch, worker
):
    monkeypatch.setitem(__import__("sys").modules, "prometheus_client", None)
    with pytest.raises(
        ImproperlyConfigured, match=r"pip install 'dbqueue\[prometheus\]'"
    ):
        metrics.render()
    task_id = async_task(tasks.add, 2, 2)
    drain(worker)
    assert Task.objects.get(pk=task_id).status == Status.SUCCEEDED
    assert counters.totals()[0].count(counters.Event.SUCCEEDED) == 1
    with override_settings(
        DBQUEUE_METRICS_PORT=9100, DBQUEUE_METRICS_ADDRESS="127.0.0.1"
    ):
        found = [m for m in checks.run_checks() if m.id.startswith("dbqueue.")]
    assert [m.id for m in found] == ["dbqueue.E007"], found


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("METRICS_TOKEN", ""),
        ("METRICS_PORT", "9100"),
        ("METRICS_PORT", 70000),
        ("LOG_ARGUMENTS", "yes"),
    ],
)
@pytest.mark.django_db(databases=["default", "queue"])  # checks read both on Django 6
def test_bad_monitoring_settings_are_system_check_errors(name, bad):
    with override_settings(**{f"DBQUEUE_{name}": bad}):
        found = [m for m in checks.run_checks() if m.id.startswith("dbqueue.")]
    assert [m.id for m in found] == ["dbqueue.E002"]
    assert f"DBQUEUE_{name}" in found[0].msg


@pytest.mark.django_db(databases=["default", "queue"])  # checks read both on Django 6
def test_an_open_port_without_a_token_is_warned_about():
    with override_settings(
        DBQUEUE_METRICS_PORT=9100,
        DBQUEUE_METRICS_ADDRESS="0.0.0.0",  # noqa: S104 - a setting under test
        DBQUEUE_METRICS_TOKEN=None,
    ):
        found = [m for m in checks.run_checks() if m.id.startswith("dbqueue.")]
    assert [m.id for m in found] == ["dbqueue.W006"]


@pytest.mark.django_db(transaction=True)
def test_the_metrics_port_serves_the_same_numbers(worker):
    async_task(tasks.add, 1, 1)
    drain(worker)
    with override_settings(DBQUEUE_METRICS_PORT=0):
        port = metrics_port.start()
    assert port is not None
    try:
        url = f"http://127.0.0.1:{port.port}/metrics"
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(url, timeout=10)
        denied.value.close()
        assert denied.value.code == 401
        request = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            samples = parse(response.read().decode())
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port.port}/other", timeout=10)
        missing.value.close()
        assert missing.value.code == 404
    finally:
        port.stop()
    assert (
        value(
            samples,
            "dbqueue_task_runs_total",
            queue="default",
            func=ADD,
            outcome="succeeded",
        )
        == 1
    )


def test_a_depth_past_the_count_limit_is_flagged_as_capped(client, settings):
    settings.DBQUEUE_DEPTH_COUNT_LIMIT = 2
    for _ in range(3):
        async_task(tasks.add, 1, 1)
    async_task(tasks.add, 1, 1, countdown=3600)
    async_task(monitoring_tasks.report, 1)
    samples = scrape(client)
    assert value(samples, "dbqueue_queue_depth", queue="default") == 2
    assert value(samples, "dbqueue_queue_depth_capped", queue="default") == 1
    assert value(samples, "dbqueue_queue_scheduled", queue="default") == 1
    assert value(samples, "dbqueue_queue_scheduled_capped", queue="default") == 0
    assert value(samples, "dbqueue_queue_depth", queue="reports") == 1
    assert value(samples, "dbqueue_queue_depth_capped", queue="reports") == 0
    assert ("dbqueue_queue_depth_capped", (("queue", "reports"),)) in samples
