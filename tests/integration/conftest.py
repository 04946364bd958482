"""Fixtures the integration suites share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.event_store import Ledger


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    """An event store on each backend (`database_url`), closed after the test."""
    store = Ledger(database_url)
    yield store
    store.close()
