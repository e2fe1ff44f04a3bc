from procrastinate.contrib.django import app

from bench import probe as probe_module


@app.task(name="noop")
def noop():
    """The benchmark task."""


@app.task(name="probe")
def probe(probe_id, port):
    probe_module.send(probe_id, port)
