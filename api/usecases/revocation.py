"""Revoking one token: by its client (RFC 7009 §2.1) or by an admin; a second revocation writes
nothing.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from adapters.event_store import Ledger
from adapters.signing import JwtVerifier, TokenNotVerified
from api.usecases.ports import ClientLookup, Clock
from domain.admin_scopes import Admin, Permission
from domain.oauth_errors import UnauthorizedClient
from domain.token import IssuedToken, token_id
from domain.token_periods import issued_period
from domain.token_retention import TOKEN_RETENTION_ID, TokenRetention
from projections.tokens import RevokedTokensFollower


class TokenNotFound(LookupError):
    """No token with that jti is in the store: never issued here, or archived and removed."""


class TokenRevoker:
    def __init__(
        self,
        ledger: Ledger,
        verifier: JwtVerifier,
        clients: ClientLookup,
        clock: Clock,
        follower: RevokedTokensFollower,
    ) -> None:
        self._ledger = ledger
        self._verifier = verifier
        self._clients = clients
        self._clock = clock
        self._follower = follower

    def load(self, jti: str) -> IssuedToken:
        try:
            token: object = self._ledger.repository.get(token_id(jti))
        except AggregateNotFoundError:
            raise TokenNotFound(self._missing(jti)) from None
        assert isinstance(token, IssuedToken)
        return token

    def _missing(self, jti: str) -> str:
        """Why a jti has no token: its month was archived and removed, or it never was one."""
        period = issued_period(token_id(jti))
        if period is not None:
            try:
                record: object = self._ledger.repository.get(TOKEN_RETENTION_ID)
            except AggregateNotFoundError:
                record = None
            removed = record.archive_of(period) if isinstance(record, TokenRetention) else None
            if removed is not None:
                return (
                    f"token {jti} was issued in {period}, whose token events were archived in "
                    f"{removed.archive} and removed from the store on "
                    f"{removed.removed_at:%Y-%m-%d}; `keyledger archive load` brings them back"
                )
        return f"no token with jti {jti}"

    def revoke_by_admin(self, jti: str, *, by: Admin, reason: str | None) -> bool:
        """An admin revokes one token; False when it was already revoked or expired."""
        by.require(Permission.REVOKE_TOKENS)
        return self._revoke(jti, actor=by.actor, reason=reason)

    def retire_replaced(self, jti: str, *, admin: str) -> None:
        """A dashboard session's token, replaced by its renewal, stops working."""
        self._revoke(jti, actor=admin, reason="replaced by the renewed session token")

    def _revoke(self, jti: str, *, actor: str, reason: str | None) -> bool:
        """Revoke by jti; False when it was already revoked or expired (no event then)."""
        token = self.load(jti)
        if not token.revoke(now=self._clock.now(), actor=actor, reason=reason):
            return False
        try:
            self._ledger.save(token)
        except IntegrityError:
            return False  # revoked concurrently: once is enough
        self._follower.catch_up()  # this replica answers inactive at once
        return True

    def revoke_presented(self, caller_id: str, token: str) -> None:
        """RFC 7009 §2.1 for an authenticated caller; silent for tokens not ours."""
        try:
            claims = self._verifier.verify(token)
        except TokenNotVerified:
            return
        if claims["client_id"] != caller_id:
            raise UnauthorizedClient("a client may revoke only its own tokens")
        try:
            self._revoke(str(claims["jti"]), actor=caller_id, reason="revoked by its client")
        except TokenNotFound:
            return

    def history(self, jti: str, *, by: Admin) -> dict[str, Any]:
        by.require(Permission.READ)
        token = self.load(jti)
        events = self._ledger.repository.event_store.get(token.id)
        return {
            "jti": token.jti,
            "client_id": token.client_id,
            "scopes": token.scopes,
            "audience": token.audience,
            "issued_at": token.issued_at.isoformat(),
            "expires_at": token.expires_at.isoformat(),
            "kid": token.kid,
            "client_version": token.client_version,
            "secret_generation": token.secret_generation,
            "auth_method": token.auth_method,
            "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
            "history": [
                {
                    "event": type(e).__name__.lower(),
                    "at": getattr(e, "at", token.issued_at).isoformat(),
                    "actor": getattr(e, "actor", token.client_id),
                    "reason": getattr(e, "reason", None),
                }
                for e in events
            ],
        }
