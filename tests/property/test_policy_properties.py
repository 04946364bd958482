"""The token decision, for random clients and requests (issue 2, part 9)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.client_record import ClientRecord
from domain.oauth_errors import InvalidClient, InvalidScope
from domain.policy import TokenRequest, decide
from domain.scope import ScopeSyntaxError, parse_scope
from tests.property.strategies import NOW, client_records, requested_scopes


def _requested(scope: str | None) -> frozenset[str] | None:
    if scope is None:
        return None
    try:
        return parse_scope(scope)
    except ScopeSyntaxError:
        return frozenset({"\x00malformed"})


@given(client_records(), st.booleans(), requested_scopes, st.integers(0, 10_000))
def test_a_token_is_issued_exactly_when_the_client_is_active_the_secret_valid_and_scopes_allowed(
    client: ClientRecord, secret_matches: bool, scope: str | None, offset: int
) -> None:
    now = NOW + timedelta(microseconds=offset)
    slot = client.secrets[0] if secret_matches else None
    secret_valid = slot is not None and slot.is_live(now)
    requested = _requested(scope)
    wanted = client.default_scopes if requested is None else requested
    should_issue = (
        client.is_active and secret_valid and bool(wanted) and wanted <= client.allowed_scopes
    )
    request = TokenRequest(scope=scope)
    if not should_issue:
        expected = InvalidClient if not (client.is_active and secret_valid) else InvalidScope
        with pytest.raises(expected):
            decide(client, slot, request, now, "https://issuer")
        return
    grant = decide(client, slot, request, now, "https://issuer")
    assert grant.scopes == wanted
    assert grant.lifetime == client.token_ttl
    assert (grant.expires_at - grant.issued_at).total_seconds() == client.token_ttl
    assert grant.client_id == client.client_id
    assert grant.client_version == client.version
