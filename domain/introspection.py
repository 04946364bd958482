"""Whether a token is active, RFC 7662 §2.2: a pure decision over verified claims and state.

"active: REQUIRED. Boolean indicator of whether or not the presented token is currently
active ... a token has been issued by this authorization server, has not been revoked by
the resource owner, and is within its given time window of validity."

The same decision guards every place that accepts this server's tokens (introspection, the
admin API, the dashboard): DESIGN.md invariant 8.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.client_record import ClientRecord

SECRET_GENERATION_CLAIM = "kl_sgen"  # noqa: S105 - a claim name, not a secret
CLOCK_SKEW = 60  # seconds another replica's clock may run ahead of this one's

# Why a verified token is not active (kept for logs and the admin API's error description).
REVOKED = "revoked"
CUT_OFF = "cut_off"
GENERATION_CUT_OFF = "secret_generation_cut_off"
CLIENT_UNKNOWN = "client_unknown"
CLIENT_NOT_ACTIVE = "client_not_active"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"


def cut_off(iat: int, cutoff: datetime | None) -> bool:
    """Issued before the cut-off. `iat` is whole seconds, so a token from the cut-off's own
    second counts as earlier: revocation errs toward revoking."""
    return cutoff is not None and iat <= cutoff.timestamp()


def inactive_reason(
    claims: dict[str, Any], client: ClientRecord | None, revoked: bool, now: datetime
) -> str | None:
    """None for an active token; else why not: revoked (by itself, by a client-wide or
    per-secret cut-off, or by a suspension), its client gone or not active, out of its time."""
    if revoked:
        return REVOKED
    if client is None:
        return CLIENT_UNKNOWN
    if not client.is_active:
        return CLIENT_NOT_ACTIVE
    moment = now.timestamp()
    if not moment < claims["exp"]:
        return EXPIRED
    if claims["iat"] > moment + CLOCK_SKEW:
        return NOT_YET_VALID
    if cut_off(claims["iat"], client.tokens_revoked_before):
        return CUT_OFF
    generation = claims.get(SECRET_GENERATION_CLAIM, 0)
    if cut_off(claims["iat"], dict(client.generation_cutoffs).get(generation)):
        return GENERATION_CUT_OFF
    return None


def is_active(
    claims: dict[str, Any], client: ClientRecord | None, revoked: bool, now: datetime
) -> bool:
    """Active unless expired, revoked, its client gone or suspended, or cut off by an admin."""
    return inactive_reason(claims, client, revoked, now) is None


def current_scopes(claims: dict[str, Any], client: ClientRecord) -> tuple[str, ...]:
    """The token's scopes its client is still allowed now, in the token's order: a scope taken
    from the client stops working in the tokens it already holds."""
    granted = str(claims.get("scope", "")).split(" ")
    return tuple(s for s in granted if s and s in client.allowed_scopes)
