"""A token's compact row read without building its event (the audit relay's message, the
analytics count) is read as the event would be: from a row as SQLite returns it (a text id),
with its key id stored as a number, and a row that cannot be decoded is refused the same way,
naming the event, with nothing counted."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest
from eventsourcing.persistence import MapperDeserialisationError, Notification

from adapters.compact_events import ISSUED_TOPIC, CompactMapper
from adapters.event_store import Ledger
from domain.token import IssuedToken, new_jti
from projections.analytics import AnalyticsView
from projections.audit_format import audit_message
from projections.audit_relay import AuditRelay, RelayConfig, _entry

NOW = datetime(2026, 12, 4, 13, 5, 7, 250_000, tzinfo=UTC)
CONFIG = RelayConfig(topic="audit", source="https://auth.example")


class Rows:
    """The relay's store, as far as `_read` uses it: these rows after any position."""

    def __init__(self, rows: Sequence[Notification]) -> None:
        self.rows = rows

    def read(self, after: int, limit: int) -> Sequence[Notification]:
        return self.rows


@pytest.fixture
def mapper(tmp_path: Path) -> Iterator[CompactMapper]:
    ledger = Ledger(f"sqlite:///{tmp_path}/k.db")
    try:
        ledger.compact_mapper.key_numbers.learn(2, "key-two")
        yield ledger.compact_mapper
    finally:
        ledger.close()


def _issued(issued_at: datetime = NOW) -> IssuedToken.Issued:
    return IssuedToken.issue(
        jti=new_jti(issued_at, os.urandom(10)),
        client_id="0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        scopes=["read", "write"],
        audience=["https://api.example"],
        issued_at=issued_at,
        expires_at=issued_at + timedelta(minutes=5),
        kid="key-two",
        client_version=3,
        secret_generation=1,
        auth_method="client_secret_basic",
        source_ip="10.0.0.7",
    )


def _row(mapper: CompactMapper, event: IssuedToken.Issued, position: int = 9) -> Notification:
    stored = mapper.to_stored_event(event)
    return Notification(
        id=position,
        originator_id=str(stored.originator_id),  # as SQLite returns it
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=stored.state,
    )


def _relay(mapper: CompactMapper, rows: Sequence[Notification]) -> AuditRelay:
    return AuditRelay(mapper, Rows(rows), _no_producer, CONFIG)  # type: ignore[arg-type]


async def _no_producer() -> None:
    raise AssertionError("nothing is published here")


def test_the_relay_writes_a_compact_row_as_the_message_of_its_event(
    mapper: CompactMapper,
) -> None:
    row = _row(mapper, _issued())
    assert row.topic == ISSUED_TOPIC
    assert msgspec.msgpack.decode(row.state)[7] == 2  # the key id stored as its number
    [message] = _relay(mapper, [row])._read()
    event = mapper.to_domain_event(row)
    assert (message.key, message.value) == audit_message(event, 9, CONFIG.source, _entry(row))
    assert message.originator_id == event.originator_id  # a UUID, not SQLite's text
    assert message.audit_type == "keyledger.token.issued.v1"


def test_the_relay_writes_any_other_row_from_its_event(mapper: CompactMapper) -> None:
    row = _row(mapper, _issued(NOW.astimezone(timezone(timedelta(hours=2)))))  # not compact
    assert row.topic != ISSUED_TOPIC
    [message] = _relay(mapper, [row])._read()
    event = mapper.to_domain_event(row)
    assert (message.key, message.value) == audit_message(event, 9, CONFIG.source, _entry(row))


def _broken(mapper: CompactMapper) -> Notification:
    row = _row(mapper, _issued())
    fields = msgspec.msgpack.decode(row.state)
    return Notification(
        id=row.id,
        originator_id=row.originator_id,
        originator_version=row.originator_version,
        topic=row.topic,
        state=msgspec.msgpack.encode(fields[:11]),  # a field short
    )


def test_a_row_that_cannot_be_decoded_is_refused_by_the_relay_as_by_the_mapper(
    mapper: CompactMapper,
) -> None:
    row = _broken(mapper)
    with pytest.raises(MapperDeserialisationError, match=str(row.originator_id)):
        mapper.to_domain_event(row)
    with pytest.raises(MapperDeserialisationError, match=str(row.originator_id)):
        _relay(mapper, [row])._read()


def test_a_row_that_cannot_be_decoded_is_not_counted(mapper: CompactMapper) -> None:
    view, row = AnalyticsView(), _broken(mapper)
    with pytest.raises(MapperDeserialisationError, match=str(row.originator_id)):
        view.apply_stored(row, mapper)
    assert view.position == 0
    assert view.all() == []
