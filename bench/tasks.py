from bench import probe as probe_module
from dbqueue import task


@task
def noop():
    """The benchmark task: it measures dbqueue, not the work."""


@task
def probe(probe_id, port):
    """Report this task's start time to the benchmark (see bench.probe)."""
    probe_module.send(probe_id, port)
