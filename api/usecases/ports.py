"""The ports of the use cases: what they need from the outside, named by what it does.

Adapters (`adapters/`) and read models (`projections/`) satisfy these structurally; the
composition root (`api/bootstrap.py`) decides which one each use case gets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from domain.client_record import ClientRecord


class SigningKey(Protocol):
    @property
    def kid(self) -> str: ...

    def sign(self, claims: dict[str, Any]) -> str: ...


class TokenSigner(Protocol):
    def key_at(self, now: datetime) -> SigningKey:
        """The key that signs at `now` (keys take turns: rotation)."""


class EventWriter(Protocol):
    def submit(self, events: Sequence[Any]) -> Awaitable[None]: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class ClientLookup(Protocol):
    def get(self, client_id: str) -> ClientRecord | None: ...


class SecretHashing(Protocol):
    def hash(self, secret: str) -> str: ...


class VerifiedAssertion(Protocol):
    @property
    def jti(self) -> str: ...

    @property
    def expires_at(self) -> datetime: ...


class AssertionVerifier(Protocol):
    """Checks a `private_key_jwt` client assertion against the client's keys (RFC 7523 §3);
    `endpoint`, when given, is one more audience the assertion may name."""

    def verify(
        self, assertion: str, client: ClientRecord, now: datetime, endpoint: str | None = None
    ) -> VerifiedAssertion: ...


class UsedAssertions(Protocol):
    """The `jti`s already used, shared by every replica."""

    def use(self, client_id: str, jti: str, expires_at: datetime, now: datetime) -> bool: ...


class ClaimsVerifier(Protocol):
    """Signature, `typ` and `iss` of a token signed here; raises `TokenNotVerified`."""

    def verify(self, token: str) -> dict[str, Any]: ...


class RevokedLookup(Protocol):
    def is_revoked(self, token_id: str) -> bool: ...


class Span(Protocol):
    """One timed step of a trace (OpenTelemetry's span, or a do-nothing one)."""

    def is_recording(self) -> bool: ...

    def set_attribute(self, key: str, value: str | int | float | bool) -> None: ...


class Tracer(Protocol):
    """Opens spans: `with tracer.span("keyledger.sign") as span: ...`; a child of the
    request's span, current while it is open."""

    def span(self, name: str) -> AbstractContextManager[Span]: ...
