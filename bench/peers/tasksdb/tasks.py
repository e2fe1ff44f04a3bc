try:
    from django.tasks import task
except ImportError:
    from django_tasks import task

from bench import probe as probe_module


@task()
def noop():
    """The benchmark task."""


@task()
def probe(probe_id, port):
    probe_module.send(probe_id, port)
