"""Who may do what in the console: one permission per action, checked on every request.

The codenames live on QueueState's Meta (see dbqueue.models.queue_state).
Two rules hold for every admin here:

- An action runs only on POST (Django's action form, or a button that posts
  to an object URL), behind the admin's CSRF protection; a GET shows a page
  or a confirmation, and never changes anything.
- A POST naming an action the user may not run answers 403, instead of
  Django's default of quietly re-rendering the list with "No action
  selected": a crafted request is refused loudly, and nothing changes
  (see base.ConsoleAdmin).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

APP = "dbqueue"
PAUSE_QUEUE = "pause_queue"
RETRY_TASK = "retry_task"
CANCEL_TASK = "cancel_task"
REPLAY_FAILED_TASK = "replay_failedtask"
RUN_SCHEDULE = "run_schedule"
VIEW_TASK_ARGUMENTS = "view_task_arguments"


def has(request: HttpRequest, codename: str) -> bool:
    """Tell whether the request's user holds dbqueue's permission `codename`."""
    return bool(request.user.has_perm(f"{APP}.{codename}"))


def require(request: HttpRequest, codename: str) -> None:
    """Raise PermissionDenied (403) unless the user holds dbqueue's permission `codename`."""
    if not has(request, codename):
        raise PermissionDenied(f"You do not have the permission {APP}.{codename}.")


def user_id(request: HttpRequest) -> int:
    """Return the acting user's primary key, for admin LogEntry rows."""
    return int(str(request.user.pk))


def username(request: HttpRequest) -> str:
    """Return how the console names the acting user in logs and replay records."""
    return str(request.user.get_username() or "admin")[:150]
