"""The ledger: one row per execution of a chaos task, written by the task itself."""

from django.db import models


class Execution(models.Model):
    """One execution of a workload task, committed on its own before the task's work.

    A worker killed after this row is written leaves an execution without an
    outcome; its retry writes a second row. That is how the runner sees
    what really ran, independently of what the Task rows say.
    """

    key = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=16)
    pid = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.key} ({self.kind}, pid {self.pid})"
