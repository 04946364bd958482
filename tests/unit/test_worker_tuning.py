"""A serving process freezes the heap its start built, so full collections never walk it
again, collects its youngest generation every 5,000 allocations, and lets a background
thread hold the GIL for 1 ms at most (api/http/worker_tuning.py)."""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Iterator

import pytest

from api.http.worker_tuning import SWITCH_INTERVAL, YOUNG_THRESHOLD, settle_heap, tune_worker


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    sys.setswitchinterval(interval)


class Node:
    """A container the cyclic collector tracks (and a weak reference can watch)."""

    def __init__(self) -> None:
        self.other: object = None


@pytest.mark.usefixtures("restored_collector")
def test_what_the_start_built_is_frozen_out_of_every_collection() -> None:
    long_lived = Node()

    settle_heap()

    assert not any(o is long_lived for o in gc.get_objects())  # no generation holds it


@pytest.mark.usefixtures("restored_collector")
def test_young_collections_come_every_5000_allocations() -> None:
    settle_heap()

    assert gc.get_threshold()[0] == YOUNG_THRESHOLD


@pytest.mark.usefixtures("restored_collector")
def test_a_cycle_made_after_the_start_is_still_collected() -> None:
    settle_heap()
    cycle = Node()
    cycle.other = cycle
    watched = weakref.ref(cycle)
    del cycle

    gc.collect()

    assert watched() is None


@pytest.mark.usefixtures("restored_collector")
def test_background_threads_hold_the_interpreter_1_ms_at_most() -> None:
    tune_worker()

    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
