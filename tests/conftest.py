"""Fixtures shared by dbqueue's tests.

- ``vendor`` marker: ``@pytest.mark.vendor("postgresql", "mysql")`` runs a test
  only on those database vendors and skips it elsewhere with the reason.
- ``second_connection``: another connection to the test database, registered
  under its own alias, for tests that hold locks on one connection and claim
  on the other.
- ``cluster``: starts ``qcluster`` in a subprocess against the test database.
- ``wait_until``: polls a condition against a deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection, connections

REPO = Path(__file__).resolve().parent.parent
SECOND_ALIAS = "dbqueue_second"


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("vendor")
    if marker and connection.vendor not in marker.args:
        pytest.skip(
            f"needs {' or '.join(marker.args)}; this run uses {connection.vendor}"
        )


def pytest_report_header(config: pytest.Config) -> str:
    return f"dbqueue test database: {connection.vendor} ({connection.settings_dict['ENGINE']})"


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "",
) -> object:
    """Return the first truthy value of `predicate()`, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"Condition not met within {timeout}s: {message or predicate}")
        time.sleep(interval)


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., object]:
    return wait_until


@pytest.fixture
def second_connection(transactional_db: None) -> Iterator[str]:
    """Register a second connection to the test database and return its alias."""
    other = connections.create_connection("default")
    connections[SECOND_ALIAS] = other
    try:
        yield SECOND_ALIAS
    finally:
        other.close()
        del connections[SECOND_ALIAS]


class Cluster:
    """A qcluster subprocess in its own process group, with its output in a file."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
            prefix="qcluster-", suffix=".log", delete=False
        )
        child_env = {
            **os.environ,
            "DBQUEUE_TEST_DATABASE_NAME": str(connection.settings_dict["NAME"]),
        }
        child_env.update(env or {})
        child_env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        child_env["PYTHONPATH"] = str(REPO)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "django", "qcluster", *args],
            cwd=REPO,
            env=child_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # The child holds its own copy of the descriptor.
        self.log.close()

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"qcluster did not exit within {timeout}s. Output:\n{self.output()}"
            )

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def cluster(
    transactional_db: None, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Cluster]]:
    """Start qcluster subprocesses; kill their process groups afterwards, printing output on failure."""
    started: list[Cluster] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Cluster:
        # The child opens its own connections; ours must not hold locks it needs.
        connection.close()
        started.append(Cluster(*args, env=env))
        return started[-1]

    yield start
    for item in started:
        item.kill_group()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            sys.stderr.write(
                f"\n--- qcluster pid={item.pid} output ---\n{item.output()}\n"
            )
        Path(item.log.name).unlink(missing_ok=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None]:
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report
