"""The console in a real browser: Playwright driving Debian's Chromium against a live server.

Run on SQLite only: the flows are the same on every database, and the
database-specific parts (claiming with paused queues, counts, replays) are
covered on all three vendors by the test-client tests beside this file.
A missing browser skips these tests, or fails them when
DBQUEUE_TEST_REQUIRE_BROWSER=1 (as CI sets it). Screenshots go to
tests/.artifacts/.

Playwright's sync API keeps an asyncio loop registered on the test thread
while it is open, which Django takes for async code and would refuse ORM
calls in: DJANGO_ALLOW_ASYNC_UNSAFE is set for this module only. The live
server is Django's LiveServerThread with the staticfiles handler, so the
admin's CSS and dbqueue's scripts are served without the project installing
django.contrib.staticfiles.
"""

import os
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.test.testcases import LiveServerThread
from django.test.utils import override_settings

from dbqueue.admin import dashboard
from dbqueue.models import FailedTask, QueueState, Status, Task
from tests.admin.conftest import PASSWORD, drain, make_user, unblock

pytestmark = [pytest.mark.vendor("sqlite"), pytest.mark.django_db(transaction=True)]

CHROMIUM = Path(os.environ.get("DBQUEUE_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parent.parent / ".artifacts"
TIMEOUT = 10_000  # milliseconds Playwright waits for a page or an element


def _unavailable(reason):
    if os.environ.get("DBQUEUE_TEST_REQUIRE_BROWSER") == "1":
        pytest.fail(
            f"{reason} (DBQUEUE_TEST_REQUIRE_BROWSER=1 requires the browser tests)"
        )
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM}; apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright)")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    manager = sync_playwright().start()
    try:
        chromium = manager.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()
    finally:
        manager.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def server():
    with override_settings(
        STATIC_URL="/static/", ALLOWED_HOSTS=["localhost", "127.0.0.1"]
    ):
        thread = LiveServerThread("localhost", StaticFilesHandler, port=0)
        thread.daemon = True
        thread.start()
        thread.is_ready.wait()
        if thread.error:
            raise thread.error
        try:
            yield f"http://localhost:{thread.port}"
        finally:
            thread.terminate()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(
        base_url=server, viewport={"width": 1400, "height": 900}
    )
    context.set_default_timeout(TIMEOUT)
    tab = context.new_page()
    yield tab
    context.close()


