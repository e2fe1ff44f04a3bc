"""Django signals around a task's life.

Each is sent with ``send_robust`` outside the task's own error handling, so a
receiver that raises is logged and can neither fail a task that has not run
nor turn a success into a failure.

- ``task_enqueuing(sender=Task, task=...)``: before the row is written; the
  task is complete but unsaved.
- ``task_enqueued(sender=Task, task=...)``: after the row is written (inside the
  caller's transaction, if any).
- ``task_started(sender=Task, task=...)``: in the worker, before the call.
- ``task_finished(sender=Task, task=..., success=bool)``: after the outcome is stored.
- ``task_failed(sender=Task, task=..., exception=...)``: after a failed attempt is
  stored, whether it will be retried or was dead-lettered (see ``task.status``).
- ``task_retrying(sender=Task, task=..., exception=..., run_after=...)``: after a
  failed attempt was queued again for ``run_after``.
- ``task_dead_lettered(sender=Task, task=..., failed_task=..., exception=...)``:
  after a task out of attempts was copied to the dead-letter queue.

Django-Q's ``pre_enqueue``, ``pre_execute`` and ``post_execute`` are
``task_enqueuing``, ``task_started`` and ``task_finished`` here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger(__name__)

task_enqueuing = Signal()
task_enqueued = Signal()
task_started = Signal()
task_finished = Signal()
task_failed = Signal()
task_retrying = Signal()
task_dead_lettered = Signal()


def send_each(signal: Signal, sender: Any, tasks: Iterable[Any]) -> None:
    """send() `signal` once per task (as ``task=``), skipping the loop when nobody listens."""
    if signal.has_listeners(sender):
        for task in tasks:
            send(signal, sender, task=task)


def send(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send `signal` to every receiver, logging (not raising) their errors."""
    for receiver, response in signal.send_robust(sender=sender, **kwargs):
        if isinstance(response, Exception):
            logger.error(
                "Signal receiver %r raised %s: %s",
                receiver,
                type(response).__name__,
                response,
                exc_info=(type(response), response, response.__traceback__),
            )
