"""The public id of a stored event: its CloudEvents `id` on the audit topic, and the
`cloudevents.event_id` of the spans that wrote and published it."""

from __future__ import annotations

from hashlib import sha1
from uuid import NAMESPACE_URL, UUID, uuid5

_EVENT_IDS = uuid5(NAMESPACE_URL, "urn:keyledger:audit-event")
_NAMESPACE = _EVENT_IDS.bytes


def event_id(originator_id: UUID, originator_version: int) -> str:
    """The same id for the same event, however often it is published: the RFC 9562 UUIDv5
    of `<originator id>/<version>` in keyledger's namespace (`uuid5`, by hand: the audit
    relay computes one per event, and `uuid.UUID`'s checks cost twice the hash)."""
    name = f"{originator_id}/{originator_version}".encode()
    digest = sha1(_NAMESPACE + name, usedforsecurity=False).digest()  # UUIDv5 is SHA-1
    value = bytearray(digest[:16])
    value[6] = (value[6] & 0x0F) | 0x50  # version 5
    value[8] = (value[8] & 0x3F) | 0x80  # the RFC 9562 variant
    h = value.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