def log_in(page, username, next_url="/admin/"):
    page.goto(f"/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(re.escape(next_url) + r"$"))


def screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_an_operator_finds_failed_tasks_by_filter_replays_all_and_sees_them_succeed(
    page, make_failed, worker
):
    make_user(
        "operator",
        "view_task",
        "view_failedtask",
        "replay_failedtask",
        "view_queuestate",
        "view_worker",
    )
    for n in range(3):
        make_failed(f"report-{n}", queue="reports")
        unblock(f"report-{n}")
    other = make_failed("mail", queue="emails")

    log_in(page, "operator", "/admin/dbqueue/failedtask/")
    page.locator("#changelist-filter a", has_text=re.compile(r"^reports$")).click()
    page.wait_for_url(re.compile(r"queue=reports"))
    assert page.locator("#result_list tbody tr").count() == 3
    screenshot(page, "failed-tasks")
    page.click("a.dbqueue-replay-matching")
    assert page.inner_text("#dbqueue-confirm-count") == "3"
    page.click("input[type=submit][value='Yes, replay them all']")
    page.wait_for_url(re.compile(r"/admin/dbqueue/failedtask/\?queue=reports$"))
    assert "Replayed 3, skipped 0" in page.inner_text("ul.messagelist")

    drain(worker)
    assert FailedTask.objects.get(pk=other.pk).replay_count == 0
    replayed = Task.objects.filter(
        id__in=FailedTask.objects.filter(queue="reports").values("replayed_as")
    )
    assert sorted(replayed.values_list("status", flat=True)) == [Status.SUCCEEDED] * 3

    page.goto("/admin/dbqueue/task/?status__exact=SUCCEEDED&queue=reports")
    assert page.locator("#result_list tbody tr").count() == 3
    entry = FailedTask.objects.filter(queue="reports").first()
    page.goto(f"/admin/dbqueue/failedtask/{entry.pk}/change/")
    assert "queued as" in page.inner_text(".dbqueue-replays")
    screenshot(page, "failed-task-detail")


def test_an_operator_pauses_a_queue_and_claiming_stops(page, worker, monkeypatch):
    from dbqueue import api
    from tests.testapp import tasks

    monkeypatch.setattr(dashboard, "REFRESH", 1)
    make_user("operator", "view_queuestate", "pause_queue", "view_task")
    first = api.async_task(tasks.send_email, 1)
    log_in(page, "operator", "/admin/dbqueue/queuestate/")
    page.click("input[name=_pause_emails]")
    page.wait_for_selector("tr[data-queue=emails].dbqueue-paused")
    assert QueueState.objects.get(name="emails").paused
    drain(worker)
    assert Task.objects.get(id=first).status == Status.QUEUED

    # The panel refreshes by itself: a new task shows up without a reload.
    api.async_task(tasks.send_email, 2)
    page.wait_for_function(
        "document.querySelector('tr[data-queue=emails] td').textContent.trim() === '2'"
    )

    page.click("input[name=_resume_emails]")
    page.wait_for_selector("tr[data-queue=emails]:not(.dbqueue-paused)")
    drain(worker)
    assert set(Task.objects.values_list("status", flat=True)) == {Status.SUCCEEDED}
    page.wait_for_function(
        "document.querySelectorAll('#dbqueue-throughput rect.dbqueue-ok').length > 0"
    )
    screenshot(page, "dashboard")


def test_a_view_only_user_is_offered_no_action_and_denied_each_one(page, make_failed):
    entry = make_failed("x")
    make_user(
        "viewer", "view_task", "view_failedtask", "view_schedule", "view_queuestate"
    )
    log_in(page, "viewer", "/admin/dbqueue/failedtask/")
    assert page.locator("select[name=action]").count() == 0
    assert page.locator("a.dbqueue-replay-matching").count() == 0
    page.goto(f"/admin/dbqueue/failedtask/{entry.pk}/change/")
    assert page.locator("input[value=Replay]").count() == 0
    page.goto("/admin/dbqueue/queuestate/")
    assert page.locator("input[name^=_pause_]").count() == 0

    crafted = """async ([url, body]) => {
        const token = document.cookie.match(/csrftoken=([^;]+)/)?.[1]
            || document.querySelector('[name=csrfmiddlewaretoken]')?.value || '';
        const form = new URLSearchParams({csrfmiddlewaretoken: token, ...body});
        const response = await fetch(url, {method: 'POST', body: form,
            headers: {'X-CSRFToken': token}, credentials: 'same-origin'});
        return response.status;
    }"""
    for url, body in (
        (
            "/admin/dbqueue/failedtask/",
            {
                "action": "replay_selected",
                "_selected_action": str(entry.pk),
                "post": "yes",
            },
        ),
        (f"/admin/dbqueue/failedtask/{entry.pk}/replay/", {}),
        ("/admin/dbqueue/failedtask/replay-matching/", {}),
        (f"/admin/dbqueue/task/{entry.task_id}/retry/", {}),
        ("/admin/dbqueue/queuestate/pause/", {"queue": "default", "paused": "1"}),
    ):
        assert page.evaluate(crafted, [url, body]) == 403, url
    assert FailedTask.objects.get(pk=entry.pk).replay_count == 0
    assert Task.objects.count() == 1
    assert not QueueState.objects.exists()


def test_the_schedule_form_previews_the_next_runs_as_the_cron_is_typed(page):
    from django.contrib.auth.models import User

    User.objects.create_superuser("root", password=PASSWORD)
    log_in(page, "root", "/admin/dbqueue/schedule/add/")
    options = page.locator("#id_func option").all_inner_texts()
    assert "tests.testapp.tasks.add" in options
    assert not any("os.system" in option for option in options)
    page.select_option("#id_schedule_type", "CRON")
    page.fill("#id_cron", "*/5 * * * *")
    page.wait_for_function(
        "document.querySelectorAll('#dbqueue-preview li').length === 5"
    )
    page.fill("#id_cron", "0 25 * * *")
    page.wait_for_selector("#dbqueue-preview .errornote")
    assert "hour" in page.inner_text("#dbqueue-preview")
