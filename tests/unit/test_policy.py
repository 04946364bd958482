"""The client_credentials decision (RFC 6749 §4.4, §5.2; RFC 8707)."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.client import PRIVATE_KEY_JWT, SecretSlot
from domain.client_record import ClientRecord, RetiredSecret
from domain.oauth_errors import InvalidClient, InvalidScope, InvalidTarget
from domain.policy import (
    TokenRequest,
    authenticate_by_assertion,
    decide,
    grant_for,
    is_resource_indicator,
)

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


def test_requesting_every_allowed_scope_grants_them_all() -> None:
    grant = decide(record(), SLOT, TokenRequest(scope="write read"), NOW, ISSUER)
    assert grant.scopes == {"read", "write"}


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


# The reason of each refusal (the audit stream and the detector read it), and what a grant keeps.


def test_the_grant_keeps_the_generation_of_the_secret_that_matched() -> None:
    second = SecretSlot(generation=2, secret_hash="h2", expires_at=NOW + timedelta(hours=1))
    client = record(secrets=(SecretSlot(3, "h3", None), second))
    assert decide(client, second, TokenRequest(None), NOW, ISSUER).secret_generation == 2


@pytest.mark.parametrize("cause", ["revoked", "expired"])
def test_a_retired_secrets_refusal_keeps_its_generation(cause: str) -> None:
    retired = RetiredSecret(generation=4, secret_hash="old", retired_at=NOW, cause=cause)
    with pytest.raises(InvalidClient) as caught:
        decide(record(retired_secrets=(retired,)), None, TokenRequest(None), NOW, ISSUER, retired)
    assert caught.value.secret_generation == 4


def test_an_expired_secrets_refusal_keeps_its_generation() -> None:
    expired = SecretSlot(generation=5, secret_hash="h", expires_at=NOW)
    with pytest.raises(InvalidClient) as caught:
        decide(record(secrets=(expired,)), expired, TokenRequest(None), NOW, ISSUER)
    assert (caught.value.reason, caught.value.secret_generation) == ("expired_secret", 5)


def test_a_wrong_secret_names_no_generation() -> None:
    with pytest.raises(InvalidClient) as caught:
        decide(record(), None, TokenRequest(None), NOW, ISSUER)
    assert caught.value.secret_generation is None


def test_a_secret_presented_for_a_private_key_jwt_client_is_an_auth_method_mismatch() -> None:
    keyed = record(auth_method=PRIVATE_KEY_JWT, secrets=())
    with pytest.raises(InvalidClient) as caught:
        decide(keyed, None, TokenRequest(None), NOW, ISSUER)
    assert caught.value.reason == "auth_method_mismatch"


def test_a_wrong_secret_for_a_suspended_client_is_named_as_a_wrong_secret() -> None:
    with pytest.raises(InvalidClient) as caught:
        decide(record(status="suspended"), None, TokenRequest(None), NOW, ISSUER)
    assert caught.value.reason == "wrong_secret"


@pytest.mark.parametrize(
    ("client", "reason"),
    [
        (None, "unknown_client"),
        (record(status="deleted", auth_method=PRIVATE_KEY_JWT), "client_deleted"),
        (record(status="deleted"), "client_deleted"),  # deleted, whatever method it had
        (record(), "auth_method_mismatch"),
        (record(status="suspended", auth_method=PRIVATE_KEY_JWT), "client_suspended"),
    ],
    ids=["unknown", "deleted", "deleted-secret-client", "secret-client", "suspended"],
)
def test_an_assertion_authenticates_only_an_active_private_key_jwt_client(
    client: ClientRecord | None, reason: str
) -> None:
    with pytest.raises(InvalidClient) as caught:
        authenticate_by_assertion(client)
    assert (caught.value.error, caught.value.reason) == ("invalid_client", reason)


def test_an_active_private_key_jwt_client_is_authenticated_by_its_assertion() -> None:
    keyed = record(auth_method=PRIVATE_KEY_JWT, secrets=())
    assert authenticate_by_assertion(keyed) is keyed


def test_a_grant_to_an_assertion_client_used_no_secret() -> None:
    keyed = record(auth_method=PRIVATE_KEY_JWT, secrets=())
    grant = grant_for(authenticate_by_assertion(keyed), 0, TokenRequest(None), NOW, ISSUER)
    assert (grant.client_id, grant.secret_generation, grant.scopes) == ("c1", 0, {"read"})


@pytest.mark.parametrize(
    ("client", "scope", "reason"),
    [
        (record(default_scopes=frozenset()), None, "no_default_scope"),
        (record(), "read  write", "malformed_scope"),
        (record(), "read admin", "scope_not_allowed"),
    ],
)
def test_each_scope_refusal_names_its_reason(
    client: ClientRecord, scope: str | None, reason: str
) -> None:
    with pytest.raises(InvalidScope) as caught:
        decide(client, SLOT, TokenRequest(scope), NOW, ISSUER)
    assert (caught.value.error, caught.value.status_code) == ("invalid_scope", 400)
    assert caught.value.reason == reason


def test_a_malformed_scope_names_the_bad_token_in_the_description() -> None:
    with pytest.raises(InvalidScope) as caught:
        decide(record(), SLOT, TokenRequest('read "x'), NOW, ISSUER)
    assert caught.value.description == "malformed scope: '\"x'"


@pytest.mark.parametrize(
    ("resource", "reason"),
    [
        ("https://a.example#x", "malformed_resource"),
        ("a.example/api", "malformed_resource"),
        (" https://a.example", "malformed_resource"),
        ("https://c.example", "resource_not_allowed"),
    ],
)
def test_each_resource_refusal_names_its_reason(resource: str, reason: str) -> None:
    client = record(audiences=("https://a.example", " https://a.example", "a.example/api"))
    with pytest.raises(InvalidTarget) as caught:
        decide(client, SLOT, TokenRequest(None, (resource,)), NOW, ISSUER)
    assert (caught.value.error, caught.value.reason) == ("invalid_target", reason)


def test_a_malformed_resource_says_what_a_resource_must_be() -> None:
    client = record(audiences=("https://a.example#x",))
    with pytest.raises(InvalidTarget) as caught:
        decide(client, SLOT, TokenRequest(None, ("https://a.example#x",)), NOW, ISSUER)
    assert caught.value.description == "resource must be an absolute URI without fragment"


@pytest.mark.parametrize(
    ("value", "indicator"),
    [
        ("https://api.example/v1", True),
        ("urn:example:api", True),
        ("api.example/v1", False),
        ("https://api.example/v1#", False),
        ("#https://api.example", False),
        ("https://api.example ", False),
    ],
)
def test_a_resource_indicator_is_an_absolute_uri_without_fragment_or_spaces(
    value: str, indicator: bool
) -> None:
    assert is_resource_indicator(value) is indicator


def test_requested_resources_become_a_sorted_audience_without_repeats() -> None:
    client = record(audiences=("https://a.example", "https://b.example"))
    asked = TokenRequest(None, ("https://b.example", "https://a.example", "https://b.example"))
    assert decide(client, SLOT, asked, NOW, ISSUER).audience == (
        "https://a.example",
        "https://b.example",
    )
