"""A serving process's interpreter, set once it has started: its garbage collector and how
long a background thread may keep the event loop waiting.

A worker holds a large, long-lived heap after start (the read models, the app, its imports)
and allocates a little per request. CPython's cyclic collector would walk that whole heap on
every full collection, stopping the event loop for tens of milliseconds each time: that was
most of the token endpoint's p99. So the heap built by the start is frozen (never scanned
again: it is not garbage), and the youngest generation is collected every 5,000 allocations
instead of 700. `python -m bench.token_ab` (serve --workers 2, PostgreSQL, relay and
analytics, alternating): p99 56.6 -> 17.3 ms (medians), tokens/s unchanged (0.99).

The relay, the analytics follower and the ledger's builder fold events on threads of the
same process; each holds the GIL for up to the switch interval (5 ms by default) before the
event loop gets it back, which a request waiting for its response feels. At 1 ms, p99 fell
further (about 20 -> 15 ms in alternating runs), the rate within the noise.
"""

from __future__ import annotations

import gc
import sys

YOUNG_THRESHOLD = 5_000
SWITCH_INTERVAL = 0.001  # seconds


def tune_worker() -> None:
    settle_heap()
    sys.setswitchinterval(SWITCH_INTERVAL)


def settle_heap() -> None:
    """Freeze what the start built; collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
