"""The `IssuedToken` aggregate: one per access token, the durable fact that it was issued."""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

_TOKEN_NAMESPACE = uuid5(NAMESPACE_URL, "urn:keyledger:token")


def token_id(jti: str) -> UUID:
    """The aggregate id of the token with this `jti`: a duplicate `jti` cannot be stored twice."""
    return uuid5(_TOKEN_NAMESPACE, jti)


class IssuedToken(Aggregate):
    """An access token that was issued; created only through `Issued`."""

    @staticmethod
    def create_id(jti: str) -> UUID:
        return token_id(jti)

    class Issued(Aggregate.Created):
        """An access token was issued: who got it, for what, until when, signed by which key."""

        jti: str
        client_id: str
        scopes: list[str]
        audience: list[str]
        issued_at: datetime
        expires_at: datetime
        kid: str
        client_version: int
        secret_generation: int
        auth_method: str

    @event(Issued)
    def __init__(
        self,
        jti: str,
        client_id: str,
        scopes: list[str],
        audience: list[str],
        issued_at: datetime,
        expires_at: datetime,
        kid: str,
        client_version: int,
        secret_generation: int,
        auth_method: str,
    ) -> None:
        self.jti = jti
        self.client_id = client_id
        self.scopes = list(scopes)
        self.audience = list(audience)
        self.issued_at = issued_at
        self.expires_at = expires_at
        self.kid = kid
        self.client_version = client_version
        self.secret_generation = secret_generation
        self.auth_method = auth_method
