"""The chaos runner's short form, on every change: nothing lost, nothing stuck.

`python -m chaos --short` (see chaos/) runs three real qclusters on a
throwaway database of this server while it SIGKILLs workers and a whole
cluster, kills connections from the server side, rolls a SIGTERM deploy
through every cluster and (with DBQUEUE_TEST_RESTART_POSTGRES=1, as CI sets)
restarts the server. Its workload raises, exits the process, runs past its
timeout and hogs memory on purpose. About a minute per database; `make chaos`
runs the full form.
"""

import json
import os
from collections import Counter

import pytest

from tests.conftest import run_chaos

pytestmark = [pytest.mark.slow, pytest.mark.vendor("postgresql", "mysql")]

RUN_TIMEOUT = 240  # seconds; the run itself takes about 60


def test_the_short_chaos_run_loses_nothing_and_runs_twice_only_at_kills(tmp_path):
    out = tmp_path / "result.json"
    code, report = run_chaos("--short", json_path=out, timeout=RUN_TIMEOUT)
    result = json.loads(out.read_text())
    assert result["lost"] == [], report
    assert result["stuck"] == [], report
    assert result["unexplained_duplicates"] == [], report
    assert result["unexpected"] == [], report
    assert result["hung_clusters"] == [], report
    assert result["succeeded"] + result["dead_lettered"] == result["enqueued"], report
    assert result["dead_lettered"] == result["dead_lettered_expected"] > 0, report
    faults = Counter(fault["name"] for fault in result["faults"])
    expected = {"kill_worker", "kill_cluster", "kill_connections", "rolling_restart"}
    if os.environ.get("DBQUEUE_TEST_RESTART_POSTGRES") == "1":
        expected.add("restart_database")
    assert set(faults) == expected, report
    assert all(fault["recovery"] is not None for fault in result["faults"]), report
    # The kills landed on running tasks, so the duplicate check had something to check.
    assert any("running a task" in f["detail"] for f in result["faults"]), report
    # Every kind of task was in the workload, the misbehaving ones included.
    assert set(result["kinds"]) == {
        "ok",
        "slow",
        "hog",
        "raise",
        "exit",
        "timeout",
        "stubborn",
    }, report
    assert code == 0, report
