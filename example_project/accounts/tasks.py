"""Work the accounts app hands to the dbqueue cluster.

Tasks take ids, not model instances: the row may change between enqueue and
run, and the worker should act on what the database says when it runs.
"""

import os
import time

from django.core.mail import send_mail
from django.utils import timezone

from dbqueue import task
from example_project.accounts.models import Profile

# A real SMTP relay (TLS handshake, auth, a greylisting pause) often takes a
# second or more. Sleeping stands in for it, since the file backend is instant.
SMTP_DELAY = 1.5  # seconds

WELCOME_BODY = """Hello {username},

Welcome aboard! Follow the link in your next email to choose a password.
"""


@task
def send_welcome_email(user_id: int) -> str | None:
    """Mail a new account its welcome message; return the recipient.

    Return None when the account is gone: it was deleted before a worker got
    here, and no retry would change that, so failing would only add noise.
    """
    profile = Profile.objects.select_related("user").filter(user_id=user_id).first()
    if profile is None:
        return None
    user = profile.user
    if profile.welcome_email_sent_at is not None:
        # An earlier run sent it but did not live to record success.
        return user.email
    time.sleep(SMTP_DELAY)
    send_mail(
        subject="Welcome to the dbqueue example",
        message=WELCOME_BODY.format(username=user.username),
        from_email=None,
        recipient_list=[user.email],
    )
    # Between send_mail() and this update a crash means one duplicate email:
    # an SMTP server offers no transaction to commit the two together.
    Profile.objects.filter(pk=profile.pk).update(welcome_email_sent_at=timezone.now())
    return user.email


@task
def ping() -> int:
    """Return the worker's pid, proving that a cluster is claiming and running tasks."""
    return os.getpid()
