"""dbqueue.redaction: which values are hidden, and that nothing else changes."""
# ruff: noqa: S105, S106 - the fake secrets are the point

import pytest
from django.test import override_settings

from dbqueue import redaction, registry
from dbqueue.redaction import REDACTED
from tests.security import secret_tasks

LOGIN = "tests.security.secret_tasks.login"
CONNECT = "tests.security.secret_tasks.connect"


def test_declared_names_and_positions_hide_values_by_keyword_and_by_position():
    args, kwargs = redaction.redact(LOGIN, ("bob", "1234", "987654"), {"note": "hi"})
    assert args == ("bob", REDACTED, REDACTED)
    assert kwargs == {"note": "hi"}
    args, kwargs = redaction.redact(LOGIN, ("bob",), {"pin": "1234", "otp": "9"})
    assert args == ("bob",)
    assert kwargs == {"pin": REDACTED, "otp": "9"}  # position 2 is only positional


def test_project_names_match_ignoring_case_underscores_and_dashes():
    _, kwargs = redaction.redact(
        "any.unknown.path",
        (),
        {
            "Password": "a",
            "ACCESS_TOKEN": "b",
            "apiKey": "c",
            "client-secret": "d",
            "user": "e",
            "keyword": "f",
        },
    )
    assert kwargs == {
        "Password": REDACTED,
        "ACCESS_TOKEN": REDACTED,
        "apiKey": REDACTED,
        "client-secret": REDACTED,
        "user": "e",
        "keyword": "f",
    }


def test_project_names_hide_a_parameter_passed_by_position():
    args, _ = redaction.redact(CONNECT, ("db.local", "hunter2"), {})
    assert args == ("db.local", REDACTED)


def test_nested_dicts_lists_and_tuples_are_scrubbed_without_touching_the_originals():
    options = {"retries": 3, "auth": {"token": "t0k", "user": "u"}}
    listed = [{"password": "p"}, "plain"]
    args, kwargs = redaction.redact(CONNECT, ("h", "pw", options), {"more": (listed,)})
    assert args[2] == {"retries": 3, "auth": {"token": REDACTED, "user": "u"}}
    assert kwargs["more"] == ([{"password": REDACTED}, "plain"],)
    assert options["auth"]["token"] == "t0k"
    assert listed[0]["password"] == "p"


def test_values_without_secrets_are_the_same_objects():
    payload = {"a": [1, 2, {"b": 3}]}
    _, kwargs = redaction.redact(CONNECT, ("h",), {"options": payload})
    assert kwargs["options"] is payload


@override_settings(DBQUEUE_SECRET_ARGUMENT_NAMES=("ssn",))
def test_the_setting_replaces_the_default_names():
    _, kwargs = redaction.redact("x.y", (), {"SSN": "1", "password": "2"})
    assert kwargs == {"SSN": REDACTED, "password": "2"}
    _, kwargs = redaction.redact("x.y", (), {"patient_ssn": "1"})
    assert kwargs == {"patient_ssn": REDACTED}


@override_settings(DBQUEUE_SECRET_ARGUMENT_NAMES=None)
def test_a_broken_setting_falls_back_to_the_defaults_instead_of_raising():
    _, kwargs = redaction.redact("x.y", (), {"password": "2"})
    assert kwargs == {"password": REDACTED}


def test_redact_never_raises_on_odd_input():
    class Exploding(dict):
        def items(self):
            raise RuntimeError("boom")

    args, kwargs = redaction.redact(None, [Exploding(), object()], {})  # type: ignore[arg-type]
    assert len(args) == 2
    assert kwargs == {}


def test_secret_args_are_checked_at_decoration():
    def f(user, pin):
        return user

    f.__module__ = secret_tasks.__name__
    f.__qualname__ = "f"
    with pytest.raises(ValueError, match="has no parameter for"):
        registry.TaskFunction(f, secret_args=("pinn",))
    with pytest.raises(TypeError, match="tuple of parameter names"):
        registry.TaskFunction(f, secret_args="pin")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="names \\(str\\) and positions"):
        registry.TaskFunction(f, secret_args=(1.5,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="count from 0"):
        registry.TaskFunction(f, secret_args=(-1,))
    assert registry.TaskFunction(f, secret_args=["pin", 0]).secret_args == ("pin", 0)
