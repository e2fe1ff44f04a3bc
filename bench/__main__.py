"""dbqueue's benchmark: dbqueue beside its peers, on the same server, in one run.

    python -m bench            the full form (`make bench`): every system, 1 run
    python -m bench --runs 3 --history-rows 10000000   the issue's figures (~90 min)
    python -m bench --short    the CI form (`make bench-short`): dbqueue and the floor
    python -m bench --only dbqueue,floor-50 --tasks 5000 --runs 1   while developing

Prints one table (absolute figures, then dbqueue ÷ each other system, then
issue 8's targets) and writes the same to bench/results/latest.json (or
latest-short.json). Numbers are printed, never asserted; the exit status is 1
only when a workload of dbqueue or the floor crashed. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

from bench import report, runner, systems


def machine(chosen: list[systems.System]) -> dict:
    info: dict = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average": os.getloadavg(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    from bench import servers

    vendors = {s.server for s in chosen}
    try:
        pg = servers.Postgres()
        info["postgresql"] = pg.version()
        info["postgresql_settings"] = {
            name: pg.setting(name)
            for name in (
                "shared_buffers",
                "synchronous_commit",
                "fsync",
                "max_connections",
            )
        }
    except Exception as exc:
        info["postgresql"] = f"unavailable: {exc}"
    if "mysql" in vendors:
        try:
            info["mariadb"] = servers.MariaDB().version()
        except Exception as exc:
            info["mariadb"] = f"unavailable: {exc}"
    if "sqlite" in vendors:
        import sqlite3

        info["sqlite"] = sqlite3.sqlite_version
    return info


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--short",
        action="store_true",
        help="the CI form: fewer tasks, dbqueue and the floor",
    )
    parser.add_argument(
        "--only",
        help="comma-separated system keys (dbqueue, floor-1, floor-50, django-q2, ...)",
    )
    parser.add_argument("--runs", type=int)
    parser.add_argument(
        "--tasks", type=int, help="queued tasks per drain and per bulk enqueue"
    )
    parser.add_argument("--probes", type=int, help="latency probes per run")
    parser.add_argument(
        "--history-rows", type=int, help="finished rows for the claim-cost comparison"
    )
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        help="profile dbqueue's drain with py-spy",
    )
    parser.add_argument("--output", type=Path, help="where to write the JSON")
    options = parser.parse_args()

    plan = runner.SHORT if options.short else runner.FULL
    overrides = {
        "runs": options.runs,
        "tasks": options.tasks,
        "probes": options.probes,
        "history_rows": options.history_rows,
        "profile": options.profile,
    }
    plan = dataclasses.replace(
        plan, **{k: v for k, v in overrides.items() if v is not None}
    )
    chosen = systems.short() if options.short else systems.full()
    if options.only:
        keys = {key.strip() for key in options.only.split(",")}
        everything = {s.key: s for s in systems.full()}
        unknown = keys - set(everything)
        if unknown:
            parser.error(
                f"unknown system(s) {', '.join(sorted(unknown))}; choose from {', '.join(everything)}"
            )
        chosen = [s for s in systems.full() if s.key in keys]

    print(
        f"dbqueue benchmark, {plan.name} form: {plan.runs} run(s), {plan.tasks:,} tasks per drain",
        flush=True,
    )
    info = machine(chosen)
    results = runner.Runner(plan, chosen).run()
    info["load_average_after"] = os.getloadavg()
    results["machine"] = info
    results["summaries"] = {
        key: report.summarise(system) for key, system in results["systems"].items()
    }
    results["ratios"] = report.ratios(results["summaries"])
    results["targets"] = report.targets(results["summaries"], results.get("claim_cost"))
    text = report.table(results)
    print()
    print(
        f"{info.get('cpu', '?')}, {info['cores']} cores, {info.get('memory_gib', '?')} GiB; "
        f"PostgreSQL {info.get('postgresql')}; Python {info['python']}; "
        f"load average {info['load_average'][0]:.2f} before, {info['load_average_after'][0]:.2f} after"
    )
    print(text)
    if results.get("profile"):
        from bench import profiling

        print()
        print(profiling.describe(results["profile"]))
    output = options.output or runner.RESULTS / (
        "latest-short.json" if options.short else "latest.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    results["table"] = text
    results["written"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
    output.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwritten to {output}")
    # A figure never fails the run, but a crashed workload in one of the
    # benchmark's own rows (dbqueue's, the floor's) is a regression that
    # must not pass quietly. A system skipped for want of a server says so
    # in the table; a peer that breaks is the peer's business.
    broken = {
        system.key: errors
        for system in chosen
        if not system.peer and (errors := results["systems"][system.key]["errors"])
    }
    for key, errors in broken.items():
        print(f"{key} failed: {errors}", file=sys.stderr)
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
