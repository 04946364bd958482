"""Security observations: failed authentications and rejected token requests.

They are facts about requests, not domain state: they go to the audit topic (and metrics),
never into the event store, so bad requests cannot grow the store. Everything in them that
a caller chose (client id, user agent, scope, resources) is cut to a bounded size.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def _cut(value: str | None, limit: int) -> str | None:
    return value if value is None or len(value) <= limit else value[:limit]


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
                r[:MAX_RESOURCE] for r in requested_resources[:MAX_RESOURCES]
            ),
            secret_generation=getattr(error, "secret_generation", None),
        )
