"""Queue depth counted at a bounded cost: exact under DBQUEUE_DEPTH_COUNT_LIMIT, "at least" over it."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dbqueue import api, checks, stats
from dbqueue.models import Task
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def queued(count, *, queue, priority=0, seconds=-60.0):
    """Queue `count` tasks whose run_after is `seconds` from NOW (negative: due)."""
    ids = [
        api.async_task(tasks.add, 1, 2, queue=queue, priority=priority)
        for _ in range(count)
    ]
    Task.objects.filter(id__in=ids).update(
        run_after=NOW + datetime.timedelta(seconds=seconds)
    )
    return ids


def shape(found):
    return {
        name: (q.due, q.due_capped, q.waiting, q.waiting_capped)
        for name, q in found.items()
    }


def test_counts_under_the_limit_are_exact(settings):
    settings.DBQUEUE_DEPTH_COUNT_LIMIT = 10
    queued(3, queue="emails")
    queued(2, queue="emails", seconds=600)
    queued(1, queue="reports", seconds=-3600)
    found = stats.depth(NOW)
    assert shape(found) == {
        "emails": (3, False, 2, False),
        "reports": (1, False, 0, False),
    }
    assert found["reports"].oldest_due == NOW - datetime.timedelta(hours=1)
    assert not found["emails"].queued_capped


def test_a_queue_over_the_limit_reports_the_limit_as_capped(settings):
    settings.DBQUEUE_DEPTH_COUNT_LIMIT = 3
    queued(2, queue="big", priority=5)
    queued(3, queue="big")
    queued(4, queue="big", priority=-2, seconds=600)
    queued(2, queue="small")
    queued(1, queue="small", seconds=600)
    found = stats.depth(NOW)
    assert shape(found) == {"big": (3, True, 3, True), "small": (2, False, 1, False)}
    assert found["big"].queued == 6
    assert found["big"].queued_capped
    assert not found["small"].queued_capped


def test_exactly_the_limit_is_not_capped(settings):
    settings.DBQUEUE_DEPTH_COUNT_LIMIT = 3
    queued(3, queue="a")
    queued(3, queue="b", seconds=600)
    assert shape(stats.depth(NOW)) == {
        "a": (3, False, 0, False),
        "b": (0, False, 3, False),
    }


def test_the_oldest_due_task_is_found_across_priorities_past_the_limit(settings):
    settings.DBQUEUE_DEPTH_COUNT_LIMIT = 2
    queued(3, queue="big", priority=9, seconds=-10)
    queued(1, queue="big", priority=0, seconds=-7200)
    queued(2, queue="big", priority=-5, seconds=-60)
    queued(2, queue="big", priority=50, seconds=600)  # first in the index, not due
    found = stats.depth(NOW)["big"]
    assert found.oldest_due == NOW - datetime.timedelta(hours=2)
    assert found.lag == datetime.timedelta(hours=2)
    assert (found.due, found.due_capped, found.waiting, found.waiting_capped) == (
        2,
        True,
        2,
        False,
    )


def test_a_capped_count_agrees_with_the_exact_one_up_to_the_limit(settings):
    queued(4, queue="a", priority=3)
    queued(3, queue="a", seconds=600)
    queued(2, queue="a", priority=-1, seconds=-30)
    queued(1, queue="b", priority=7, seconds=120)
    queued(5, queue="c", seconds=-5)
    settings.DBQUEUE_DEPTH_COUNT_LIMIT = 1000
    exact = stats.depth(NOW)
    for limit in range(1, 8):
        settings.DBQUEUE_DEPTH_COUNT_LIMIT = limit
        bounded = stats.depth(NOW)
        assert bounded.keys() == exact.keys()
        for name, full in exact.items():
            got = bounded[name]
            assert (got.due, got.due_capped) == (
                min(full.due, limit),
                full.due > limit,
            ), (limit, name)
            assert (got.waiting, got.waiting_capped) == (
                min(full.waiting, limit),
                full.waiting > limit,
            ), (limit, name)
            assert got.oldest_due == full.oldest_due, (limit, name)


def test_only_the_queues_asked_for_are_read_past_the_limit(settings):
    settings.DBQUEUE_DEPTH_COUNT_LIMIT = 2
    queued(3, queue="big")
    queued(3, queue="other")
    assert shape(stats.depth(NOW, ["big", "empty"])) == {"big": (2, True, 0, False)}


def test_past_the_limit_more_rows_cost_no_more_queries(settings):
    settings.DBQUEUE_DEPTH_COUNT_LIMIT = 2

    def queries():
        with CaptureQueriesContext(connection) as captured:
            stats.depth(NOW)
        return len(captured)

    queued(3, queue="a")
    queued(3, queue="a", priority=1, seconds=600)
    few = queries()
    queued(20, queue="a")
    queued(20, queue="a", priority=1, seconds=600)
    assert queries() == few


@pytest.mark.parametrize("value", [0, -1, 2.5, "100"])
def test_a_bad_depth_count_limit_is_a_system_check_error(value):
    with override_settings(DBQUEUE_DEPTH_COUNT_LIMIT=value):
        errors = [e for e in checks.check_settings() if "DEPTH_COUNT_LIMIT" in e.msg]
    assert [error.id for error in errors] == ["dbqueue.E002"]
