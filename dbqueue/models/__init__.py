"""The broker: tasks, the dead-letter queue, schedules and the process registry.

QuerySets own selection (``Task.objects.ready(...)``); model methods own state
transitions (``task.mark_succeeded(...)``). Nothing else writes ``status``.
Every transition of a claimed task is guarded by the lease owner, so a worker
that lost its lease cannot overwrite what another worker recorded.
"""

from dbqueue.models.base import queue_db
from dbqueue.models.counter import Counter, CounterEvent
from dbqueue.models.failed_task import FailedTask, FailedTaskQuerySet
from dbqueue.models.queue_state import QueueState, QueueStateQuerySet
from dbqueue.models.schedule import (
    CatchUp,
    RunOutcome,
    Schedule,
    ScheduleQuerySet,
    ScheduleRun,
    ScheduleType,
)
from dbqueue.models.task import OnOrphan, Status, Task, TaskQuerySet, TaskTemplate
from dbqueue.models.worker import Role, Worker

__all__ = [
    "CatchUp",
    "Counter",
    "CounterEvent",
    "FailedTask",
    "FailedTaskQuerySet",
    "OnOrphan",
    "QueueState",
    "QueueStateQuerySet",
    "Role",
    "RunOutcome",
    "Schedule",
    "ScheduleQuerySet",
    "ScheduleRun",
    "ScheduleType",
    "Status",
    "Task",
    "TaskQuerySet",
    "TaskTemplate",
    "Worker",
    "queue_db",
]
