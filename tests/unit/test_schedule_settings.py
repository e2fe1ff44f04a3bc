"""The scheduler's settings and DBQUEUE_SCHEDULES entries, checked without a database."""

import pytest
from django.test import override_settings

from dbqueue import checks as dbqueue_checks
from dbqueue.conf import settings
from dbqueue.schedule_definition import declared_definition


def test_the_defaults_pass():
    assert dbqueue_checks.check_schedule_settings() == []
    assert settings.SCHEDULER_INTERVAL == 1.0
    assert dict(settings.SCHEDULES) == {}


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        (
            "SCHEDULER_INTERVAL",
            0,
            "DBQUEUE_SCHEDULER_INTERVAL must be a positive number of seconds, got 0.",
        ),
        (
            "SCHEDULE_GRACE",
            "60",
            "DBQUEUE_SCHEDULE_GRACE must be a positive number of seconds, got '60'.",
        ),
        (
            "SCHEDULE_CATCH_UP_MAX",
            0,
            "DBQUEUE_SCHEDULE_CATCH_UP_MAX must be a positive integer, got 0.",
        ),
        (
            "SCHEDULES",
            ["nightly"],
            "DBQUEUE_SCHEDULES must be a dict of schedule name -> schedule() arguments, got list.",
        ),
    ],
)
def test_a_bad_value_is_e002(name, value, text):
    with override_settings(**{f"DBQUEUE_{name}": value}):
        [error] = dbqueue_checks.check_schedule_settings()
    assert (error.id, error.msg) == ("dbqueue.E002", text)


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ({"cron": "0 3 * * *"}, "has no 'func'; give the task's dotted path."),
        (
            {"func": "tests.testapp.tasks.add", "cron": "0 3 * * *", "colour": "red"},
            "has unknown key(s) 'colour'",
        ),
        (
            {"func": "tests.testapp.tasks.gone", "minutes": 5},
            "No task is registered as 'tests.testapp.tasks.gone'.",
        ),
        (
            {"func": "tests.testapp.tasks.add", "minutes": 0},
            "minutes must be a positive whole number of minutes",
        ),
        ("0 3 * * *", "must be a dict of schedule() arguments, got str."),
    ],
)
def test_an_invalid_declaration_is_e006(entry, text):
    with override_settings(DBQUEUE_SCHEDULES={"nightly": entry}):
        [error] = dbqueue_checks.check_schedule_settings()
    assert error.id == "dbqueue.E006"
    assert error.msg.startswith("DBQUEUE_SCHEDULES['nightly'] is invalid: ")
    assert text in error.msg


def test_a_declaration_takes_schedule_arguments_and_task_options():
    definition = declared_definition(
        "nightly",
        {
            "func": "tests.testapp.tasks.echo",
            "args": [1],
            "kwargs": {"x": 2},
            "cron": "0 3 * * *",
            "timezone": "Europe/Berlin",
            "catch_up": "once",
            "queue": "reports",
            "max_attempts": 2,
        },
    )
    assert (definition.schedule_type, definition.catch_up, definition.queue) == (
        "CRON",
        "ONCE",
        "reports",
    )
    assert definition.task_options == {"max_attempts": 2}
