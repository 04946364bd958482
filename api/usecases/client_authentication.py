"""Who is calling an OAuth endpoint: a client by its secret, or by a signed assertion.

RFC 6749 §2.3.1 for secrets; RFC 7523 §2.2 and §3 for `private_key_jwt`, at the token,
introspection and revocation endpoints alike. A client authenticates only with the method it
registered; every failure is `invalid_client`, its reason kept for the audit stream, and
spends from one failure budget shared by the three endpoints (`domain.throttling`).
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from api.usecases.credentials import Credentials
from api.usecases.ports import (
    AssertionVerifier,
    ClientLookup,
    SecretHashing,
    UsedAssertions,
)
from domain.client import SecretSlot
from domain.client_record import ClientRecord, RetiredSecret
from domain.networks import source_network
from domain.oauth_errors import InvalidClient, TemporarilyUnavailable, TooManyRequests
from domain.policy import authenticate, authenticate_by_assertion
from domain.throttling import FailureThrottle


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


@dataclass(frozen=True)
class Authenticated:
    """The calling client, and the generation of the secret it used (0: an assertion)."""

    client: ClientRecord
    secret_generation: int


class ClientAuthenticator:
    """The one client-authentication step of every OAuth endpoint (token, introspection,
    revocation): check the credentials by whichever method they came, and throttle failures.

    Every endpoint spends from the same per-address and per-client budget, so an attacker
    cannot guess secrets at introspection once the token endpoint answers 429. While a key is
    throttled, the right credentials from a network the client has used before still work:
    hammering a client id cannot lock the client out.
    """

    def __init__(
        self,
        clients: ClientLookup,
        hasher: SecretHashing,
        assertions: AssertionVerifier,
        used_assertions: UsedAssertions,
        throttle: FailureThrottle | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self._hasher = hasher
        self._assertions = assertions
        self._used = used_assertions
        self._throttle = throttle
        self._monotonic = monotonic

    async def authenticate(
        self,
        credentials: Credentials,
        now: datetime,
        endpoint: str | None = None,
        source_ip: str | None = None,
    ) -> Authenticated:
        """The calling client of `endpoint` (its URL: one more audience an assertion may
        name), or `invalid_client` / 429 `too_many_requests` with the failure's reason."""
        throttle = self._throttle
        moment = self._monotonic()
        wait = throttle.wait(source_ip, credentials.client_id, moment) if throttle else None
        try:
            if credentials.assertion is None:
                authenticated = self._by_secret(credentials, now)
            else:
                authenticated = await self._by_assertion(credentials, now, endpoint)
        except InvalidClient as failure:
            if throttle is not None:
                throttle.failed(source_ip, credentials.client_id, moment)
            if wait is not None:
                raise TooManyRequests(
                    reason=failure.reason, retry_after=math.ceil(wait), failed_authentication=True
                ) from None
            raise
        if throttle is not None:
            client_id, network = authenticated.client.client_id, source_network(source_ip)
            if wait is not None and not throttle.usual(client_id, network):
                raise TooManyRequests(
                    reason="throttled_unusual_network", retry_after=math.ceil(wait)
                )
            throttle.succeeded(client_id, network)
        return authenticated

    def note_failure(self, source_ip: str | None, client_id: str | None) -> None:
        """A failed authentication seen before credentials could be read (malformed ones)."""
        if self._throttle is not None:
            self._throttle.failed(source_ip, client_id, self._monotonic())

    def _by_secret(self, credentials: Credentials, now: datetime) -> Authenticated:
        """RFC 6749 §2.3.1: an active client presenting one of its live secrets."""
        # Hash before looking up, so unknown and known client ids take the same time.
        presented = self._hasher.hash(credentials.secret)
        record = self._clients.get(credentials.client_id)
        matched = matching_secret(record, presented)
        retired = retired_secret(record, presented) if matched is None else None
        client, slot = authenticate(record, matched, now, retired)
        return Authenticated(client, slot.generation)

    async def _by_assertion(
        self, credentials: Credentials, now: datetime, endpoint: str | None
    ) -> Authenticated:
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
        return Authenticated(client, 0)
