"""The Client aggregate and its settings."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from domain.client import Client
from domain.client_settings import ClientSettings, InvalidClientSettings

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_registering_records_one_registered_event_with_the_settings() -> None:
    settings = ClientSettings.create(name="billing-job", allowed_scopes=["b", "a"], token_ttl=600)
    client = Client.register(
        client_id=uuid4(), settings=settings, secret_hash="hmac-sha256$ab", now=NOW, actor="cli:ops"
    )
    [registered] = client.collect_events()
    assert isinstance(registered, Client.Registered)
    assert registered.allowed_scopes == ["a", "b"]
    assert registered.default_scopes == ["a", "b"]
    assert registered.token_ttl == 600
    assert registered.registered_at == NOW
    assert registered.actor == "cli:ops"


def test_default_scopes_default_to_every_allowed_scope() -> None:
    settings = ClientSettings.create(name="x", allowed_scopes=["a", "b"])
    assert settings.default_scopes == ("a", "b")


def test_default_scopes_must_be_allowed() -> None:
    with pytest.raises(InvalidClientSettings, match="default scopes"):
        ClientSettings.create(name="x", allowed_scopes=["a"], default_scopes=["b"])


@pytest.mark.parametrize("ttl", [0, 59, 86_401, -1])
def test_token_lifetime_must_be_between_a_minute_and_a_day(ttl: int) -> None:
    with pytest.raises(InvalidClientSettings, match="lifetime"):
        ClientSettings.create(name="x", allowed_scopes=["a"], token_ttl=ttl)


@pytest.mark.parametrize("ttl", [60, 300, 86_400])
def test_token_lifetimes_within_bounds_are_accepted(ttl: int) -> None:
    assert ClientSettings.create(name="x", allowed_scopes=["a"], token_ttl=ttl).token_ttl == ttl


def test_scopes_must_follow_rfc_6749_syntax() -> None:
    with pytest.raises(InvalidClientSettings, match="malformed scope"):
        ClientSettings.create(name="x", allowed_scopes=['bad"scope'])


@pytest.mark.parametrize(
    "audience", ["/relative", "https://api.example/#frag", "no-scheme", " https://a"]
)
def test_audiences_must_be_absolute_uris_without_fragment(audience: str) -> None:
    with pytest.raises(InvalidClientSettings, match="audience"):
        ClientSettings.create(name="x", allowed_scopes=["a"], audiences=[audience])


def test_a_blank_name_is_refused() -> None:
    with pytest.raises(InvalidClientSettings, match="name"):
        ClientSettings.create(name="  ", allowed_scopes=["a"])
