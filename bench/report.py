"""Turn the runner's results into the summary, the ratios, the targets and the table."""

from __future__ import annotations

import statistics

from bench.runner import percentile

# (key, header, better): the table's columns, in order.
COLUMNS = [
    ("enqueue_single", "enqueue 1/txn", "higher"),
    ("enqueue_bulk", "bulk enqueue", "higher"),
    ("drain_1", "drain 1w", "higher"),
    ("drain_2", "drain 2w", "higher"),
    ("drain_concurrent", "drain+enq 2w", "higher"),
    ("latency_p50", "start p50 ms", "lower"),
    ("latency_p99", "start p99 ms", "lower"),
    ("memory", "PSS MiB 2w", "lower"),
    ("idle", "idle xact/s", "lower"),
]
RATES = {"enqueue_single", "enqueue_bulk", "drain_1", "drain_2", "drain_concurrent"}


def summarise(system: dict) -> dict:
    """Medians over the runs; latency percentiles over every probe of every run."""
    runs = system["runs"]
    summary: dict = {}
    for key in (
        "enqueue_single",
        "enqueue_bulk",
        "drain_1",
        "drain_2",
        "drain_concurrent",
        "memory",
        "idle",
        "concurrent_enqueue",
    ):
        values = [run[key] for run in runs if key in run]
        if values:
            summary[key] = statistics.median(values)
    for key in ("drain_1", "drain_2"):
        details = [run[key + "_detail"] for run in runs if key + "_detail" in run]
        spent = [
            d["transactions_per_task"] for d in details if "transactions_per_task" in d
        ]
        if spent:
            summary[key + "_transactions_per_task"] = statistics.median(spent)
        if any(d["left"] for d in details):
            summary[key + "_partial"] = True
        if any(d["coarse"] for d in details):
            summary[key + "_coarse"] = True
    latencies = [value for run in runs for value in run.get("latencies_ms", [])]
    if latencies:
        summary["latency_p50"] = percentile(latencies, 0.50)
        summary["latency_p99"] = percentile(latencies, 0.99)
        summary["latency_probes"] = len(latencies)
        summary["latency_lost"] = sum(run.get("lost", 0) for run in runs)
    return summary


def ratios(summaries: dict[str, dict], base: str = "dbqueue") -> dict[str, dict]:
    """dbqueue ÷ each other system, column by column, where both have a figure."""
    mine = summaries.get(base, {})
    found = {}
    for key, summary in summaries.items():
        if key == base or key.startswith(base + "-"):
            continue
        row = {
            column: mine[column] / summary[column]
            for column, _, _ in COLUMNS
            if column in mine and summary.get(column)
        }
        if row:
            found[key] = row
    # The floor's enqueue is the single-row floor's; its bulk is the best of executemany and COPY.
    floor = {k: v for k, v in summaries.items() if k.startswith("floor-")}
    if floor and mine:
        best = {}
        for column, _, better in COLUMNS:
            values = [s[column] for s in floor.values() if column in s]
            if values and column in mine:
                best[column] = mine[column] / (
                    max(values) if better == "higher" else min(values)
                )
        found["floor"] = best
    return found


def targets(summaries: dict[str, dict], claim_cost: dict | None) -> list[dict]:
    """Issue 8's targets, each with the measured figure: printed, never asserted."""
    db = summaries.get("dbqueue", {})
    floor = summaries.get("floor-1", {})
    checks = []

    def add(
        name: str, value: float | None, goal: float, higher: bool, unit: str
    ) -> None:
        met = None if value is None else (value >= goal if higher else value <= goal)
        checks.append(
            {
                "target": name,
                "value": value,
                "goal": goal,
                "higher": higher,
                "unit": unit,
                "met": met,
            }
        )

    add("drain, 2 workers (PostgreSQL)", db.get("drain_2"), 10_000, True, "tasks/s")
    scale = (
        db["drain_2"] / db["drain_1"]
        if db.get("drain_1") and db.get("drain_2")
        else None
    )
    add("2 workers ÷ 1 worker", scale, 1.6, True, "x")
    share = (
        db["enqueue_single"] / floor["enqueue_single"]
        if db.get("enqueue_single") and floor.get("enqueue_single")
        else None
    )
    add("enqueue 1/txn ÷ single-INSERT floor", share, 0.85, True, "x")
    prepared = summaries.get("dbqueue-prepared", {})
    add(
        "  the same, OPTIONS prepare_threshold=5",
        prepared["enqueue_single"] / floor["enqueue_single"]
        if prepared.get("enqueue_single") and floor.get("enqueue_single")
        else None,
        0.85,
        True,
        "x",
    )
    add("bulk enqueue", db.get("enqueue_bulk"), 60_000, True, "tasks/s")
    add("start latency p50", db.get("latency_p50"), 3.0, False, "ms")
    add("start latency p99", db.get("latency_p99"), 20.0, False, "ms")
    add("lost wake-ups (probes over 10 s)", db.get("latency_lost"), 0, False, "")
    add("cluster PSS, 2 workers", db.get("memory"), 70.0, False, "MiB")
    add("idle cluster", db.get("idle"), 1.0, False, "transactions/s")
    ratio = claim_cost.get("ratio") if claim_cost else None
    add("claim cost, full history ÷ empty", ratio, 1.2, False, "x")
    add(
        "MariaDB drain, 2 workers",
        summaries.get("dbqueue-mysql", {}).get("drain_2"),
        5_000,
        True,
        "tasks/s",
    )
    add(
        "SQLite drain, 1 worker",
        summaries.get("dbqueue-sqlite", {}).get("drain_1"),
        2_000,
        True,
        "tasks/s",
    )
    return checks


