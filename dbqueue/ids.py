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
# Random bytes drawn from the OS in batches: one os.urandom() call per id
# was a quarter of the cost of making one.
RANDOM_BATCH = 4096  # bytes, 8 (or 10) per id
_random = b""
_used = 0


def _after_fork_in_child() -> None:
    """Give a forked child its own random bytes and an unheld lock.

    Two processes must not share the next ids' bits, and a lock that
    another thread of the parent held at the fork would never be released
    in the child, whose first id would wait for it forever.
    """
    global _lock, _random, _used
    _lock = threading.Lock()
    _random, _used = b"", 0


os.register_at_fork(after_in_child=_after_fork_in_child)

VERSION_AND_VARIANT = 0x7 << 76 | 0b10 << 62
RAND_B = (1 << 62) - 1


def uuid7() -> uuid.UUID:
    """Return a new UUIDv7, monotonic within this process."""
    global _last_ms, _counter, _random, _used
    _lock.acquire()
    try:
        if _used + 10 > len(_random):
            _random, _used = os.urandom(RANDOM_BATCH), 0
        rand_b = int.from_bytes(_random[_used : _used + 8], "big") & RAND_B
        _used += 8
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _last_ms:
            _last_ms = now_ms
            # Start the 12-bit counter low, leaving room to count up within
            # one millisecond, and random so that processes interleave.
            _counter = int.from_bytes(_random[_used : _used + 2], "big") & 0x3FF
            _used += 2
        else:
            _counter += 1
            if _counter > 0xFFF:
                # Counter exhausted within one millisecond: borrow the next one.
                _last_ms += 1
                _counter = 0
        ms, counter = _last_ms, _counter
    finally:
        _lock.release()
    value = (ms & ((1 << 48) - 1)) << 80 | counter << 64 | VERSION_AND_VARIANT | rand_b
    return _from_int(value)


_set_int = uuid.UUID.__dict__["int"].__set__
_set_is_safe = uuid.UUID.__dict__["is_safe"].__set__
_UNKNOWN = uuid.SafeUUID.unknown  # an enum member costs a descriptor call to look up


def _from_int(value: int) -> uuid.UUID:
    # uuid.UUID(int=value) without its checks, which cost as much as making
    # the value: the bits above are valid by construction. Python 3.14's own
    # uuid7() builds its UUIDs the same way.
    made = object.__new__(uuid.UUID)
    _set_int(made, value)
    _set_is_safe(made, _UNKNOWN)
    return made
