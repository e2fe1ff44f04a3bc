"""Show, end to end, a signup that queues its welcome email instead of sending it.

Run from the repository root: ``python -m example_project.demo``.

It starts from an empty database, starts a real ``qcluster`` subprocess, posts
signups through the real views with Django's test client, waits for the
cluster to send the emails, prints what happened and stops the cluster with
SIGTERM. It exits 1 if any step did not go as the story says, printing the
cluster's log, so ``make demo`` doubles as a smoke test of the example project.
"""

import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import django
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.test import Client

import dbqueue
from dbqueue import progress

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
ASYNC_SIGNUPS = ["alice", "bob", "carol", "dave", "erin", "frank"]
INLINE_SIGNUP = "grace"
# A dotted path works as well as the function: the demo need not import the app.
WARM_UP_TASK = "example_project.accounts.tasks.ping"
READY_TIMEOUT = 20.0  # seconds for the cluster to run its first task
TASKS_TIMEOUT = 60.0  # seconds for every welcome email to be sent
STOP_TIMEOUT = 20.0  # seconds for the cluster to exit after SIGTERM
POLL_WAIT = (
    250  # milliseconds per dbqueue.fetch() wait, so a dead cluster is noticed early
)


@dataclass
class Signup:
    username: str
    endpoint: str
    view_ms: float
    http_status: int
    task_id: str | None = None
    outcome: str = "-"  # the task's status, or "inline"
    sent_after: float | None = None  # seconds from the request to the email being sent
    result: object = None

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"


class DemoError(Exception):
    """A step the demo cannot go on from, such as a cluster that never came up."""


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    django.setup()
    say(
        "dbqueue demo",
        f"welcome emails off the request path (SQLite, {WORKERS} workers)",
    )
    reset_database()
    say(
        "database",
        f"{relative(settings.DATABASES['default']['NAME'])}, fresh and migrated",
    )
    cluster = start_cluster()
    signups: list[Signup] = []
    try:
        problems = run_story(cluster, signups)
    except DemoError as exc:
        problems = [str(exc)]
    finally:
        kill_group(cluster)
    return verdict(signups, problems)


def run_story(cluster: subprocess.Popen[bytes], signups: list[Signup]) -> list[str]:
    """Sign users up against a live cluster, filling in `signups`; return what went wrong."""
    worker_pid = wait_until_ready(cluster)
    say(
        "cluster",
        f"pid {cluster.pid} is up; the warm-up task ran in worker pid {worker_pid}",
    )
    client = Client(SERVER_NAME="localhost")
    signups.extend(post_signup(client, "/signup/", name) for name in ASYNC_SIGNUPS)
    signups.append(post_signup(client, "/signup/inline/", INLINE_SIGNUP))
    say(
        "signups",
        f"{len(ASYNC_SIGNUPS)} to /signup/ (async_task), 1 to /signup/inline/ (send_mail in the view)",
    )
    wait_for_tasks(signups, cluster)
    print_table(signups)
    problems = check(signups)
    say("status view", describe_status_view(client, signups[0]))
    code, took = stop_cluster(cluster)
    say("cluster", f"SIGTERM -> exited with code {code} after {took:.1f}s")
    if code != 0:
        problems.append(f"the cluster exited with code {code}, not 0")
    return problems


