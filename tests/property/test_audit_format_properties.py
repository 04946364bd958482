"""The audit topic's message for a token's `Issued` event, written out field by field for
the relay's sake, is the general CloudEvent for it, byte for byte: for any event, stored
compactly or not, with or without its ledger entry; and so is the one the relay writes
straight from a compactly stored row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import assume, given
from hypothesis import strategies as st

from adapters.compact_events import ISSUED_TOPIC
from domain.token import IssuedToken
from projections.audit_format import (
    audit_message,
    cloud_event,
    issued_cloud_event,
    stored_issued_message,
    utc_isoformat,
)
from tests.property.test_compact_events_properties import MAPPER, any_moments, events

sequences = st.integers(min_value=1, max_value=2**62)
entries = st.one_of(st.none(), st.binary(max_size=120))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(events(any_moments), sequences, entries)
def test_an_issued_event_has_the_general_cloud_event(
    event: IssuedToken.Issued, sequence: int, entry: bytes | None
) -> None:
    general = cloud_event(event, sequence, "urn:test", entry)
    assert issued_cloud_event(event, sequence, "urn:test", entry) == general
    assert audit_message(event, sequence, "urn:test", entry) == (
        general["subject"].encode(),
        msgspec.json.encode(general),
    )


@given(events(any_moments), sequences)
def test_an_issued_event_read_back_from_the_store_has_the_general_cloud_event(
    event: IssuedToken.Issued, sequence: int
) -> None:
    stored = MAPPER.to_domain_event(MAPPER.to_stored_event(event))
    assert issued_cloud_event(stored, sequence, "urn:test") == cloud_event(
        stored, sequence, "urn:test"
    )


@given(events(any_moments), sequences, entries)
def test_a_compactly_stored_token_is_written_out_as_its_event_would_be(
    event: IssuedToken.Issued, sequence: int, entry: bytes | None
) -> None:
    """The relay's path for a `ti2` row (its fields, no event built) gives the same key and
    bytes as the message of the event the row decodes to."""
    stored = MAPPER.to_stored_event(event)
    assume(stored.topic == ISSUED_TOPIC)
    originator_id, fields = MAPPER.issued_fields(stored)
    message = stored_issued_message(
        fields, originator_id, stored.originator_version, sequence, "urn:test", entry
    )
    decoded = MAPPER.to_domain_event(stored)
    assert message == audit_message(decoded, sequence, "urn:test", entry)


utc_times = st.datetimes(timezones=st.just(UTC))


@given(st.one_of(utc_times, utc_times.map(lambda t: t.replace(microsecond=0))))
def test_a_time_in_microseconds_is_formatted_as_its_datetime(moment: datetime) -> None:
    micros = (moment - EPOCH) // timedelta(microseconds=1)
    assert utc_isoformat(micros) == moment.isoformat()