def _figure(column: str, value: float | None) -> str:
    if value is None:
        return "—"
    if column in RATES:
        return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    if column == "memory":
        return f"{value:,.0f}"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def table(results: dict) -> str:
    systems = results["systems"]
    summaries = results["summaries"]
    lines = []
    name_width = max(len(s["label"]) for s in systems.values()) + 2
    widths = [max(len(header), 9) for _, header, _ in COLUMNS]
    header = "system".ljust(name_width) + "  ".join(
        h.rjust(w) for (_, h, _), w in zip(COLUMNS, widths, strict=True)
    )
    lines += [header, "-" * len(header)]
    for key, system in systems.items():
        if system["skipped"]:
            lines.append(
                system["label"].ljust(name_width) + f"not run: {system['skipped']}"
            )
            continue
        cells = []
        summary = summaries[key]
        for (column, _, _), width in zip(COLUMNS, widths, strict=True):
            text = _figure(column, summary.get(column))
            if column in system["errors"] or (
                column.startswith("latency") and "latency" in system["errors"]
            ):
                text = "error"
            if summary.get(column + "_partial"):
                text += "*"
            elif summary.get(column + "_coarse"):
                text += "~"
            cells.append(text.rjust(width))
        lines.append(system["label"].ljust(name_width) + "  ".join(cells))
    lines.append("")
    lines.append(
        "dbqueue ÷ system (rates: above 1 is dbqueue ahead; latency, memory, idle: below 1 is dbqueue ahead)"
    )
    for key, row in results["ratios"].items():
        label = systems[key]["label"] if key in systems else "floor (best of the two)"
        cells = [
            (f"{row[c]:.2f}x" if c in row else "—").rjust(w)
            for (c, _, _), w in zip(COLUMNS, widths, strict=True)
        ]
        lines.append(label.ljust(name_width) + "  ".join(cells))
    notes = [
        "* the drain hit its deadline; the rate is over the tasks drained until then",
        "~ the drain was too quick for two counts in flight; the rate is coarse",
    ]
    lines.append("")
    lines += notes
    spent = [
        f"{systems[key]['label']} {summary['drain_2_transactions_per_task']:.2f}"
        for key, summary in summaries.items()
        if "drain_2_transactions_per_task" in summary
    ]
    if spent:
        lines.append(
            "transactions per task while 2 workers drain (pg_stat_database): "
            + "; ".join(spent)
        )
    claim = results.get("claim_cost")
    if claim and "error" not in claim:
        lines.append(
            f"claim cost (claim() of 1 task, median of {results['plan']['claims']} claims): "
            f"{claim['empty_ms']:.2f} ms with no history, {claim['full_ms']:.2f} ms with "
            f"{claim['history_rows']:,} finished rows ({claim['ratio']:.2f}x)"
        )
    elif claim:
        lines.append(f"claim cost: error: {claim['error']}")
    lines.append("")
    lines.append("targets (issue 8), dbqueue on PostgreSQL unless named:")
    for check in results["targets"]:
        value = "—" if check["value"] is None else f"{check['value']:,.2f}"
        sign = "≥" if check["higher"] else "≤"
        state = {True: "met", False: "MISSED", None: "not measured"}[check["met"]]
        lines.append(
            f"  {check['target']:<38} {value:>12} {check['unit']:<15} goal {sign} {check['goal']:,}  {state}"
        )
    errors = [
        (systems[k]["label"], w, m)
        for k, s in systems.items()
        for w, m in s["errors"].items()
    ]
    if errors:
        lines.append("")
        lines.append("errors:")
        for label, workload, message in errors:
            lines.append(
                f"  {label} / {workload}: {message.splitlines()[0] if message else ''}"
            )
    lines.append("")
    lines.append("what ran:")
    for system in systems.values():
        extra = f"; {system['notes']}" if system["notes"] else ""
        lines.append(f"  {system['label']}: {system['versions']}{extra}")
    return "\n".join(lines)
