"""The audit topic's message for a token's `Issued` event, written out field by field for
the relay's sake, is the general CloudEvent for it, byte for byte: for any event, stored
compactly or not, with or without its ledger entry."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from domain.token import IssuedToken
from projections.audit_format import audit_message, cloud_event, issued_cloud_event
from tests.property.test_compact_events_properties import MAPPER, any_moments, events

sequences = st.integers(min_value=1, max_value=2**62)
entries = st.one_of(st.none(), st.binary(max_size=120))


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
