"""Hypothesis strategies for keyledger's domain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from domain.client import SecretSlot
from domain.client_record import ClientRecord
from domain.client_settings import MAX_TOKEN_TTL, MIN_TOKEN_TTL

SCOPE_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')
scope_tokens = st.text(alphabet=SCOPE_CHARS, min_size=1, max_size=12)
scope_sets = st.frozensets(scope_tokens, max_size=6)
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@st.composite
def client_records(draw: st.DrawFn) -> ClientRecord:
    allowed = draw(scope_sets)
    defaults = (
        draw(st.frozensets(st.sampled_from(sorted(allowed)), max_size=len(allowed)))
        if allowed
        else frozenset()
    )
    expiry = draw(
        st.one_of(st.none(), st.integers(-3600, 3600).map(lambda s: NOW + timedelta(seconds=s)))
    )
    return ClientRecord(
        client_id=draw(st.uuids()).hex,
        name="client",
        status=draw(st.sampled_from(["active", "active", "suspended"])),
        allowed_scopes=allowed,
        default_scopes=defaults,
        token_ttl=draw(st.integers(MIN_TOKEN_TTL, MAX_TOKEN_TTL)),
        audiences=(),
        secrets=(SecretSlot(generation=1, secret_hash="hash", expires_at=expiry),),
        version=draw(st.integers(1, 50)),
        registered_at=NOW,
        updated_at=NOW,
    )


requested_scopes = st.one_of(
    st.none(),
    scope_sets.filter(bool).map(lambda s: " ".join(sorted(s))),
    st.text(max_size=20),
)
