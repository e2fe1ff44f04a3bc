"""The Django admin as dbqueue's operations console.

One module per page: tasks, failed_tasks (the dead-letter queue), schedules,
workers, and dashboard (the "Queues" entry: depth, lag, throughput, live
workers, pause and resume). What the buttons do lives in operations; who may
press them in permissions (one permission per action); the shared ModelAdmin
behaviour (403 for crafted actions, lean list queries, a paginator that
never counts a whole table, batch deletes) in base.

Importing this package registers the admins with django.contrib.admin's
site, as Django's admin autodiscovery does.
"""

from dbqueue.admin import dashboard, failed_tasks, schedules, tasks, workers

__all__ = ["dashboard", "failed_tasks", "schedules", "tasks", "workers"]
