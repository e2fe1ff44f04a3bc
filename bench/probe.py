"""Latency probes: a task that tells the benchmark, over UDP, when it started.

The enqueuing client binds a UDP socket on the loopback and passes its port
with each probe; the task sends back the probe's number and `time.time()` as
its first act. Both clocks are the same machine's, so the difference is the
enqueue-to-start latency, with no table of any system read to get it.
"""

import socket
import time

HOST = "127.0.0.1"


def send(probe_id: int, port: int) -> None:
    """Report that probe `probe_id` has started."""
    now = time.time()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(f"{probe_id} {now!r}".encode(), (HOST, int(port)))
