from django.conf import settings
from django.db import models


class Profile(models.Model):
    """What the site knows about an account beyond Django's User.

    ``welcome_email_sent_at`` is there for the task, not for display: a task
    can run more than once (a retry, or a worker that died before recording
    success), and the flag keeps a second run from mailing the user again.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    welcome_email_sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Profile of {self.user}"
