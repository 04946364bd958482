"""One validation for this server's own access tokens, wherever they are accepted.

Introspection (RFC 7662), the admin API and the dashboard (RFC 6750 bearer tokens) all ask
the same question: was this token signed here (RFC 9068 §4: signature, `typ`, `iss`), is it
within its time, not revoked by itself or by any cut-off, is its client still active, and
which of its scopes does the client still hold? The answer comes from memory: the verified
claims (cached), the clients model and the revoked-tokens model, both following the log, so
a change reaches every replica within a second (DESIGN.md invariants 3 and 8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.signing import TokenNotVerified
from api.usecases.ports import ClaimsVerifier, ClientLookup, Clock, RevokedLookup
from domain.client_record import ClientRecord
from domain.introspection import current_scopes, inactive_reason
from domain.token import token_id

MAX_TOKEN_LENGTH = 8192  # far above any token this server signs


class InvalidAccessToken(Exception):
    """Not an active access token of this server; `reason` says which check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ActiveToken:
    """A validated token: its claims, its client now, and the scopes it still carries."""

    claims: dict[str, Any]
    client: ClientRecord
    scopes: tuple[str, ...]

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class AccessTokenValidator:
    """Decides whether a presented token is active, for introspection and bearer guards."""

    def __init__(
        self,
        verifier: ClaimsVerifier,
        clients: ClientLookup,
        revoked: RevokedLookup,
        clock: Clock,
    ) -> None:
        self._verifier = verifier
        self._clients = clients
        self._revoked = revoked
        self._clock = clock

    def validate(self, token: str, audience: str | None = None) -> ActiveToken:
        """The active token, or `InvalidAccessToken`; with `audience`, the token must name it
        (RFC 9068 §4: a resource server checks that it is the intended audience)."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidAccessToken("token_too_long")
        try:
            claims = self._verifier.verify(token)
        except TokenNotVerified as exc:
            raise InvalidAccessToken(str(exc)) from None
        if audience is not None:
            named = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
            if audience not in named:
                raise InvalidAccessToken("the token is for another audience")
        client = self._clients.get(str(claims["client_id"]))
        revoked = self._revoked.is_revoked(str(token_id(str(claims["jti"]))))
        reason = inactive_reason(claims, client, revoked, self._clock.now())
        if reason is not None:
            raise InvalidAccessToken(reason)
        assert client is not None  # inactive_reason() named it otherwise
        return ActiveToken(claims, client, current_scopes(claims, client))
