"""Counting a run: every enqueued task against the ledger, and the table the runner prints.

A task ends in exactly one of four places:

- succeeded: SUCCEEDED, with at least one execution in the ledger;
- dead-lettered: FAILED, with its FailedTask row;
- stuck: still QUEUED or RUNNING when the run ended (must be 0);
- lost: anything else: its row gone, SUCCEEDED without ever running,
  FAILED without a dead letter (must be 0).

A duplicate is a task that ran more often than its kind allows (once for one
that succeeds, `max_attempts` times for one that always fails). It is
explained only when its attempt log shows the process running it died: one
the runner killed (SIGKILL, or the supervisor's kill at the end of a
SIGTERM's grace period), or one that ended itself by running an `exit` task
(a worker stores a batch's successes together, so a success that returned
just before a later task called os._exit runs again): "twice only when the
process running it died". A run that failed on a database error explains a
second one too: when the runner kills connections or restarts the server, a
task's own ledger INSERT can commit just before its connection drops, and
the task raises on the lost answer; it is retried, as any failure is, and
the ledger holds both runs.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from chaos.models import Execution
from chaos.workload import Kind
from dbqueue.models import FailedTask, Status, Task

KILLED_CLASSES = {
    "dbqueue.exceptions.WorkerLost",
    "dbqueue.exceptions.ShutdownInterrupted",
}
DATABASE_ERROR_CLASSES = {
    "django.db.utils.OperationalError",
    "django.db.utils.InterfaceError",
}


@dataclasses.dataclass
class Fault:
    number: int
    name: str
    detail: str
    at: float  # seconds into the run
    recovery: float | None = None  # seconds until work resumed; None: it never did

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def pid_of(worker_id: str) -> int | None:
    parts = worker_id.split(":")
    return int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None


def _evidence(task: Task) -> dict[str, Any]:
    """The task's id, its attempt log and the ledger's executions of it (pid and time)."""
    return {
        "id": str(task.id),
        "attempt_log": task.attempt_log,
        "ran_in": [
            [pid, created.isoformat()]
            for pid, created in Execution.objects.filter(key=task.name)
            .order_by("created_at")
            .values_list("pid", "created_at")
        ],
    }


def count(items: list[tuple[str, Kind]], killed: dict[int, int]) -> dict[str, Any]:
    """Count the outcome of every task; `killed` maps each pid the runner killed to its fault number."""
    kinds = dict(items)
    executions = Counter(Execution.objects.values_list("key", flat=True))
    # Processes that died: killed by the runner, or ended by an exit task.
    died = set(killed) | set(
        Execution.objects.filter(kind="exit").values_list("pid", flat=True)
    )
    rows = {
        task.name: task
        for task in Task.objects.only(
            "id", "name", "status", "attempts", "max_attempts", "attempt_log"
        )
    }
    dead = set(FailedTask.objects.values_list("task_id", flat=True))
    outcome: Counter[str] = Counter()
    lost, stuck, unexpected, duplicates = [], [], [], []
    for key, kind in items:
        task = rows.get(key)
        ran = executions[key]
        if task is None:
            lost.append({"key": key, "why": "its row is gone"})
            continue
        if task.status in (Status.QUEUED, Status.RUNNING):
            stuck.append({"key": key, "status": task.status, "id": str(task.id)})
            continue
        if task.status == Status.SUCCEEDED and ran:
            outcome["succeeded"] += 1
        elif task.status == Status.FAILED and task.id in dead:
            outcome["dead_lettered"] += 1
        else:
            lost.append({"key": key, "why": f"{task.status} after {ran} executions"})
            continue
        if (task.status == Status.SUCCEEDED) != kind.succeeds:
            unexpected.append(
                {
                    "key": key,
                    "kind": kind.name,
                    "status": task.status,
                    "error": task.error,
                }
            )
        allowed = 1 if kind.succeeds else kind.max_attempts
        if ran > allowed:
            kills: list[int | str] = [
                killed.get(pid, "exit")
                for entry in task.attempt_log
                if entry.get("exception_class") in KILLED_CLASSES
                and (pid := pid_of(str(entry.get("worker_id", "")))) in died
            ]
            kills += [
                "database error"
                for entry in task.attempt_log
                if entry.get("exception_class") in DATABASE_ERROR_CLASSES
            ]
            explained = len(kills) >= ran - allowed
            duplicates.append(
                {
                    "key": key,
                    "kind": kind.name,
                    "executions": ran,
                    "allowed": allowed,
                    "running_at_faults": kills,
                    "explained": explained,
                    # What it takes to find out why, where no kill says.
                    **({} if explained else _evidence(task)),
                }
            )
    missing_ledger = set(executions) - set(kinds)
    return {
        "enqueued": len(items),
        "kinds": dict(Counter(kind.name for _, kind in items)),
        "succeeded": outcome["succeeded"],
        "dead_lettered": outcome["dead_lettered"],
        "dead_lettered_expected": sum(not k.succeeds for _, k in items),
        "lost": lost,
        "stuck": stuck,
        "unexpected": unexpected,
        "duplicates": duplicates,
        "unexplained_duplicates": [d for d in duplicates if not d["explained"]],
        "stray_ledger_keys": sorted(missing_ledger),
    }


def passed(result: dict[str, Any]) -> bool:
    return not (
        result["lost"]
        or result["stuck"]
        or result["unexplained_duplicates"]
        or result["unexpected"]
        or result["stray_ledger_keys"]
        or result["hung_clusters"]
        or any(f["recovery"] is None for f in result["faults"])
    )


def table(result: dict[str, Any]) -> str:
    """The one table the runner prints."""
    rows = [
        ("database", f"{result['vendor']} ({result['form']} form)"),
        ("clusters x workers", f"{result['clusters']} x {result['workers']}"),
        ("run time", f"{result['duration']:.0f} s"),
        ("tasks enqueued", result["enqueued"]),
        ("succeeded", result["succeeded"]),
        (
            "dead-lettered",
            f"{result['dead_lettered']} (expected {result['dead_lettered_expected']}: "
            "raise, os._exit, timeout)",
        ),
        ("lost (must be 0)", len(result["lost"])),
        (
            "executed more than once",
            f"{len(result['duplicates'])} "
            f"({len(result['duplicates']) - len(result['unexplained_duplicates'])} "
            "explained by a kill or a database error, "
            f"{len(result['unexplained_duplicates'])} not)",
        ),
        ("unexpected outcomes", len(result["unexpected"])),
        ("stuck rows at the end (must be 0)", len(result["stuck"])),
        ("clusters that did not stop on SIGTERM", len(result["hung_clusters"])),
    ]
    by_name: dict[str, list[Fault]] = {}
    for fault in result["faults"]:
        by_name.setdefault(fault["name"], []).append(Fault(**fault))
    for name, faults in by_name.items():
        times = [f.recovery for f in faults if f.recovery is not None]
        never = len(faults) - len(times)
        text = (
            f"x{len(faults)}: median {statistics.median(times):.1f} s, max {max(times):.1f} s"
            if times
            else f"x{len(faults)}"
        )
        if never:
            text += f", {never} never recovered"
        rows.append((f"recovery after {name}", text))
    rows.append(("verdict", "PASS" if passed(result) else "FAIL"))
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    rule = "-" * max(len(line) for line in lines)
    return "\n".join([rule, *lines, rule])


def write_json(result: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
