"""`ClientRecord`: what the token endpoint knows about a client, as the read model holds it."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from domain.client import CLIENT_SECRET_BASIC, SecretSlot

KEPT_RETIRED_SECRETS = 8


@dataclass(frozen=True)
class RetiredSecret:
    """A secret that no longer works, kept as its hash so a leaked old secret's use has a name.

    `cause` is "expired" (its grace period ran out) or "revoked" (ended early: revoked by an
    admin, or cut short by a newer rotation).
    """

    generation: int
    secret_hash: str
    retired_at: datetime
    cause: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "secret_hash": self.secret_hash,
            "retired_at": self.retired_at.isoformat(),
            "cause": self.cause,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RetiredSecret:
        return cls(
            d["generation"], d["secret_hash"], datetime.fromisoformat(d["retired_at"]), d["cause"]
        )


@dataclass(frozen=True)
class ClientRecord:
    """A client's current state, folded from its events; holds secret hashes, never secrets."""

    client_id: str
    name: str
    status: str
    allowed_scopes: frozenset[str]
    default_scopes: frozenset[str]
    token_ttl: int
    audiences: tuple[str, ...]
    secrets: tuple[SecretSlot, ...]
    version: int
    registered_at: datetime
    updated_at: datetime
    tokens_revoked_before: datetime | None = None
    generation_cutoffs: tuple[tuple[int, datetime], ...] = ()
    retired_secrets: tuple[RetiredSecret, ...] = ()
    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None
    auth_method: str = CLIENT_SECRET_BASIC
    jwks: tuple[dict[str, Any], ...] = ()  # public keys of a private_key_jwt client
    default_audience: str | None = None

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def evolve(self, **changes: Any) -> ClientRecord:
        return replace(self, **changes)

    def retiring(self, slot: SecretSlot, at: datetime, cause: str) -> tuple[RetiredSecret, ...]:
        """The retired secrets after `slot` stops working: the newest few, oldest dropped."""
        retired = RetiredSecret(slot.generation, slot.secret_hash, at, cause)
        return (*self.retired_secrets, retired)[-KEPT_RETIRED_SECRETS:]

    def public_view(self) -> dict[str, Any]:
        """The record as admins see it: secret generations and expiry, never hashes."""
        return {
            "client_id": self.client_id,
            "name": self.name,
            "status": self.status,
            "allowed_scopes": sorted(self.allowed_scopes),
            "default_scopes": sorted(self.default_scopes),
            "token_ttl": self.token_ttl,
            "audiences": list(self.audiences),
            "default_audience": self.default_audience,
            "token_endpoint_auth_method": self.auth_method,
            "jwks": {"keys": list(self.jwks)} if self.jwks else None,
            "secrets": [
                {
                    "generation": s.generation,
                    "expires_at": s.expires_at.isoformat() if s.expires_at else None,
                }
                for s in self.secrets
            ],
            "version": self.version,
            "registered_at": self.registered_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "tokens_revoked_before": _iso(self.tokens_revoked_before),
            "secret_generation_cutoffs": {
                str(g): c.isoformat() for g, c in self.generation_cutoffs
            },
            "quotas": {
                "tokens_per_minute": self.tokens_per_minute,
                "tokens_per_day": self.tokens_per_day,
            },
        }

    def to_json(self) -> str:
        return json.dumps(
            {
                **self.public_view(),
                "secrets": [
                    {
                        "generation": s.generation,
                        "secret_hash": s.secret_hash,
                        "expires_at": s.expires_at.isoformat() if s.expires_at else None,
                    }
                    for s in self.secrets
                ],
                "retired_secrets": [r.to_dict() for r in self.retired_secrets],
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> ClientRecord:
        d = json.loads(text)
        return cls(
            client_id=d["client_id"],
            name=d["name"],
            status=d["status"],
            allowed_scopes=frozenset(d["allowed_scopes"]),
            default_scopes=frozenset(d["default_scopes"]),
            token_ttl=d["token_ttl"],
            audiences=tuple(d["audiences"]),
            secrets=tuple(
                SecretSlot(
                    generation=s["generation"],
                    secret_hash=s["secret_hash"],
                    expires_at=datetime.fromisoformat(s["expires_at"]) if s["expires_at"] else None,
                )
                for s in d["secrets"]
            ),
            version=d["version"],
            registered_at=datetime.fromisoformat(d["registered_at"]),
            updated_at=datetime.fromisoformat(d["updated_at"]),
            tokens_revoked_before=_parse(d.get("tokens_revoked_before")),
            generation_cutoffs=tuple(
                sorted(
                    (int(g), datetime.fromisoformat(c))
                    for g, c in d.get("secret_generation_cutoffs", {}).items()
                )
            ),
            retired_secrets=tuple(RetiredSecret.from_dict(r) for r in d["retired_secrets"]),
            tokens_per_minute=d["quotas"]["tokens_per_minute"],
            tokens_per_day=d["quotas"]["tokens_per_day"],
            # Rows written before private_key_jwt existed have neither: a secret client.
            auth_method=d.get("token_endpoint_auth_method", CLIENT_SECRET_BASIC),
            jwks=tuple((d.get("jwks") or {}).get("keys", ())),
            default_audience=d.get("default_audience"),
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
