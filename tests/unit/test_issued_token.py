"""The IssuedToken aggregate and the event the token endpoint stores for it."""

from datetime import UTC, datetime, timedelta

from domain.token import IssuedToken, token_id

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
FIELDS = {
    "jti": "5f0c7a3e-1d2b-4c59-9a8e-0b1c2d3e4f50",
    "client_id": "c1",
    "scopes": ["a", "b"],
    "audience": ["https://api.example"],
    "issued_at": NOW,
    "expires_at": NOW + timedelta(seconds=300),
    "kid": "kid-1",
    "client_version": 4,
    "secret_generation": 2,
    "auth_method": "client_secret_basic",
}


def _state(event: IssuedToken.Issued) -> dict[str, object]:
    return {k: v for k, v in vars(event).items() if k != "timestamp"}


def test_the_stored_event_is_the_one_the_aggregate_would_record() -> None:
    [from_aggregate] = IssuedToken(**FIELDS).collect_events()
    assert isinstance(from_aggregate, IssuedToken.Issued)
    assert _state(IssuedToken.issue(**FIELDS)) == _state(from_aggregate)


def test_replaying_the_event_gives_the_token() -> None:
    token = IssuedToken.issue(**FIELDS).mutate(None)
    assert isinstance(token, IssuedToken)
    assert token.id == token_id(FIELDS["jti"])
    assert (token.client_id, token.scopes, token.expires_at) == (
        "c1",
        ["a", "b"],
        FIELDS["expires_at"],
    )


def test_the_token_id_is_derived_from_the_jti() -> None:
    assert token_id("x") == token_id("x") != token_id("y")
