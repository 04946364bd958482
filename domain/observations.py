"""Security observations: failed authentications and rejected token requests.

They are facts about requests, not domain state: they go to the audit topic (and metrics),
never into the event store, so bad requests cannot grow the store. Everything in them that
a caller chose (client id, user agent, scope, resources) has secret-shaped text redacted and
is cut to a bounded size. `ObservationTally` merges the observations of one window that
share who and what (source, client id, reason, endpoint) into one with a `count`, so the
audit topic grows with distinct attackers, not with their requests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from domain.oauth_errors import (
    InvalidClient,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    TooManyRequests,
    UnauthorizedClient,
)
from domain.policy import AUTHENTICATION_FAILURES
from domain.redaction import redact

AUTHENTICATION_FAILED = "authentication_failed"
TOKEN_REQUEST_REJECTED = "token_request_rejected"  # noqa: S105 - a kind, not a secret
QUOTA_EXCEEDED = "quota_exceeded"
OBSERVATION_KINDS = (AUTHENTICATION_FAILED, TOKEN_REQUEST_REJECTED, QUOTA_EXCEEDED)
_REJECTIONS = (InvalidScope, InvalidTarget, UnauthorizedClient)
# Every reason an `invalid_client` answer can have; the audit schema lists exactly these.
AUTHENTICATION_FAILURE_REASONS = (
    *AUTHENTICATION_FAILURES,
    "malformed_authorization_header",
    "malformed_basic_credentials",
    "no_client_authentication",
    "bad_assertion",
    # private_key_jwt (RFC 7523 §3): which check the client assertion failed
    "unsupported_assertion_type",
    "malformed_assertion",
    "assertion_subject_missing",
    "assertion_subject_mismatch",
    "assertion_issuer_mismatch",
    "assertion_audience_mismatch",
    "assertion_algorithm_not_allowed",
    "assertion_key_unknown",
    "assertion_key_unusable",
    "assertion_signature_invalid",
    "assertion_expired",
    "assertion_not_yet_valid",
    "assertion_lifetime_too_long",
    "assertion_jti_invalid",
    "assertion_replayed",
)

MAX_CLIENT_ID = 200
MAX_USER_AGENT = 256
MAX_SCOPE = 512
MAX_RESOURCES = 10
MAX_RESOURCE = 256
# Client ids one source address gets named under in one window; the ones it tries beyond
# that are counted together, without a client id (random ids must not multiply messages).
MAX_CLIENT_IDS_PER_SOURCE = 20


def _cut(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = redact(value)
    return value if len(value) <= limit else value[:limit]


@dataclass(frozen=True)
class SecurityObservation:
    """One failed authentication or rejected token request, as the audit topic tells it."""

    kind: str
    endpoint: str
    error: str
    reason: str
    at: datetime
    client_id: str | None
    auth_method: str | None
    source_ip: str | None
    user_agent: str | None
    requested_scope: str | None = None
    requested_resources: tuple[str, ...] = ()
    secret_generation: int | None = None
    count: int = 1  # requests this observation stands for, from `at` to `last_at`
    last_at: datetime | None = None  # None: the same as `at`

    @property
    def last_seen(self) -> datetime:
        return self.at if self.last_at is None else self.last_at

    def key(self) -> tuple[object, ...]:
        """What observations must share to be counted as one: who, from where, what, where."""
        return (
            self.kind,
            self.endpoint,
            self.error,
            self.reason,
            self.client_id,
            self.source_ip,
            self.auth_method,
            self.secret_generation,
        )

    def merged(self, other: SecurityObservation) -> SecurityObservation:
        """This observation counting `other` too (the first one's caller details stay)."""
        return replace(
            self,
            count=self.count + other.count,
            at=min(self.at, other.at),
            last_at=max(self.last_seen, other.last_seen),
        )

    @classmethod
    def of_error(
        cls,
        error: OAuthError,
        *,
        endpoint: str,
        at: datetime,
        client_id: str | None,
        auth_method: str | None,
        source_ip: str | None,
        user_agent: str | None,
        requested_scope: str | None = None,
        requested_resources: tuple[str, ...] = (),
    ) -> SecurityObservation | None:
        """The observation an error answer makes, or None for errors that are not one."""
        if isinstance(error, InvalidClient) or (
            isinstance(error, TooManyRequests) and error.failed_authentication
        ):
            kind = AUTHENTICATION_FAILED
        elif isinstance(error, _REJECTIONS):
            kind = TOKEN_REQUEST_REJECTED
        elif isinstance(error, TooManyRequests) and error.quota:
            kind = QUOTA_EXCEEDED
        else:
            return None
        return cls(
            kind=kind,
            endpoint=endpoint,
            error=error.error,
            reason=error.reason,
            at=at,
            client_id=_cut(client_id, MAX_CLIENT_ID),
            auth_method=auth_method,
            source_ip=source_ip,
            user_agent=_cut(user_agent, MAX_USER_AGENT),
            requested_scope=_cut(requested_scope, MAX_SCOPE),
            requested_resources=tuple(
                redact(r)[:MAX_RESOURCE] for r in requested_resources[:MAX_RESOURCES]
            ),
            secret_generation=getattr(error, "secret_generation", None),
        )


class ObservationTally:
    """Observations merged per window of `window` seconds (epoch-aligned, by their `at`).

    Bounded: at most `capacity` merged observations (`add` says False when a new one does
    not fit: drain, then add again), and at most `MAX_CLIENT_IDS_PER_SOURCE` client ids per
    source address and window.
    """

    def __init__(self, capacity: int, window: int = 1) -> None:
        self.capacity = capacity
        self.window = window
        self._merged: dict[tuple[object, ...], SecurityObservation] = {}
        self._client_ids: dict[tuple[int, str], set[str]] = {}

    def __len__(self) -> int:
        return len(self._merged)

    def add(self, observation: SecurityObservation) -> bool:
        window = int(observation.at.timestamp() // self.window)
        named: set[str] | None = None
        ip, client_id = observation.source_ip, observation.client_id
        if ip is not None and client_id is not None:
            named = self._client_ids.get((window, ip), set())
            if client_id not in named and len(named) >= MAX_CLIENT_IDS_PER_SOURCE:
                observation, named = replace(observation, client_id=None), None
        key = (window, *observation.key())
        earlier = self._merged.get(key)
        if earlier is not None:
            self._merged[key] = earlier.merged(observation)
            return True
        if len(self._merged) >= self.capacity:
            return False
        self._merged[key] = observation
        if named is not None and ip is not None and client_id is not None:
            named.add(client_id)
            self._client_ids[(window, ip)] = named
        return True

    def drain(self) -> list[SecurityObservation]:
        """Every merged observation, in the order each was first seen; the tally is emptied."""
        merged = list(self._merged.values())
        self._merged.clear()
        self._client_ids.clear()
        return merged
