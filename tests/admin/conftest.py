"""Fixtures of the admin console's tests: users by permission, failed tasks, a worker.

- ``viewer`` / ``viewer_client``: staff with only the view permissions.
- ``operator_client``: pytest-django's ``admin_client`` (a superuser).
- ``make_failed``: a real dead-letter entry, by running a worker on a task that fails.

The ``worker`` fixture and ``drain()`` are tests/conftest.py's.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User

from dbqueue import api, claiming
from dbqueue.models import FailedTask
from tests.conftest import drain
from tests.testapp import tasks
from tests.testapp.models import Execution

VIEW_PERMISSIONS = (
    "view_task",
    "view_failedtask",
    "view_schedule",
    "view_queuestate",
    "view_worker",
)
PASSWORD = "a-long-enough-test-password"  # noqa: S105


@pytest.fixture(autouse=True)
def _fresh_paused_cache():
    """Claims re-read the paused queues: a test's pauses never outlive its database."""
    claiming.forget_paused()
    yield
    claiming.forget_paused()


def make_user(username, *codenames, superuser=False):
    user = User.objects.create_user(
        username, password=PASSWORD, is_staff=True, is_superuser=superuser
    )
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="dbqueue", codename__in=codenames
        )
    )
    return user


@pytest.fixture
def viewer(db):
    return make_user("viewer", *VIEW_PERMISSIONS)


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def operator_client(admin_client):
    return admin_client


@pytest.fixture
def make_failed(worker):
    """Return a maker of real dead-letter entries of fails_while_blocked(label)."""

    def make(label="report", *, queue="default", **options):
        Execution.objects.get_or_create(label=f"blocked:{label}")
        task_id = api.async_task(
            tasks.fails_while_blocked, label, max_attempts=1, queue=queue, **options
        )
        drain(worker)
        return FailedTask.objects.get(task_id=task_id)

    return make


def unblock(label="report"):
    Execution.objects.filter(label=f"blocked:{label}").delete()
