"""Time-ordered opaque ids: 12 hex digits of milliseconds, then 20 random hex digits.

Sorting ids sorts by creation time, so "newest first" pages are an index scan on the primary key.
Within one process ids are strictly increasing even inside one millisecond.
"""

from __future__ import annotations

import secrets
import threading
import time

_lock = threading.Lock()
_last = (0, 0)


def new_id() -> str:
    global _last
    with _lock:
        millis = time.time_ns() // 1_000_000
        last_millis, last_random = _last
        if millis <= last_millis:
            millis, rand = last_millis, last_random + 1
        else:
            rand = secrets.randbits(79)  # room to count up within a millisecond
        _last = (millis, rand)
    return f"{millis:012x}{rand:020x}"
