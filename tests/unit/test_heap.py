"""A serving process freezes the heap its start built, so full collections never walk it
again, and collects its youngest generation every 5,000 allocations (api/http/heap.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from api.http.heap import YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


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