def reset_database() -> None:
    """Start from nothing, so that the counts in the summary mean what they say."""
    database = Path(settings.DATABASES["default"]["NAME"])
    for suffix in ("", "-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    shutil.rmtree(settings.EMAIL_FILE_PATH, ignore_errors=True)
    call_command("migrate", verbosity=0)
    # Hand the file over with no connection of ours open: the cluster switches
    # it to WAL mode as it starts, which needs every other connection idle.
    connections.close_all()


def start_cluster() -> subprocess.Popen[bytes]:
    """Start ``manage.py qcluster`` in its own process group, logging to a file.

    A file rather than a pipe: nothing reads a pipe while the demo runs, and
    once it filled up the cluster would block on its next log line.
    """
    with cluster_log().open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", "qcluster", "--workers", str(WORKERS)],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until_ready(cluster: subprocess.Popen[bytes]) -> int:
    """Return the pid of the worker that ran a warm-up task, once one has."""
    task_id = dbqueue.async_task(WARM_UP_TASK)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        ensure_alive(cluster, "before running a task")
        task = dbqueue.fetch(task_id, wait=POLL_WAIT)
        if task is not None and task.is_finished:
            if not task.success:
                raise DemoError(f"the warm-up task ended {task.status}: {task.error}")
            return int(task.result)
    raise DemoError(f"the cluster ran no task within {READY_TIMEOUT:.0f}s")


def post_signup(client: Client, endpoint: str, username: str) -> Signup:
    started = time.perf_counter()
    response = client.post(
        endpoint, {"username": username, "email": f"{username}@example.com"}
    )
    view_ms = (time.perf_counter() - started) * 1000
    signup = Signup(username, endpoint, view_ms, response.status_code)
    if response.status_code != 201:
        return signup
    signup.task_id = response.json()["task_id"]
    if signup.task_id is None:
        # The view answered only once the email was out: its time is the email's.
        signup.outcome = "inline"
        signup.sent_after = view_ms / 1000
        signup.result = signup.email
    return signup


def wait_for_tasks(signups: list[Signup], cluster: subprocess.Popen[bytes]) -> None:
    """Wait, up to one shared deadline, for each queued email and record its outcome."""
    deadline = time.monotonic() + TASKS_TIMEOUT
    queued = [signup for signup in signups if signup.task_id is not None]
    # A counter on a terminal, a line every few seconds in a log.
    bar = progress.Progress(sys.stdout, "  emails sent", total=len(queued))
    bar.update(0)
    try:
        for done, signup in enumerate(queued, 1):
            wait_for_task(signup, cluster, deadline)
            bar.update(done)
    finally:
        bar.finish()


def wait_for_task(
    signup: Signup, cluster: subprocess.Popen[bytes], deadline: float
) -> None:
    """Wait until the signup's email task finishes (or the deadline passes); record its outcome."""
    if signup.task_id is None:
        return
    task = dbqueue.fetch(signup.task_id)
    while task is not None and not task.is_finished and time.monotonic() < deadline:
        ensure_alive(cluster, f"while {signup.username}'s email was queued")
        task = dbqueue.fetch(signup.task_id, wait=POLL_WAIT)
    if task is None:
        raise DemoError(
            f"the task of {signup.username!r} disappeared from the database"
        )
    signup.outcome, signup.result = task.status, task.result
    if task.finished_at:
        signup.sent_after = (task.finished_at - task.enqueued_at).total_seconds()


def check(signups: list[Signup]) -> list[str]:
    """Print the totals and return every way the run differs from the story."""
    queued = [s for s in signups if s.endpoint == "/signup/"]
    async_ms = statistics.median(s.view_ms for s in queued)
    inline_ms = statistics.median(
        s.view_ms for s in signups if s.endpoint == "/signup/inline/"
    )
    succeeded = [s for s in queued if s.outcome == "SUCCEEDED"]
    expected, found = sorted(s.email for s in signups), sorted(sent_recipients())
    say("median view time", f"async {async_ms:.0f} ms, inline {inline_ms:.0f} ms")
    say("tasks succeeded", f"{len(succeeded)}/{len(queued)}")
    say(
        "emails on disk",
        f"{len(found)}/{len(expected)} in {relative(settings.EMAIL_FILE_PATH)}",
    )
    problems = [
        f"{s.endpoint} answered {s.http_status} for {s.username!r}"
        for s in signups
        if s.http_status != 201
    ]
    problems += [
        f"{s.username}'s task is {s.outcome}, not SUCCEEDED"
        for s in queued
        if s not in succeeded
    ]
    if found != expected:
        problems.append(f"expected one email to each of {expected}, found {found}")
    if async_ms >= inline_ms:
        problems.append(
            f"the async view ({async_ms:.0f} ms) was not faster than the inline one ({inline_ms:.0f} ms)"
        )
    return problems


def sent_recipients() -> list[str]:
    """Return the To: address of every message the file backend wrote."""
    outbox = Path(settings.EMAIL_FILE_PATH)
    if not outbox.exists():
        return []
    return [
        line.removeprefix("To: ").strip()
        for sent in outbox.iterdir()
        for line in sent.read_text().splitlines()
        if line.startswith("To: ")
    ]


def describe_status_view(client: Client, signup: Signup) -> str:
    response = client.get(f"/tasks/{signup.task_id}/")
    body = response.json()
    return f"GET /tasks/<{signup.username}'s task>/ -> {response.status_code}, status={body.get('status')}, result={body.get('result')!r}"


def stop_cluster(cluster: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Ask the cluster to stop, as a process manager would; return its exit code and how long it took."""
    started = time.monotonic()
    cluster.send_signal(signal.SIGTERM)
    try:
        code = cluster.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise DemoError(
            f"the cluster was still running {STOP_TIMEOUT:.0f}s after SIGTERM"
        ) from None
    return code, time.monotonic() - started


def ensure_alive(cluster: subprocess.Popen[bytes], when: str) -> None:
    if cluster.poll() is not None:
        raise DemoError(f"the cluster exited with code {cluster.returncode} {when}")


def kill_group(cluster: subprocess.Popen[bytes]) -> None:
    """Leave no process behind, workers included, whatever happened above."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(cluster.pid, signal.SIGKILL)
    cluster.wait()


def print_table(signups: list[Signup]) -> None:
    print(
        f"\n  {'#':>2}  {'username':<9} {'endpoint':<16} {'view':>7}  {'task':<10} {'sent after':>10}  result"
    )
    for number, s in enumerate(signups, 1):
        sent_after = f"{s.sent_after:.1f}s" if s.sent_after is not None else "-"
        print(
            f"  {number:>2}  {s.username:<9} {s.endpoint:<16} {s.view_ms:>5.0f}ms"
            f"  {s.outcome:<10} {sent_after:>10}  {s.result}"
        )
    print()


def verdict(signups: list[Signup], problems: list[str]) -> int:
    if problems:
        print(f"\n--- cluster output ({relative(cluster_log())}) ---")
        print(cluster_log().read_text(errors="replace").rstrip())
        print("--- end of cluster output ---\n")
        print("FAILED:" + "".join(f"\n  - {problem}" for problem in problems))
        return 1
    queued = [s for s in signups if s.task_id]
    async_ms = statistics.median(s.view_ms for s in queued)
    inline_ms = next(s.view_ms for s in signups if not s.task_id)
    slowest = max(s.sent_after or 0.0 for s in queued)
    print(
        f"\nOK: signup answered in {async_ms:.0f} ms instead of {inline_ms:.0f} ms; "
        f"the cluster sent all {len(queued)} welcome emails within {slowest:.1f}s "
        "and stopped cleanly."
    )
    return 0


def say(label: str, text: str) -> None:
    print(f"  {label:<17} {text}")


def cluster_log() -> Path:
    return Path(settings.VAR_DIR) / "qcluster.log"


def relative(path: object) -> str:
    return str(Path(str(path)).relative_to(REPO_ROOT))


if __name__ == "__main__":
    sys.exit(main())
