"""The public id of a stored event: its CloudEvents `id` on the audit topic, and the
`cloudevents.event_id` of the spans that wrote and published it."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

_EVENT_IDS = uuid5(NAMESPACE_URL, "urn:keyledger:audit-event")


def event_id(originator_id: UUID, originator_version: int) -> str:
    """The same id for the same event, however often it is published."""
    return str(uuid5(_EVENT_IDS, f"{originator_id}/{originator_version}"))
