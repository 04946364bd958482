"""Token events stored compactly: a binary encoding for the one event written per token.

`IssuedToken.Issued` is nearly every row of a busy store. eventsourcing's JSON transcoder
stores it as about 610 bytes of JSON under a 31-byte topic; here it is a MessagePack array of
about 80 bytes under the topic `ti2` (token issued, format 2; format 1 is the JSON):

    [jti, client_id, scopes, audience, issued_at, lifetime, created, kid,
     client_version, secret_generation, auth_method, source_ip]

- no field names, no constant (`originator_topic` is implied by the topic);
- no field another gives: `jti` is nil when it is the event's originator id (a UUIDv7 jti is
  its token's id, domain/token.py); the key id is the number of the signing-keys event that
  added the key (`KeyNumbers`) when this process has seen that event;
- a canonical UUID (`jti`, `client_id`) as its 16 bytes, any other base64url key id as its
  bytes, an IP address as its 4 or 16 bytes, a known authentication method as its index in
  `STORED_AUTH_METHODS`; anything else as the text it is;
- `issued_at` in microseconds since the epoch (UTC); `expires_at` and the event's
  `timestamp` as microsecond offsets from it; the scopes space-separated (a scope never
  holds a space, RFC 6749 §3.3).

Nothing is lost: an event the format cannot hold exactly (a naive or non-UTC time, a scope
with a space) is stored in format 1, as before. Events stored in format 1 load as they
always did (`CompactMapper` hands every other topic to eventsourcing's own mapper), so a
store holds both and nothing is migrated. `STORED_AUTH_METHODS` only ever grows: an index, once
written, means the same method for ever.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent
from eventsourcing.utils import get_topic

from domain.signing_keys import SigningKeys
from domain.token import IssuedToken

ISSUED_TOPIC = "ti2"
JSON_ISSUED_TOPIC = get_topic(IssuedToken.Issued)
TOKEN_TOPIC = get_topic(IssuedToken)
KEY_GENERATED_TOPIC = get_topic(SigningKeys.KeyGenerated)
# Append only: the index of a method is what is stored.
STORED_AUTH_METHODS = (
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "session_renewal",
)
_METHOD_INDEX = {method: index for index, method in enumerate(STORED_AUTH_METHODS)}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # microsecond times count from it
_ZERO = timedelta(0)
_MICROSECOND = timedelta(microseconds=1)
# Client ids and source addresses repeat from token to token: their conversions are cached
# (a few microseconds each, on every token written and every one a follower reads).
_CACHED = 4096

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Any])


def stored_topics(event_type: type[Any]) -> tuple[str, ...]:
    """Every topic events of `event_type` may be stored under (for topic-filtered reads)."""
    topic = get_topic(event_type)
    return (topic, ISSUED_TOPIC) if topic == JSON_ISSUED_TOPIC else (topic,)


class NotCompact(ValueError):
    """An event the compact format cannot hold exactly: stored in format 1 instead."""


class KeyNumbers:
    """Signing-key ids by number: the version of the `SigningKeys.KeyGenerated` event that
    added the key (a kid is unique among the keys, and an event's version never changes).

    Learnt only from key events read back from the store, so from committed ones: a key event
    being written may yet fail. An encoder that has not learnt a kid stores it whole (the
    first tokens a process signs with a key it generated itself, until it reads the key
    back); a decoder meeting an unknown number calls `load`, which reads the keys' events
    through the mapper that learns them.
    """

    def __init__(self, load: Callable[[], object] = lambda: None) -> None:
        self._kids: dict[int, str] = {}
        self._numbers: dict[str, int] = {}
        self.load = load

    def learn(self, number: int, kid: str) -> None:
        self._kids[number] = kid
        self._numbers.setdefault(kid, number)

    def number(self, kid: str) -> int | None:
        return self._numbers.get(kid)

    def kid(self, number: int) -> str:
        kid = self._kids.get(number)
        if kid is None:
            self.load()
            kid = self._kids.get(number)
        if kid is None:
            raise LookupError(f"no signing key was added by signing-keys event {number}")
        return kid


def _micros(moment: datetime) -> int:
    offset = moment.utcoffset()
    if offset is None or offset != _ZERO:
        raise NotCompact("a time that is not UTC")
    return (moment - EPOCH) // _MICROSECOND


def _offset(later: datetime, base: datetime) -> int:
    if later.utcoffset() != _ZERO:
        raise NotCompact("a time that is not UTC")
    return (later - base) // _MICROSECOND


@functools.lru_cache(maxsize=_CACHED)
def _uuid(text: str) -> bytes | str:
    try:
        value = UUID(text)
    except ValueError:
        return text
    return value.bytes if str(value) == text else text


def _kid(text: str) -> bytes | str:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return text
    return raw if raw and base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == text else text


@functools.lru_cache(maxsize=_CACHED)
def _address(text: str | None) -> bytes | str | None:
    if text is None:
        return None
    try:
        packed = ipaddress.ip_address(text).packed
    except ValueError:
        return text
    return packed if str(ipaddress.ip_address(packed)) == text else text


def _no_numbers(kid: str) -> None:
    return None


def _no_kids(number: int) -> str:
    raise LookupError(f"no key numbers to resolve key {number}")


def encode_issued(
    event: IssuedToken.Issued, key_number: Callable[[str], int | None] = _no_numbers
) -> bytes:
    """The compact state of an `Issued` event; `NotCompact` when it cannot be exact."""
    if any(" " in scope or not scope for scope in event.scopes):
        raise NotCompact("a scope the space-separated form cannot hold")
    if event.originator_version != IssuedToken.INITIAL_VERSION or (
        event.originator_topic != TOKEN_TOPIC
    ):
        raise NotCompact("not the event that creates a token")
    issued_at = _micros(event.issued_at)
    base = event.issued_at
    number = key_number(event.kid)
    try:
        return _encoder.encode(
            [
                None if event.jti == str(event.originator_id) else _uuid(event.jti),
                _uuid(event.client_id),
                " ".join(event.scopes),
                list(event.audience),
                issued_at,
                _offset(event.expires_at, base),
                _offset(event.timestamp, base),
                _kid(event.kid) if number is None else number,
                event.client_version,
                event.secret_generation,
                _METHOD_INDEX.get(event.auth_method, event.auth_method),
                _address(event.source_ip),
            ]
        )
    except (TypeError, OverflowError, msgspec.EncodeError) as unfit:
        raise NotCompact(str(unfit)) from None


@functools.lru_cache(maxsize=_CACHED)
def _text_uuid(value: bytes | str) -> str:
    return str(UUID(bytes=value)) if isinstance(value, bytes) else value


def _text_kid(value: bytes | str | int, kid: Callable[[int], str]) -> str:
    if isinstance(value, int):
        return kid(value)
    return (
        base64.urlsafe_b64encode(value).rstrip(b"=").decode() if isinstance(value, bytes) else value
    )


@functools.lru_cache(maxsize=_CACHED)
def _text_address(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


class IssuedFields(NamedTuple):
    """A compact state's fields as the event holds them, times as microseconds: what the
    audit relay writes out, without building the event."""

    jti: str | None  # None: the event's originator id
    client_id: str
    scopes: list[str]
    audience: list[str]
    issued_micros: int  # microseconds since the epoch, UTC
    lifetime_micros: int  # expires_at, from issued_at
    created_micros: int  # the event's timestamp, from issued_at
    kid: str
    client_version: int
    secret_generation: int
    auth_method: str
    source_ip: str | None

    def jti_of(self, originator_id: UUID) -> str:
        return str(originator_id) if self.jti is None else self.jti


def issued_fields(state: bytes, resolve_kid: Callable[[int], str] = _no_kids) -> IssuedFields:
    """The compact state's fields; `resolve_kid` gives the key id a key number stands for."""
    (
        jti,
        client_id,
        scopes,
        audience,
        issued_micros,
        lifetime,
        created,
        kid,
        client_version,
        secret_generation,
        method,
        source_ip,
    ) = _decoder.decode(state)
    return IssuedFields(
        None if jti is None else _text_uuid(jti),
        _text_uuid(client_id),
        scopes.split(" ") if scopes else [],
        audience,
        issued_micros,
        lifetime,
        created,
        _text_kid(kid, resolve_kid),
        client_version,
        secret_generation,
        STORED_AUTH_METHODS[method] if isinstance(method, int) else method,
        _text_address(source_ip) if isinstance(source_ip, bytes) else source_ip,
    )


def decode_issued(
    state: bytes, originator_id: UUID, resolve_kid: Callable[[int], str] = _no_kids
) -> dict[str, Any]:
    """The event's state (every attribute but its version) from the compact form;
    `resolve_kid` gives the key id a key number stands for."""
    return issued_state(issued_fields(state, resolve_kid), originator_id)


def issued_state(fields: IssuedFields, originator_id: UUID) -> dict[str, Any]:
    """The event's state (every attribute but its version) from its decoded fields."""
    issued_at = EPOCH + timedelta(microseconds=fields.issued_micros)
    return {
        "timestamp": issued_at + timedelta(microseconds=fields.created_micros),
        "originator_topic": TOKEN_TOPIC,
        "jti": fields.jti_of(originator_id),
        "client_id": fields.client_id,
        "scopes": fields.scopes,
        "audience": fields.audience,
        "issued_at": issued_at,
        "expires_at": issued_at + timedelta(microseconds=fields.lifetime_micros),
        "kid": fields.kid,
        "client_version": fields.client_version,
        "secret_generation": fields.secret_generation,
        "auth_method": fields.auth_method,
        "source_ip": fields.source_ip,
        "originator_id": originator_id,
    }


class CompactMapper(Mapper[UUID]):
    """eventsourcing's mapper, with `IssuedToken.Issued` in the compact format (no cipher or
    compressor: keyledger configures none, and a compact state would not shrink). It learns
    key numbers from the key events it decodes; `load_keys` reads them all again."""

    def __init__(self, *args: Any, load_keys: Callable[[], object] = lambda: None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.key_numbers = KeyNumbers(load_keys)

    def issued_fields(self, stored_event: Any) -> tuple[UUID, IssuedFields]:
        """A compact token row's originator id and fields, without building its event: what
        `to_domain_event` decodes, refused as it refuses it."""
        try:
            originator_id = stored_event.originator_id
            if not isinstance(originator_id, UUID):
                originator_id = UUID(str(originator_id))  # SQLite's text id
            return originator_id, issued_fields(bytes(stored_event.state), self.key_numbers.kid)
        except Exception as e:
            raise MapperDeserialisationError(
                f"Failed to deserialise a compact token event {stored_event.originator_id}: {e}"
            ) from e

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if type(domain_event) is IssuedToken.Issued:
            try:
                state = encode_issued(domain_event, self.key_numbers.number)
            except NotCompact:
                pass
            else:
                return StoredEvent(
                    originator_id=domain_event.originator_id,
                    originator_version=domain_event.originator_version,
                    topic=ISSUED_TOPIC,
                    state=state,
                )
        return super().to_stored_event(domain_event)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        if stored_event.topic != ISSUED_TOPIC:
            domain_event: Any = super().to_domain_event(stored_event)
            if stored_event.topic == KEY_GENERATED_TOPIC:
                self.key_numbers.learn(domain_event.originator_version, domain_event.kid)
            return domain_event
        originator_id, fields = self.issued_fields(stored_event)
        state = issued_state(fields, originator_id)
        state["originator_version"] = stored_event.originator_version
        event = object.__new__(IssuedToken.Issued)
        object.__setattr__(event, "__dict__", state)
        return event
