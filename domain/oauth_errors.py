"""Token endpoint error codes, RFC 6749 §5.2 (and RFC 8707 §2 for `invalid_target`).

One class per wire code. The description is fixed per class where it could otherwise
reveal which client ids exist (node-oidc-provider's rule); the precise reason travels in
`reason`, for logs and the audit stream only.
"""

from __future__ import annotations


class OAuthError(Exception):
    """An error the token endpoint answers with `{"error": code}`."""

    error: str = "invalid_request"
    status_code: int = 400
    default_description: str = "the request is invalid"

    def __init__(self, description: str | None = None, *, reason: str | None = None) -> None:
        self.description = description or self.default_description
        self.reason = reason or self.description
        super().__init__(self.description)


class InvalidRequest(OAuthError):
    """A missing, repeated or malformed parameter, or an unsupported request shape."""

    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (§5.2: 401 when the client used an auth header)."""

    error = "invalid_client"
    status_code = 401
    default_description = "client authentication failed"

    def __init__(
        self, *, reason: str, used_basic: bool = False, secret_generation: int | None = None
    ) -> None:
        # One public description for every cause: the response never tells which part failed.
        super().__init__(self.default_description, reason=reason)
        self.used_basic = used_basic
        # Which of the client's secrets was presented, when it once was one (never sent).
        self.secret_generation = secret_generation


class UnauthorizedClient(OAuthError):
    """The authenticated client may not use this grant type."""

    error = "unauthorized_client"
    default_description = "the client is not authorized to use this grant type"


class UnsupportedGrantType(OAuthError):
    """The grant type is not supported by this server."""

    error = "unsupported_grant_type"
    default_description = "only grant_type=client_credentials is supported"


class InvalidScope(OAuthError):
    """The requested scope is invalid, unknown, malformed, or exceeds what is allowed."""

    error = "invalid_scope"
    default_description = "the requested scope is invalid or not allowed for this client"


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource is invalid, unknown or not allowed."""

    error = "invalid_target"
    default_description = "the requested resource is invalid or not allowed for this client"


class TemporarilyUnavailable(OAuthError):
    """The server cannot durably record the token right now; the client may retry."""

    error = "temporarily_unavailable"
    status_code = 503
    default_description = "the server is temporarily unable to issue tokens"


class TooManyRequests(OAuthError):
    """RFC 6585 §4: too many failed authentications (or a quota reached); retry later.

    `failed_authentication` says whether the throttled request's credentials were wrong (it
    is then also a failed authentication, with its `reason`); `quota` that a client's issuance
    quota was reached.
    """

    error = "too_many_requests"
    status_code = 429
    default_description = "too many requests; retry after the time in Retry-After"

    def __init__(
        self,
        *,
        reason: str,
        retry_after: int,
        failed_authentication: bool = False,
        quota: bool = False,
    ):
        super().__init__(self.default_description, reason=reason)
        self.retry_after = max(1, retry_after)
        self.failed_authentication = failed_authentication
        self.quota = quota
