from django.db import models


class Execution(models.Model):
    """A ledger row written by a test task each time it runs, in its own transaction."""

    label = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    pid = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.label} (pid {self.pid})"
