"""Who is calling an OAuth endpoint: a client by its secret, or by a signed assertion.

RFC 6749 §2.3.1 for secrets; RFC 7523 §2.2 and §3 for `private_key_jwt`, at the token,
introspection and revocation endpoints alike. A client authenticates only with the method it
registered; every failure is `invalid_client`, its reason kept for the audit stream.
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import datetime
from typing import Protocol

from api.client_auth import Credentials
from domain.client import SecretSlot
from domain.client_record import ClientRecord, RetiredSecret
from domain.oauth_errors import InvalidClient, TemporarilyUnavailable
from domain.policy import authenticate, authenticate_by_assertion


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


def matching_secret(record: ClientRecord | None, presented_hash: str) -> SecretSlot | None:
    """The client's secret slot whose hash equals the presented one (constant-time compares)."""
    if record is None:
        return None
    found = None
    for slot in record.secrets:
        if hmac.compare_digest(presented_hash, slot.secret_hash):
            found = slot
    return found


def retired_secret(record: ClientRecord | None, presented_hash: str) -> RetiredSecret | None:
    """The client's no-longer-working secret with this hash, if any (asked only on failure)."""
    if record is None:
        return None
    for retired in record.retired_secrets:
        if hmac.compare_digest(presented_hash, retired.secret_hash):
            return retired
    return None


def authenticate_client(
    credentials: Credentials, clients: ClientLookup, hasher: SecretHashing, now: datetime
) -> ClientRecord:
    """The active client these secret credentials belong to, or `invalid_client`."""
    presented = hasher.hash(credentials.secret)
    record = clients.get(credentials.client_id)
    matched = matching_secret(record, presented)
    retired = retired_secret(record, presented) if matched is None else None
    client, _ = authenticate(record, matched, now, retired)
    return client


class ClientAuthenticator:
    """Authenticates the caller of any OAuth endpoint, by whichever method it presented."""

    def __init__(
        self,
        clients: ClientLookup,
        hasher: SecretHashing,
        assertions: AssertionVerifier,
        used_assertions: UsedAssertions,
    ) -> None:
        self._clients = clients
        self._hasher = hasher
        self._assertions = assertions
        self._used = used_assertions

    async def authenticate(
        self, credentials: Credentials, now: datetime, endpoint: str
    ) -> ClientRecord:
        """The calling client of `endpoint` (its URL: an audience its assertion may name)."""
        if credentials.assertion is None:
            return authenticate_client(credentials, self._clients, self._hasher, now)
        return await self.by_assertion(credentials, now, endpoint)

    async def by_assertion(
        self, credentials: Credentials, now: datetime, endpoint: str | None = None
    ) -> ClientRecord:
        """RFC 7523 §3: an active private_key_jwt client, a valid assertion, used once.

        The `jti` is recorded only after every other check passed, so a forged assertion
        never uses up the real one's.
        """
        assert credentials.assertion is not None
        client = authenticate_by_assertion(self._clients.get(credentials.client_id))
        verified = self._assertions.verify(credentials.assertion, client, now, endpoint)
        try:
            first_use = await asyncio.to_thread(
                self._used.use, client.client_id, verified.jti, verified.expires_at, now
            )
        except Exception as exc:
            raise TemporarilyUnavailable(
                reason=f"assertion_store_failed: {type(exc).__name__}"
            ) from exc
        if not first_use:
            raise InvalidClient(reason="assertion_replayed")
        return client
