"""Run every workload on every system and collect the figures (see bench.__main__)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import history, measure, servers, systems
from bench.measure import BenchError, tail
from bench.processes import Cluster
from bench.systems import System

RESULTS = Path(__file__).resolve().parent / "results"
LOGS = RESULTS / "logs"


@dataclasses.dataclass
class Plan:
    """How much work each workload does; FULL is `make bench`, SHORT is `make bench-short`."""

    name: str
    runs: int
    tasks: int  # queued tasks per drain, and per bulk enqueue
    single: int  # most tasks enqueued one per transaction...
    single_seconds: float  # ...or for at most this long
    concurrent: int  # tasks enqueued one per transaction while a cluster drains
    probes: int  # latency probes per run
    idle_seconds: float
    drain_deadline: float  # seconds a drain is measured at most; slower ones report their rate so far
    history_rows: int  # finished rows for the claim-cost comparison
    claim_queued: int = 2000
    claims: int = 500
    profile: bool = False


# The issue's own form is 3 runs and 10,000,000 history rows (`--runs 3
# --history-rows 10000000`, about 90 minutes on 2 cores); the default is one
# run and a million rows, so `make bench` fits in about half an hour.
FULL = Plan(
    name="full",
    runs=1,
    tasks=20_000,
    single=5_000,
    single_seconds=6.0,
    concurrent=3_000,
    probes=100,
    idle_seconds=15.0,
    drain_deadline=30.0,
    history_rows=1_000_000,
    profile=True,
)
SHORT = Plan(
    name="short",
    runs=1,
    tasks=3_000,
    single=1_000,
    single_seconds=3.0,
    concurrent=1_000,
    probes=30,
    idle_seconds=6.0,
    drain_deadline=20.0,
    history_rows=50_000,
    claim_queued=500,
    claims=200,
)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `values`."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


class Runner(measure.Measurements):
    def __init__(self, plan: Plan, chosen: list[System]) -> None:
        self.plan = plan
        self.systems = chosen
        self.servers: dict[str, object] = {}
        self.templates: dict[str, str] = {}
        self.results: dict[str, dict] = {
            s.key: {
                "label": s.label,
                "peer": s.peer,
                "server": s.server,
                "versions": s.versions(),
                "notes": s.notes,
                "runs": [],
                "errors": {},
                "skipped": s.missing(),
            }
            for s in chosen
        }

    # -- plumbing ---------------------------------------------------------

    def server(self, system: System):
        if system.server not in self.servers:
            self.servers[system.server] = {
                "postgresql": servers.Postgres,
                "mysql": servers.MariaDB,
                "sqlite": servers.SQLite,
            }[system.server]()
        return self.servers[system.server]

    def env(
        self, system: System, url: str, workers: int | None = None
    ) -> dict[str, str]:
        env = {
            **os.environ,
            "PYTHONPATH": str(systems.ROOT),
            "PYTHONUNBUFFERED": "1",
            "DBQUEUE_BENCH_DATABASE_URL": url,
            **system.env,
        }
        if system.settings:
            env["DJANGO_SETTINGS_MODULE"] = system.settings
        if workers is not None and system.workers_env:
            env[system.workers_env] = str(workers)
        if system.schema == "pgqueuer":
            env["PGDSN"] = url
        return env

    def run_command(
        self,
        system: System,
        url: str,
        command: list[str],
        *,
        label: str = "",
        timeout: float = 600,
    ) -> str:
        """Run `command` in the system's environment; return its output, or raise BenchError."""
        label = label or " ".join(command[1:])
        try:
            done = subprocess.run(
                command,
                cwd=systems.ROOT,
                env=self.env(system, url),
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"`{label}` took over {timeout:.0f}s") from exc
        if done.returncode != 0:
            raise BenchError(
                f"`{label}` exited {done.returncode}: "
                + tail(done.stderr or done.stdout)
            )
        return done.stdout

    def client(
        self, system: System, url: str, action: str, *args: str, timeout: float = 900
    ) -> dict:
        out = self.run_command(
            system,
            url,
            [sys.executable, "-m", "bench.client", system.client, action, *args],
            label=f"bench.client {system.client} {action}",
            timeout=timeout,
        )
        return json.loads(out.strip().splitlines()[-1])

    def prepare(self, system: System) -> None:
        """Build the system's schema once, into a template database."""
        server = self.server(system)
        template = f"{servers.PREFIX}{system.key.replace('-', '_')}"
        if server.vendor != "mysql":  # MariaDB empties the one database instead
            template += "_tpl"
        url = server.create(template)
        if system.schema == "migrate":
            self.run_command(system, url, [*systems.MANAGE, "migrate", "-v", "0"])
        elif system.schema == "floor":
            self.client(system, url, "schema")
        elif system.schema == "pgqueuer":
            self.run_command(system, url, [str(systems.BIN / "pgq"), "install"])
        self.templates[system.key] = template

    def fresh(self, system: System) -> tuple[str, str]:
        """A database with the system's schema and no rows: (name, url)."""
        template = self.templates[system.key]
        name = (
            template.removesuffix("_tpl") + "_run"
            if template.endswith("_tpl")
            else template
        )
        return name, self.server(system).create(name, template=template)

    def start(
        self,
        system: System,
        url: str,
        workers: int,
        tag: str,
        extra_env: dict[str, str] | None = None,
    ) -> Cluster:
        LOGS.mkdir(parents=True, exist_ok=True)
        return Cluster(
            system.workers(workers),
            {**self.env(system, url, workers), **(extra_env or {})},
            systems.ROOT,
            LOGS / f"{system.key}-{tag}.log",
        )

    def count(self, connection, system: System) -> int:
        cursor = connection.cursor()
        cursor.execute(system.pending_sql)
        value = int(cursor.fetchone()[0])
        cursor.close()
        return value

    # -- workloads (the measurements themselves are in bench.measure) --------

    def attempt(self, system: System, workload: str, action) -> None:
        try:
            action()
        except Exception as exc:  # a failed workload is reported, never fatal
            message = (
                str(exc)
                if isinstance(exc, BenchError)
                else f"{type(exc).__name__}: {exc}"
            )
            self.results[system.key]["errors"].setdefault(workload, message)
            print(
                f"    {workload}: ERROR {message.splitlines()[0] if message else ''}",
                flush=True,
            )

    def run_system(self, system: System, number: int) -> dict:
        plan, run = self.plan, {}
        wanted = set(system.workloads)
        tag = f"run{number}"

        if systems.SINGLE in wanted:

            def single() -> None:
                _, url = self.fresh(system)
                r = self.client(
                    system,
                    url,
                    "single",
                    "--count",
                    str(plan.single),
                    "--seconds",
                    str(plan.single_seconds),
                )
                run[systems.SINGLE] = r["count"] / r["seconds"]

            self.attempt(system, systems.SINGLE, single)

        for workers, key in ((1, systems.DRAIN_1), (2, systems.DRAIN_2)):
            if key not in wanted and not (workers == 1 and systems.BULK in wanted):
                continue

            def drain(workers: int = workers, key: str = key) -> None:
                name, url = self.fresh(system)
                r = self.client(system, url, "bulk", "--count", str(plan.tasks))
                run.setdefault("bulk_samples", []).append(plan.tasks / r["seconds"])
                if key not in wanted:
                    return
                cluster = self.start(system, url, workers, f"{tag}-{key}")
                try:
                    measured = self.drain(system, name, cluster)
                    run[key] = measured["rate"]
                    run[key + "_detail"] = measured
                    if workers == 2:
                        if measured["left"]:
                            self.purge(system, name, cluster)
                        self.after_drain(system, name, url, cluster, run)
                finally:
                    cluster.stop()

            self.attempt(system, key, drain)
        if run.get("bulk_samples"):
            run[systems.BULK] = statistics.median(run["bulk_samples"])
        return run

    def after_drain(
        self, system: System, name: str, url: str, cluster: Cluster, run: dict
    ) -> None:
        """The 2-worker cluster is warm and idle: memory, idle load, latency, concurrent drain."""
        wanted = set(system.workloads)
        if systems.MEMORY in wanted:
            time.sleep(1.0)
            run[systems.MEMORY] = cluster.pss_mib()
            run["processes"] = len(cluster.pids())
        if systems.IDLE in wanted and self.server(system).vendor == "postgresql":
            self.attempt(
                system,
                systems.IDLE,
                lambda: run.__setitem__(systems.IDLE, self.idle(system, name)),
            )
        if systems.LATENCY in wanted:

            def latency() -> None:
                r = self.client(
                    system,
                    url,
                    "probes",
                    "--count",
                    str(self.plan.probes),
                    timeout=self.plan.probes * 12 + 60,
                )
                run["latencies_ms"] = r["latencies_ms"]
                run["lost"] = r["lost"]

            self.attempt(system, systems.LATENCY, latency)
        if systems.CONCURRENT in wanted:

            def concurrent() -> None:
                r = self.concurrent(system, url, name, cluster)
                run[systems.CONCURRENT] = r["rate"]
                run["concurrent_enqueue"] = r["enqueue_rate"]

            self.attempt(system, systems.CONCURRENT, concurrent)

    # -- the whole run ---------------------------------------------------------

    def run(self) -> dict:
        started = time.time()
        if LOGS.exists():
            shutil.rmtree(LOGS)
        for vendor in {s.server for s in self.systems}:
            try:
                self.server(
                    next(s for s in self.systems if s.server == vendor)
                ).drop_leftovers()
            except Exception as exc:
                for s in self.systems:
                    if s.server == vendor:
                        self.results[s.key]["skipped"] = (
                            f"{vendor} server unavailable: {exc}"
                        )
        claim_cost: dict | None = None
        try:
            for system in self.systems:
                if self.results[system.key]["skipped"]:
                    continue
                print(f"== preparing {system.label}", flush=True)
                try:
                    self.prepare(system)
                except Exception as exc:
                    self.results[system.key]["skipped"] = f"setup failed: {exc}"
                    print(f"   setup failed: {exc}", flush=True)
            for number in range(1, self.plan.runs + 1):
                for system in self.systems:
                    if self.results[system.key]["skipped"]:
                        continue
                    print(
                        f"== run {number}/{self.plan.runs}: {system.label}", flush=True
                    )
                    run = self.run_system(system, number)
                    self.results[system.key]["runs"].append(run)
                    print("   " + _brief(run), flush=True)
            dbqueue = next((s for s in self.systems if s.key == "dbqueue"), None)
            if dbqueue and not self.results["dbqueue"]["skipped"]:
                print(
                    f"== claim cost: 0 and {self.plan.history_rows:,} finished rows",
                    flush=True,
                )
                try:
                    claim_cost = history.claim_cost(self, dbqueue)
                except Exception as exc:
                    claim_cost = {"error": str(exc)}
            profile = None
            if self.plan.profile and dbqueue and not self.results["dbqueue"]["skipped"]:
                from bench import profiling

                print("== profiling dbqueue's drain with py-spy", flush=True)
                try:
                    profile = profiling.profile(self, dbqueue)
                except Exception as exc:
                    profile = {"error": str(exc)}
        finally:
            self.cleanup()
        return {
            "started": started,
            "finished": time.time(),
            "plan": dataclasses.asdict(self.plan),
            "systems": self.results,
            "claim_cost": claim_cost,
            "profile": profile,
        }

    def cleanup(self) -> None:
        for key, template in self.templates.items():
            system = next(s for s in self.systems if s.key == key)
            server = self.server(system)
            try:
                if template.endswith("_tpl"):
                    server.drop(template.removesuffix("_tpl") + "_run")
                server.drop(template)
            except Exception as exc:
                print(f"could not drop {template}: {exc}", flush=True)
        sqlite = self.servers.get("sqlite")
        if sqlite is not None:
            sqlite.remove_folder()


def _brief(run: dict) -> str:
    parts = []
    for key, value in run.items():
        if isinstance(value, float):
            parts.append(f"{key}={value:,.1f}")
    return "  ".join(parts)
