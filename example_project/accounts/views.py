"""Two ways to sign up, and a way to see how a queued task is doing.

The signup views are a small JSON API the demo driver posts to. They are
exempt from CSRF because no browser session is involved; an HTML form on a
real site would keep the protection.
"""

import json
import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

import dbqueue
from example_project.accounts import tasks
from example_project.accounts.forms import SignupForm
from example_project.accounts.models import Profile


@csrf_exempt
@require_POST
def signup(request: HttpRequest) -> JsonResponse:
    """Create the account and queue its welcome email, answering without waiting for SMTP."""
    form = SignupForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    # One transaction for the user and the task row: if the signup rolls
    # back, no email goes out, and a worker cannot run the task before the
    # user it names is committed.
    with transaction.atomic():
        user = _create_account(form)
        task_id = dbqueue.async_task(tasks.send_welcome_email, user.pk)
    status_url = reverse("task-status", args=[task_id])
    return JsonResponse(
        {"user_id": user.pk, "task_id": task_id, "status_url": status_url}, status=201
    )


@csrf_exempt
@require_POST
def signup_inline(request: HttpRequest) -> JsonResponse:
    """Sign up the way a site without a queue does, so the user waits for SMTP."""
    form = SignupForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    with transaction.atomic():
        user = _create_account(form)
    # Outside the transaction on purpose: in IMMEDIATE mode an open
    # transaction holds SQLite's write lock, and every worker would stall
    # behind our SMTP call.
    tasks.send_welcome_email(user.pk)
    return JsonResponse({"user_id": user.pk, "task_id": None}, status=201)


@require_GET
def task_status(request: HttpRequest, task_id: uuid.UUID) -> JsonResponse:
    """Report a task's progress, for a page that polls after signup.

    There is no access check: anyone holding the id sees the result. A real
    site would first check that the task belongs to ``request.user``.
    """
    found = dbqueue.fetch(task_id)
    if found is None:
        return JsonResponse({"error": f"No task has the id '{task_id}'."}, status=404)
    return JsonResponse(
        {
            "id": str(found.id),
            "name": found.name,
            "status": found.status,
            "attempts": found.attempts,
            "result": _jsonable(found.result),
            "error": found.error,
            "enqueued_at": found.enqueued_at,
            "finished_at": found.finished_at,
        }
    )


def _create_account(form: SignupForm) -> AbstractBaseUser:
    user = get_user_model().objects.create_user(
        username=form.cleaned_data["username"], email=form.cleaned_data["email"]
    )
    Profile.objects.create(user=user)
    return user


def _jsonable(value: Any) -> Any:
    # A task may return anything the serializer can store; show the rest as repr.
    try:
        json.dumps(value)
    except TypeError:
        return repr(value)
    return value
