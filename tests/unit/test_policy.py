"""The client_credentials decision (RFC 6749 §4.4, §5.2; RFC 8707)."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.client import SecretSlot
from domain.client_record import ClientRecord, RetiredSecret
from domain.oauth_errors import InvalidClient, InvalidScope, InvalidTarget
from domain.policy import TokenRequest, decide

NOW = datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC)
ISSUER = "https://auth.example"
SLOT = SecretSlot(generation=1, secret_hash="h", expires_at=None)


def record(**changes: object) -> ClientRecord:
    base = ClientRecord(
        client_id="c1",
        name="billing",
        status="active",
        allowed_scopes=frozenset({"read", "write"}),
        default_scopes=frozenset({"read"}),
        token_ttl=300,
        audiences=(),
        secrets=(SLOT,),
        version=1,
        registered_at=NOW,
        updated_at=NOW,
    )
    return base.evolve(**changes)


def test_an_omitted_scope_grants_the_default_scopes() -> None:
    grant = decide(record(), SLOT, TokenRequest(scope=None), NOW, ISSUER)
    assert grant.scopes == {"read"}


def test_a_requested_subset_of_allowed_scopes_is_granted_exactly() -> None:
    grant = decide(record(), SLOT, TokenRequest(scope="write"), NOW, ISSUER)
    assert grant.scopes == {"write"}


def test_lifetime_is_the_clients_and_times_are_whole_seconds() -> None:
    grant = decide(record(token_ttl=900), SLOT, TokenRequest(scope=None), NOW, ISSUER)
    assert grant.lifetime == 900
    assert grant.issued_at.microsecond == 0


def test_a_scope_outside_the_allowed_set_is_invalid_scope() -> None:
    with pytest.raises(InvalidScope):
        decide(record(), SLOT, TokenRequest(scope="read admin"), NOW, ISSUER)


def test_a_malformed_scope_is_invalid_scope() -> None:
    with pytest.raises(InvalidScope):
        decide(record(), SLOT, TokenRequest(scope="read  write"), NOW, ISSUER)


def test_no_scope_requested_and_no_defaults_is_invalid_scope() -> None:
    with pytest.raises(InvalidScope):
        decide(record(default_scopes=frozenset()), SLOT, TokenRequest(scope=None), NOW, ISSUER)


def test_an_unknown_client_is_invalid_client() -> None:
    with pytest.raises(InvalidClient) as caught:
        decide(None, None, TokenRequest(scope=None), NOW, ISSUER)
    assert caught.value.reason == "unknown_client"


def test_a_wrong_secret_is_invalid_client_with_the_same_description() -> None:
    with pytest.raises(InvalidClient) as wrong:
        decide(record(), None, TokenRequest(scope=None), NOW, ISSUER)
    with pytest.raises(InvalidClient) as unknown:
        decide(None, None, TokenRequest(scope=None), NOW, ISSUER)
    assert wrong.value.description == unknown.value.description
    assert wrong.value.reason == "wrong_secret"


def test_an_expired_secret_is_invalid_client() -> None:
    expired = SecretSlot(generation=1, secret_hash="h", expires_at=NOW - timedelta(seconds=1))
    with pytest.raises(InvalidClient) as caught:
        decide(record(secrets=(expired,)), expired, TokenRequest(scope=None), NOW, ISSUER)
    assert caught.value.reason == "expired_secret"


def test_an_inactive_client_is_invalid_client() -> None:
    with pytest.raises(InvalidClient):
        decide(record(status="suspended"), SLOT, TokenRequest(scope=None), NOW, ISSUER)


def test_the_audience_defaults_to_the_clients_audiences_then_the_issuer() -> None:
    assert decide(record(), SLOT, TokenRequest(None), NOW, ISSUER).audience == (ISSUER,)
    with_aud = record(audiences=("https://a.example", "https://b.example"))
    assert decide(with_aud, SLOT, TokenRequest(None), NOW, ISSUER).audience == with_aud.audiences


def test_a_default_audience_pins_tokens_that_name_no_resource_to_one_api() -> None:
    client = record(
        audiences=("https://a.example", "https://b.example"), default_audience="https://b.example"
    )
    assert decide(client, SLOT, TokenRequest(None), NOW, ISSUER).audience == ("https://b.example",)
    asked = TokenRequest(None, resources=("https://a.example",))
    assert decide(client, SLOT, asked, NOW, ISSUER).audience == ("https://a.example",)


def test_requested_resources_must_be_allowed_audiences() -> None:
    client = record(audiences=("https://a.example", "https://b.example"))
    grant = decide(client, SLOT, TokenRequest(None, ("https://b.example",)), NOW, ISSUER)
    assert grant.audience == ("https://b.example",)
    with pytest.raises(InvalidTarget):
        decide(client, SLOT, TokenRequest(None, ("https://c.example",)), NOW, ISSUER)


def test_a_resource_with_a_fragment_is_invalid_target() -> None:
    client = record(audiences=("https://a.example",))
    with pytest.raises(InvalidTarget):
        decide(client, SLOT, TokenRequest(None, ("https://a.example#x",)), NOW, ISSUER)


def test_a_deleted_client_is_named_as_deleted_whatever_secret_it_shows() -> None:
    with pytest.raises(InvalidClient) as caught:
        decide(record(status="deleted", secrets=()), None, TokenRequest(None), NOW, ISSUER)
    assert caught.value.reason == "client_deleted"


def test_a_suspended_client_with_its_right_secret_is_named_as_suspended() -> None:
    with pytest.raises(InvalidClient) as caught:
        decide(record(status="suspended"), SLOT, TokenRequest(None), NOW, ISSUER)
    assert caught.value.reason == "client_suspended"


@pytest.mark.parametrize(
    ("cause", "reason"), [("revoked", "revoked_secret"), ("expired", "expired_secret")]
)
def test_a_secret_that_once_worked_is_told_apart_from_a_wrong_one(cause: str, reason: str) -> None:
    retired = RetiredSecret(generation=1, secret_hash="old", retired_at=NOW, cause=cause)
    with pytest.raises(InvalidClient) as caught:
        decide(record(retired_secrets=(retired,)), None, TokenRequest(None), NOW, ISSUER, retired)
    assert caught.value.reason == reason
    assert caught.value.description == "client authentication failed"  # the wire says no more
