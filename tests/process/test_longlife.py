"""Long life, short form: a worker's memory and connections stay flat over many tasks.

`python -m chaos longlife --short` runs one qcluster worker through 3,000
quick tasks on a throwaway database while sampling the worker's resident
memory and the connections open to the database. `make longlife` runs
100,000. The tolerance is chaos.longlife.RSS_TOLERANCE_MIB (5 MiB) between
the warmed-up start (10 % of the tasks) and the end, and no new connection.
"""

import json

import pytest

from tests.conftest import run_chaos

pytestmark = [pytest.mark.slow, pytest.mark.vendor("postgresql", "mysql")]

RSS_TOLERANCE_MIB = 5.0  # as chaos.longlife.RSS_TOLERANCE_MIB
SHORT_TASKS = 3000  # as chaos.longlife.SHORT_TASKS


def test_a_worker_keeps_flat_memory_and_connections_over_many_tasks(tmp_path):
    out = tmp_path / "longlife.json"
    code, report = run_chaos("longlife", "--short", json_path=out, timeout=300)
    assert code == 0, report
    result = json.loads(out.read_text())
    assert result["tasks"] == SHORT_TASKS
    assert result["samples"][-1]["done"] == SHORT_TASKS, report
    assert len(result["samples"]) >= 5, report
    assert result["worker_rss_growth_mib"] <= RSS_TOLERANCE_MIB, report
    assert result["supervisor_rss_growth_mib"] <= RSS_TOLERANCE_MIB, report
    # Supervisor, worker and scheduler: one connection each, the whole time.
    assert result["connections_min"] == result["connections_max"] <= 3, report
