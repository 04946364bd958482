"""The ports of the use cases: what they need from the outside, named by what it does.

Adapters (`adapters/`) and read models (`projections/`) satisfy these structurally; the
composition root (`api/bootstrap.py`) decides which one each use case gets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import Repository
from eventsourcing.persistence import Notification

from domain.client_record import ClientRecord
from domain.token_periods import TokenPeriod

# (position, aggregate id, version, topic, stored state): an event as the store holds it.
StoredRow = tuple[int, UUID, int, str, bytes]


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


class DatabaseClock(Protocol):
    """The database server's clock, which every replica shares: what a machine's clock is
    checked against before it acts by the calendar (a store without a server, SQLite, has
    none but the machine's)."""

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


class EventStore(Protocol):
    """The event store's application: its aggregates, and its log's last position."""

    @property
    def repository(self) -> Repository[UUID]: ...

    def save(self, *objs: Any, **kwargs: Any) -> Any: ...

    def head(self) -> int: ...


class TokenEvents(Protocol):
    """A store's token events, as the rows it holds (read and written as they are)."""

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics token events are stored under."""

    def first_period(self) -> TokenPeriod | None:
        """The month of the oldest token still stored."""

    def period(self, period: TokenPeriod, batch: int = ...) -> Iterator[StoredRow]:
        """The month's token events in position order."""

    def remove(self, period: TokenPeriod, expected: int, upto: int) -> int:
        """Remove the month's events, `expected` of them archived up to position `upto`, never
        one above it; `ArchiveMismatch`, removing nothing, when the store holds more."""

    def prepare_months(self, first: TokenPeriod) -> None:
        """Get the store ready for the token events of the months from `first` on."""

    def restore(self, rows: Iterable[StoredRow]) -> tuple[int, int]:
        """Put rows back at their positions: (restored, already there)."""


class ArchiveManifest(Protocol):
    """What an archive holds, and the hash that names it."""

    @property
    def events(self) -> int: ...

    @property
    def tokens(self) -> int: ...

    @property
    def first_position(self) -> int | None: ...

    @property
    def last_position(self) -> int | None: ...

    @property
    def sha256(self) -> str: ...


class TokenArchives(Protocol):
    """Where months of token events are archived (a directory, a bucket)."""

    def location(self, period: TokenPeriod) -> str:
        """Where the month's archived events are (recorded by its removal)."""

    def write(
        self, period: TokenPeriod, rows: Iterable[StoredRow], written_at: datetime, *, replace: bool
    ) -> ArchiveManifest: ...

    def manifest(self, period: TokenPeriod) -> ArchiveManifest | None: ...

    def verify(self, period: TokenPeriod) -> tuple[ArchiveManifest | None, list[str]]: ...

    def rows(self, period: TokenPeriod) -> Iterator[StoredRow]: ...


class ArchivedEvents(Protocol):
    """The token events retention had removed from a store when it was made, read back from
    their archives, each found and checked against the SHA-256 its removal recorded when a
    read first reaches its positions (`ArchiveError` when it cannot be)."""

    @property
    def periods(self) -> frozenset[str]:
        """The removed months it reads back."""

    def merged(
        self, stored: Sequence[Notification], after: int, upto: int, topics: Sequence[str]
    ) -> list[Notification]:
        """`stored` (the store's events in (after, upto]) with the archived ones of that
        range it does not hold, in position order."""
