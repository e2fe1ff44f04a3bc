from bench import probe as probe_module


def noop():
    """The benchmark task."""


def probe(probe_id, port):
    probe_module.send(probe_id, port)
