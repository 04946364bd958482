"""Whether a token is active, RFC 7662 §2.2: a pure decision over verified claims and state.

"active: REQUIRED. Boolean indicator of whether or not the presented token is currently
active ... a token has been issued by this authorization server, has not been revoked by
the resource owner, and is within its given time window of validity."
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.client_record import ClientRecord

SECRET_GENERATION_CLAIM = "kl_sgen"  # noqa: S105 - a claim name, not a secret


def cut_off(iat: int, cutoff: datetime | None) -> bool:
    """Issued before the cut-off. `iat` is whole seconds, so a token from the cut-off's own
    second counts as earlier: revocation errs toward revoking."""
    return cutoff is not None and iat <= cutoff.timestamp()


def is_active(
    claims: dict[str, Any], client: ClientRecord | None, revoked: bool, now: datetime
) -> bool:
    """Active unless expired, revoked, its client gone or suspended, or cut off by an admin."""
    if revoked or client is None or not client.is_active:
        return False
    if not now.timestamp() < claims["exp"]:
        return False
    if cut_off(claims["iat"], client.tokens_revoked_before):
        return False
    generation = claims.get(SECRET_GENERATION_CLAIM, 0)
    return not cut_off(claims["iat"], dict(client.generation_cutoffs).get(generation))
