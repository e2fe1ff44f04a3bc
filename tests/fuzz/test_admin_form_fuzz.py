"""Fuzzing the admin console's inputs: the schedule form, list filters, replay-all, pause.

Everything is posted (or requested) through Django's test client as a
superuser, so what is tested is what a browser can send. The properties:

- the schedule form, add or change, answers a post with a saved row that
  reads back and computes its next runs, or with the form and its errors
  (HTTP 200) and the database unchanged; never a 500;
- a list page answers any filter, search, ordering or page with the list,
  Django's invalid-filter redirect, or a 400; never a 500;
- replay-all-matching replays exactly what its confirmation page counted,
  and refuses filters it cannot apply without replaying anything;
- pause and resume change only the posted queue, or say why not.

Text is what HTTP can carry: lone surrogates become "?" before sending.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest
from django.db.models import Sum
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from dbqueue import api, scheduling
from dbqueue.cluster.worker import Worker
from dbqueue.models import FailedTask, QueueState, Schedule, ScheduleType
from dbqueue.schedules import schedule
from tests.fuzz import ANY_TEXT, example, row_counts
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

ADD = "admin:dbqueue_schedule_add"
REGISTERED = ["tests.testapp.tasks.add", "tests.testapp.tasks.echo"]


def _http(text: str) -> str:
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


TEXT = ANY_TEXT.map(_http)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3)
    ),
    max_leaves=8,
)
NASTY_JSON = [
    "",
    "[",
    "null",
    "1e999",
    "[NaN, Infinity]",
    '["\\u0000"]',
    '["\\ud800"]',
    '{"\\u0000": 1}',
    "[" + "1" * 5000 + "]",  # past Python's int-from-text digit limit
    "[" * 100_000 + "]" * 100_000,  # deeper than the JSON parser recurses
    pickle.dumps(("x",), protocol=0).decode("latin-1"),
    "gASVBQAAAAAAAACMAXiULg==",  # base64 of a pickle
]
ARGS = st.one_of(
    st.lists(JSON_VALUES, max_size=3).map(json.dumps),
    JSON_VALUES.map(json.dumps),
    st.sampled_from(NASTY_JSON),
    TEXT,
)
KWARGS = st.one_of(
    st.dictionaries(TEXT, JSON_VALUES, max_size=3).map(json.dumps),
    JSON_VALUES.map(json.dumps),
    st.sampled_from(NASTY_JSON),
    TEXT,
)


def _either(values: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(values), TEXT)


INTEGER_TEXT = st.one_of(
    st.integers(-(2**70), 2**70).map(str), st.sampled_from(["", "1.5", "1e3", "-0"])
)
SCHEDULE_FORM = st.fixed_dictionaries(
    {
        "name": _either(["nightly", ""]),
        "func": _either(
            [*REGISTERED, "os.system", "builtins.exec", "tests.testapp.tasks", ""]
        ),
        "args": ARGS,
        "kwargs": KWARGS,
        "schedule_type": _either([*ScheduleType.values, "", "cron", "X"]),
        "minutes": st.one_of(INTEGER_TEXT, TEXT),
        "cron": _either(["", "0 3 * * *", "*/5 * * * *", "61 * * * *", "@daily"]),
        "timezone": _either(["", "UTC", "Europe/Paris", "Mars/Olympus", "../etc"]),
        "next_run_0": st.one_of(
            st.dates().map(lambda d: d.isoformat()),
            st.sampled_from(["", "9999-12-31", "0001-01-01", "2024-02-30"]),
            TEXT,
        ),
        "next_run_1": st.one_of(
            st.times().map(lambda t: t.isoformat()),
            st.sampled_from(["", "24:00", "23:59:60"]),
            TEXT,
        ),
        "repeats": st.one_of(INTEGER_TEXT, TEXT),
        "enabled": st.sampled_from(["on", ""]),
        "catch_up": _either(["SKIP", "ONCE", "ALL", ""]),
        "allow_overlap": st.sampled_from(["on", ""]),
        "queue": _either(["", "default", "emails"]),
        "priority": st.one_of(INTEGER_TEXT, TEXT),
    }
)


def _stored(row: Schedule) -> tuple[Any, ...]:
    return tuple(
        getattr(row, field.attname)
        for field in Schedule._meta.concrete_fields
        if field.name != "updated_at"
    )


def _assert_form_refused(response: Any, before: dict[str, int]) -> None:
    assert response.status_code == 200, response.status_code
    form = response.context["adminform"].form
    assert form.errors, "a 200 without errors saved nothing and said nothing"
    assert row_counts() == before


def test_the_add_form_saves_a_valid_schedule_or_says_why_not(admin_client):
    url = reverse(ADD)

    @given(data=SCHEDULE_FORM)
    def check(data: dict[str, str]) -> None:
        with example() as ex:
            response = admin_client.post(url, data)
            if response.status_code != 302:
                _assert_form_refused(response, ex.before)
                return
            ex.added(Schedule=1)
            row = Schedule.objects.get(name=data["name"])
            # What was saved reads back and computes, as the scheduler will.
            assert isinstance(row.args, tuple)
            assert isinstance(row.kwargs, dict)
            assert row.func in REGISTERED
            assert not scheduling.timing_problems(
                row.schedule_type,
                minutes=row.minutes,
                cron=row.cron,
                timezone_name=row.timezone,
            )
            row.preview(2, now=row.next_run)

    check()


def test_the_change_form_saves_or_leaves_the_row_exactly_as_it_was(admin_client):
    row = schedule(tasks.add, 1, 2, name="existing", cron="0 3 * * *")
    url = reverse("admin:dbqueue_schedule_change", args=[row.pk])
    before = _stored(Schedule.objects.get(pk=row.pk))

    @given(data=SCHEDULE_FORM)
    def check(data: dict[str, str]) -> None:
        with example() as ex:
            response = admin_client.post(url, data)
            if response.status_code != 302:
                _assert_form_refused(response, ex.before)
                assert _stored(Schedule.objects.get(pk=row.pk)) == before
                return
            ex.added()
            saved = Schedule.objects.get(pk=row.pk)
            assert saved.func in REGISTERED
            assert isinstance(saved.args, tuple)

    check()


LIST_PARAMETERS = st.dictionaries(
    _either(
        [
            "status",
            "queue",
            "func",
            "enqueued",
            "replayed",
            "exception",
            "failed_at__gte",
            "enabled__exact",
            "schedule_type__exact",
            "role__exact",
            "q",
            "o",
            "p",
            "e",
            "all",
            "_changelist_filters",
            "payload__contains",
        ]
    ),
    st.one_of(TEXT, INTEGER_TEXT),
    max_size=4,
)


@pytest.mark.parametrize("model", ["task", "failedtask", "schedule", "worker"])
def test_a_list_page_answers_any_filter_without_an_error(admin_client, model):
    url = reverse(f"admin:dbqueue_{model}_changelist")

    @given(params=LIST_PARAMETERS)
    def check(params: dict[str, str]) -> None:
        with example() as ex:
            response = admin_client.get(url, params)
            assert response.status_code in (200, 302, 400), response.status_code
            if response.status_code == 302:
                assert "e=1" in response["Location"]
            assert row_counts() == ex.before

    check()


REPLAY_FILTERS = st.dictionaries(
    _either(["replayed", "exception", "func", "queue", "q", "o", "bogus"]),
    _either(["yes", "no", "builtins.ValueError", "tests.testapp.tasks.add", "x"]),
    max_size=3,
)


def _replays() -> tuple[int, int]:
    total = FailedTask.objects.aggregate(n=Sum("replay_count"))["n"] or 0
    return total, row_counts()["Task"]


def test_replay_all_matching_replays_what_it_counted_or_nothing(admin_client):
    worker = Worker(worker_id="fuzz-worker", queues=["*"], poll_interval=0)
    for label in ("a", "b", "c"):
        api.async_task(tasks.add, label, None, max_attempts=1)  # a str + None raises
        worker.run_once()
    assert FailedTask.objects.count() == 3
    FailedTask.objects.filter(id=FailedTask.objects.first().id).update(replay_count=1)
    url = reverse("admin:dbqueue_failedtask_replay_matching")

    @given(params=REPLAY_FILTERS)
    def check(params: dict[str, str]) -> None:
        query = "?" + "&".join(
            f"{key}={value}"
            for key, value in zip(
                params, (_quote(v) for v in params.values()), strict=True
            )
        )
        with example():
            confirm = admin_client.get(url + query)
            replays, task_rows = _replays()
            posted = admin_client.post(url + query, {"again": "1"})
            assert posted.status_code in (302, 400), posted.status_code
            if confirm.status_code != 200:
                assert confirm.status_code in (302, 400)
                assert _replays() == (replays, task_rows)
                return
            counted = confirm.context["count"]
            assert _replays() == (replays + counted, task_rows + counted)

    check()


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


@given(
    queue=_either(["default", "emails", "", "q" * 64, "q" * 65]),
    paused=st.sampled_from(["1", "0", "", "yes"]),
)
def test_pause_and_resume_change_only_the_posted_queue(queue, paused):
    from django.contrib.auth.models import User
    from django.test import Client

    with example():
        client = Client()
        client.force_login(
            User.objects.create(username="fuzz-root", is_staff=True, is_superuser=True)
        )
        before = dict(QueueState.objects.values_list("name", "paused"))
        response = client.post(
            reverse("admin:dbqueue_queuestate_pause"),
            {"queue": queue, "paused": paused},
        )
        assert response.status_code == 302
        after = dict(QueueState.objects.values_list("name", "paused"))
        if after == before:
            return
        assert set(after) - set(before) <= {queue}
        assert after[queue] is (paused == "1")
        assert {k: v for k, v in after.items() if k != queue} == {
            k: v for k, v in before.items() if k != queue
        }


# Regression tests for what the fuzzing above found (each was a 500, or worse).


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" + "1" * 5000 + "]", "number too long"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_arguments_json_past_the_parser_limits_is_a_form_error(
    admin_client, text, message
):
    data = {
        "name": "n",
        "func": REGISTERED[0],
        "args": text,
        "kwargs": "{}",
        "schedule_type": "DAILY",
        "timezone": "UTC",
        "next_run_0": "2030-01-01",
        "next_run_1": "03:00",
        "repeats": "-1",
        "catch_up": "SKIP",
        "priority": "0",
    }
    response = admin_client.post(reverse(ADD), data)
    assert response.status_code == 200
    assert message in str(response.context["adminform"].form.errors["args"])
    assert not Schedule.objects.exists()


@pytest.mark.parametrize("query", ["?bogus=1", "?replayed=junk", "?replayed=yes&x=1"])
def test_replay_all_matching_refuses_filters_it_cannot_apply(admin_client, query):
    worker = Worker(worker_id="fuzz-worker", queues=["*"], poll_interval=0)
    api.async_task(tasks.add, "a", None, max_attempts=1)
    worker.run_once()
    url = reverse("admin:dbqueue_failedtask_replay_matching") + query
    before = _replays()
    for response in (admin_client.get(url), admin_client.post(url, {"again": "1"})):
        assert response.status_code == 302
    assert _replays() == before
    shown = admin_client.get(reverse("admin:dbqueue_failedtask_changelist"))
    assert "Nothing was replayed" in shown.content.decode()


@pytest.mark.parametrize("model", ["task", "failedtask", "schedule", "worker"])
def test_a_nul_in_a_list_parameter_is_an_invalid_filter(admin_client, model):
    url = reverse(f"admin:dbqueue_{model}_changelist")
    for params in ({"q": "a\x00"}, {"func": "x\x00"}, {"queue\x00": "1"}):
        response = admin_client.get(url, params)
        assert response.status_code == 302
        assert response["Location"].endswith("?e=1")


def test_pausing_a_queue_named_with_a_nul_says_why_and_stores_nothing(admin_client):
    response = admin_client.post(
        reverse("admin:dbqueue_queuestate_pause"), {"queue": "a\x00b", "paused": "1"}
    )
    assert response.status_code == 302
    assert not QueueState.objects.exists()
    page = admin_client.get(response["Location"]).content.decode()
    assert "NUL" in page
