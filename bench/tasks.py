from dbqueue import task


@task
def noop():
    """The benchmark task: it measures dbqueue, not the work."""
