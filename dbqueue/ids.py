"""Time-ordered task ids.

Task ids are UUIDv7 (RFC 9562): the first 48 bits are the Unix time in
milliseconds, so new rows land at the right-hand end of the primary-key index
instead of at random pages, which keeps inserts cheap on a table of millions of
rows. Python grows ``uuid.uuid7`` only in 3.14.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """Return a new UUIDv7, monotonic within this process."""
    global _last_ms, _counter
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _last_ms:
            _last_ms = now_ms
            # Start the 12-bit counter low, leaving room to count up within
            # one millisecond, and random so that processes interleave.
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        else:
            _counter += 1
            if _counter > 0xFFF:
                # Counter exhausted within one millisecond: borrow the next one.
                _last_ms += 1
                _counter = 0
        ms, counter = _last_ms, _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= counter << 64
    value |= 0b10 << 62  # variant
    value |= rand_b
    return _from_int(value)


def _from_int(value: int) -> uuid.UUID:
    # uuid.UUID(int=value) without its checks, which cost as much as making
    # the value: the bits above are valid by construction. Python 3.14's own
    # uuid7() builds its UUIDs the same way.
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made
