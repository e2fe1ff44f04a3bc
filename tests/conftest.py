"""Fixtures shared by dbqueue's tests.

- ``vendor`` marker: ``@pytest.mark.vendor("postgresql", "mysql")`` runs a test
  only on those database vendors and skips it elsewhere with the reason.
- ``second_connection``: another connection to the test database, registered
  under its own alias, for tests that hold locks on one connection and claim
  on the other.
- ``worker`` / ``drain()``: a Worker of every queue driven in-process with
  run_once(), and a loop that runs it until the queue is empty.
- ``cluster`` / ``python_child``: start ``qcluster`` (or any ``python`` command
  line) in a subprocess against the test database.
- ``wait_until``: polls a condition against a deadline.
- ``listener``: a PostgreSQL session LISTENing where idle workers do; call it
  to get the (channel, payload) of the notifications committed since.
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
from django.utils import timezone

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


@pytest.fixture
def listener(transactional_db: None) -> Iterator[Callable[[], list[tuple[str, str]]]]:
    import psycopg

    from dbqueue.claiming import listen

    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)
    session = psycopg.connect(**params, autocommit=True)
    session.execute(f"LISTEN {listen.CHANNEL}; LISTEN {listen.LATER_CHANNEL}")
    try:
        yield lambda: sorted(
            (n.channel, n.payload) for n in session.notifies(timeout=0.5)
        )
    finally:
        session.close()


@pytest.fixture
def worker():
    """A Worker of every queue, driven in-process with run_once() (see drain())."""
    from dbqueue.cluster.worker import Worker

    return Worker(worker_id="test-worker", queues=["*"], poll_interval=0)


def drain(worker, rounds: int = 50) -> None:
    """Run `worker` until a round claims nothing, making retries due at once."""
    from dbqueue.models import Task

    for _ in range(rounds):
        Task.objects.queued().update(run_after=timezone.now())
        if not worker.run_once():
            return


def run_all(worker) -> list:
    """Run `worker` until a round claims nothing; return every outcome.

    A worker's first claim takes one task and later ones whole batches (see
    BatchSizer), so counting one round's outcomes says little.
    """
    outcomes = []
    while batch := worker.run_once():
        outcomes.extend(batch)
    return outcomes


class Child:
    """A Python subprocess on the test database, in its own process group, its output in a file."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
            prefix="dbqueue-child-", suffix=".log", delete=False
        )
        child_env = {
            **os.environ,
            "DBQUEUE_TEST_DATABASE_NAME": str(connection.settings_dict["NAME"]),
        }
        child_env.update(env or {})
        child_env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        child_env["PYTHONPATH"] = str(REPO)
        self.process = subprocess.Popen(
            [sys.executable, *args],
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
                f"pid {self.pid} did not exit within {timeout}s. Output:\n{self.output()}"
            )

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def stop(self, timeout: float = 20) -> int:
        """Send SIGTERM and return the exit code; fail the test after `timeout` seconds."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


class Cluster(Child):
    """``qcluster`` in a subprocess: Cluster("--workers", "2")."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__("-m", "django", "qcluster", *args, env=env)


def _children(
    request: pytest.FixtureRequest, kind: type[Child]
) -> Iterator[Callable[..., Child]]:
    """Start children of `kind`; kill their process groups afterwards, printing output on failure."""
    started: list[Child] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Child:
        # The child opens its own connections; ours must not hold locks it needs.
        connection.close()
        started.append(kind(*args, env=env))
        return started[-1]

    yield start
    for item in started:
        item.kill_group()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            sys.stderr.write(
                f"\n--- {kind.__name__} pid={item.pid} output ---\n{item.output()}\n"
            )
        Path(item.log.name).unlink(missing_ok=True)


@pytest.fixture
def cluster(
    transactional_db: None, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Child]]:
    """Start qcluster subprocesses: cluster("--workers", "2") returns a Cluster."""
    yield from _children(request, Cluster)


@pytest.fixture
def python_child(
    transactional_db: None, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Child]]:
    """Start Python subprocesses: python_child("-c", code) returns a Child."""
    yield from _children(request, Child)


def run_chaos(*args: str, json_path: Path, timeout: float) -> tuple[int, str]:
    """Run ``python -m chaos ARGS`` on this run's database server; return its exit code and output.

    The chaos runner makes its own throwaway databases there, with its own
    settings, and writes its result to `json_path`.
    """
    vendor = connection.vendor
    server = (
        "DBQUEUE_TEST_POSTGRES_URL"
        if vendor == "postgresql"
        else "DBQUEUE_TEST_MYSQL_URL"
    )
    env = {
        **os.environ,
        server: os.environ["DBQUEUE_TEST_DATABASE_URL"],
        "PYTHONPATH": str(REPO),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    connection.close()  # the run may restart the server under it
    try:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "chaos",
                *args,
                "--db",
                vendor,
                "--json",
                str(json_path),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        connection.close()
    return run.returncode, run.stdout + run.stderr


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None]:
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report
