"""How the supervisor waits for its workers' report lines, without forking."""

import os

from dbqueue.cluster import supervisor
from dbqueue.cluster.supervisor import REPORT_INTERVAL, Supervisor


def test_report_lines_are_read_in_batches_while_they_flow(monkeypatch):
    """A line per task must not wake the supervisor per line; a quiet pipe still does."""
    cluster = Supervisor(workers=1, scheduler=False)
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    cluster.slots[0].pid, cluster.slots[0].pipe = 12345, read_end
    waits = []

    def select(readable, writable, errors, timeout):
        waits.append((list(readable), timeout))
        return [], [], []

    monkeypatch.setattr(supervisor.select, "select", select)
    try:
        os.write(write_end, b"started 0190-a 0\nfinished 0190-a 0\n")
        cluster._read_reports()
        cluster._sleep(10.0)
        cluster._read_reports()  # nothing came meanwhile
        cluster._sleep(10.0)
        wake = cluster._wake_r
    finally:
        for fd in (read_end, write_end, cluster._wake_r, cluster._wake_w):
            os.close(fd)
    assert waits == [([wake], REPORT_INTERVAL), ([wake, read_end], 10.0)]
    assert cluster.slots[0].unstored == {"0190-a"}
    assert cluster.slots[0].tasks_done == 1
