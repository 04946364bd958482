"""A serving process freezes the heap its start built, so full collections never walk it
again, collects its youngest generation every 5,000 allocations, and lets a background
thread hold the GIL for 1 ms at most (api/http/worker_tuning.py)."""

from __future__ import annotations

import gc
import sys
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


@pytest.mark.usefixtures("restored_collector")
def test_the_started_heap_is_frozen_and_young_collections_come_less_often() -> None:
    long_lived = [{"model": n} for n in range(1000)]

    settle_heap()

    assert gc.get_freeze_count() >= len(long_lived)
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD


@pytest.mark.usefixtures("restored_collector")
def test_garbage_made_after_the_start_is_still_collected() -> None:
    settle_heap()
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle

    assert gc.collect() >= 1


@pytest.mark.usefixtures("restored_collector")
def test_a_worker_lets_background_threads_hold_the_interpreter_1_ms_at_most() -> None:
    tune_worker()

    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
