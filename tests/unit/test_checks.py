import pytest
from django.core import checks
from django.db import connections
from django.test import override_settings

from dbqueue import checks as dbqueue_checks
from dbqueue.conf import settings


def ids(messages):
    return [m.id for m in messages]


def test_settings_are_read_live():
    assert settings.WORKERS is None
    with override_settings(DBQUEUE_WORKERS=3):
        assert settings.WORKERS == 3
    assert settings.WORKERS is None


def test_default_configuration_passes():
    assert dbqueue_checks.check_settings() == []
    assert dbqueue_checks.check_database_alias() == []
    assert dbqueue_checks.check_unknown_settings() == []


def test_unknown_database_alias_is_e001():
    with override_settings(DBQUEUE_DATABASE="elsewhere"):
        [error] = dbqueue_checks.check_database_alias()
    assert error.id == "dbqueue.E001"
    assert (
        error.msg
        == "Database alias 'elsewhere' in DBQUEUE_DATABASE is not in DATABASES."
    )


def test_a_separate_queue_database_without_the_router_is_w005():
    with override_settings(DBQUEUE_DATABASE="queue"):
        [warning] = dbqueue_checks.check_database_alias()
    assert warning.id == "dbqueue.W005"
    assert "dbqueue.routers.QueueRouter is not in DATABASE_ROUTERS" in warning.msg
    with override_settings(
        DBQUEUE_DATABASE="queue", DATABASE_ROUTERS=["dbqueue.routers.QueueRouter"]
    ):
        assert dbqueue_checks.check_database_alias() == []


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("WORKERS", 0, "DBQUEUE_WORKERS must be a positive integer or None, got 0."),
        (
            "WORKERS",
            "4",
            "DBQUEUE_WORKERS must be a positive integer or None, got '4'.",
        ),
        (
            "BATCH_SIZE",
            0,
            "DBQUEUE_BATCH_SIZE must be a whole number from 1 to 10000, got 0.",
        ),
        (
            "BATCH_SIZE",
            2**63,
            "DBQUEUE_BATCH_SIZE must be a whole number from 1 to 10000, "
            "got 9223372036854775808.",
        ),
        (
            "PRUNE_BATCH_SIZE",
            10_001,
            "DBQUEUE_PRUNE_BATCH_SIZE must be a whole number from 1 to 10000, "
            "got 10001.",
        ),
        (
            "MAX_ATTEMPTS",
            True,
            "DBQUEUE_MAX_ATTEMPTS must be a positive integer, got True.",
        ),
        (
            "POLL_INTERVAL",
            -1,
            "DBQUEUE_POLL_INTERVAL must be a positive number of seconds, got -1.",
        ),
        (
            "TIMEOUT",
            0,
            "DBQUEUE_TIMEOUT must be a positive number of seconds or None, got 0.",
        ),
        (
            "SERIALIZER",
            "yaml",
            "DBQUEUE_SERIALIZER must be 'pickle' or 'json', got 'yaml'.",
        ),
        (
            "QUEUES",
            [],
            "DBQUEUE_QUEUES must be a non-empty list of queue names, got [].",
        ),
        (
            "MAX_PAYLOAD_SIZE",
            0,
            "DBQUEUE_MAX_PAYLOAD_SIZE must be a positive number of bytes, got 0.",
        ),
    ],
)
def test_bad_setting_values_are_e002(name, value, text):
    with override_settings(**{f"DBQUEUE_{name}": value}):
        [error] = dbqueue_checks.check_settings()
    assert (error.id, error.msg) == ("dbqueue.E002", text)


def test_misspelt_setting_is_w002_with_a_suggestion():
    with override_settings(DBQUEUE_WORKER=2):
        [warning] = dbqueue_checks.check_unknown_settings()
    assert warning.id == "dbqueue.W002"
    assert warning.hint == "Did you mean DBQUEUE_WORKERS?"


def test_unsupported_vendor_is_named_in_e003(monkeypatch):
    class OracleConnection:
        vendor, alias, display_name = "oracle", "default", "Oracle"

    monkeypatch.setitem(
        connections._connections.__dict__, "default", OracleConnection()
    )
    [error] = dbqueue_checks.check_database_alias()
    assert error.id == "dbqueue.E003"
    assert error.msg.startswith(
        "Database 'default' is Oracle, which dbqueue cannot claim tasks on."
    )


def test_sqlite_in_deferred_mode_is_w001(monkeypatch):
    from django.conf import settings as django_settings

    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "x.sqlite3"}
    monkeypatch.setitem(django_settings.DATABASES, "lite", sqlite)
    with override_settings(DBQUEUE_DATABASE="lite"):
        assert ids(dbqueue_checks.check_sqlite_transaction_mode()) == ["dbqueue.W001"]
        sqlite["OPTIONS"] = {"transaction_mode": "IMMEDIATE"}
        assert dbqueue_checks.check_sqlite_transaction_mode() == []


def test_checks_are_registered_with_django():
    registered = checks.registry.registry.get_checks(include_deployment_checks=False)
    for check in (
        dbqueue_checks.check_database_alias,
        dbqueue_checks.check_settings,
        dbqueue_checks.check_unknown_settings,
        dbqueue_checks.check_sqlite_transaction_mode,
        dbqueue_checks.check_database_version,
    ):
        assert check in registered


def test_a_lease_shorter_than_three_heartbeats_is_e005():
    with override_settings(DBQUEUE_LEASE=10, DBQUEUE_HEARTBEAT_INTERVAL=5):
        [error] = dbqueue_checks.check_settings()
    assert error.id == "dbqueue.E005"
    assert "must be at least three heartbeats" in error.msg
