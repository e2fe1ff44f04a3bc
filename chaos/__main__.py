"""``python -m chaos``: the chaos run (default) or the long-life run, on one database or both.

    python -m chaos                       full form on PostgreSQL, then MariaDB/MySQL
    python -m chaos --short --db mysql    the short form CI runs, on one database
    python -m chaos longlife --tasks 100000

The database server URLs are DBQUEUE_TEST_POSTGRES_URL and
DBQUEUE_TEST_MYSQL_URL (defaults: the local servers). The full form restarts
the local database server during the run; the short form does only with
--restart-db or DBQUEUE_TEST_RESTART_POSTGRES=1 (set by CI, which owns it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

VENDORS = ("postgresql", "mysql")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("mode", nargs="?", choices=["run", "longlife"], default="run")
    parser.add_argument("--db", choices=VENDORS, help="one database (default: both)")
    parser.add_argument("--short", action="store_true", help="the CI form (<= 90 s)")
    parser.add_argument(
        "--tasks", type=int, help="tasks to enqueue (overrides the form)"
    )
    parser.add_argument("--seed", type=int, default=9, help="workload and fault choice")
    parser.add_argument("--json", type=Path, help="where to write the result")
    restart = parser.add_mutually_exclusive_group()
    restart.add_argument(
        "--restart-db", dest="restart_db", action="store_true", default=None
    )
    restart.add_argument("--no-restart-db", dest="restart_db", action="store_false")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.db is None:
        worst = 0
        for vendor in VENDORS:
            code = subprocess.run(
                [sys.executable, "-m", "chaos", *argv, "--db", vendor], check=False
            ).returncode
            worst = max(worst, code)
        return worst
    from chaos import servers

    url = servers.URLS[args.db]
    os.environ["DJANGO_SETTINGS_MODULE"] = "chaos.settings"
    os.environ["DBQUEUE_CHAOS_DATABASE_URL"] = url
    os.environ.pop("DBQUEUE_CHAOS_DATABASE_NAME", None)
    import django

    django.setup()
    servers.ensure_running(args.db)
    if args.mode == "longlife":
        from chaos import longlife

        return longlife.main(args.db, url, args.tasks, args.short, args.json)
    return run(args, url)


def run(args: argparse.Namespace, url: str) -> int:
    import dataclasses

    from chaos import report, runner, servers

    plan = runner.SHORT if args.short else runner.FULL
    if args.tasks:
        plan = dataclasses.replace(plan, tasks=args.tasks)
    restart_db = args.restart_db
    if restart_db is None:
        restart_db = (
            not args.short or os.environ.get("DBQUEUE_TEST_RESTART_POSTGRES") == "1"
        )
    if restart_db and not servers.can_restart(args.db):
        print(
            f"chaos: cannot restart the local {args.db} server here; skipping that fault"
        )
        restart_db = False
    print(
        f"chaos: {plan.form} form on {args.db}: {plan.tasks} tasks, "
        f"{plan.clusters} clusters x {plan.workers} workers",
        flush=True,
    )
    chaos_run = runner.Run(
        args.db, plan, restart_db=restart_db, seed=args.seed, url=url
    )
    try:
        result = chaos_run.execute()
    finally:
        servers.ensure_running(args.db)
    path = (
        args.json
        or Path(tempfile.gettempdir()) / f"dbqueue-chaos-{args.db}-{plan.form}.json"
    )
    report.write_json(result, path)
    print(report.table(result))
    print(f"result: {path}")
    if report.passed(result):
        shutil.rmtree(chaos_run.logs, ignore_errors=True)
        return 0
    print(f"cluster logs kept in {chaos_run.logs}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
