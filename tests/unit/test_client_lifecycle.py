"""The Client aggregate's lifecycle rules (issue 3)."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.client import MAX_QUOTA, Client, ClientCommandRejected
from domain.client_settings import ClientSettings, InvalidClientSettings
from projections.clients import evolve

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
WHO = {"actor": "cli:ops", "reason": None}


def client() -> Client:
    settings = ClientSettings.create(name="job", allowed_scopes=["a", "b"], default_scopes=["a"])
    return Client.register(
        client_id=uuid4(), settings=settings, secret_hash="h1", now=NOW, actor="t"
    )


def test_rotation_makes_the_new_secret_current_and_keeps_the_old_one_for_the_grace() -> None:
    c = client()
    c.rotate_secret(secret_hash="h2", now=NOW, grace=timedelta(hours=1), **WHO)
    assert [(s.generation, s.secret_hash) for s in c.secrets] == [(2, "h2"), (1, "h1")]
    assert c.secrets[1].expires_at == NOW + timedelta(hours=1)
    assert c.secrets[0].expires_at is None


def test_at_most_two_secrets_live_at_once() -> None:
    c = client()
    c.rotate_secret(secret_hash="h2", now=NOW, grace=timedelta(hours=1), **WHO)
    c.rotate_secret(secret_hash="h3", now=NOW, grace=timedelta(hours=1), **WHO)
    assert [s.generation for s in c.secrets] == [3, 2]


@pytest.mark.parametrize("grace", [timedelta(seconds=-1), timedelta(days=30, seconds=1)])
def test_grace_is_between_zero_and_thirty_days(grace: timedelta) -> None:
    with pytest.raises(InvalidClientSettings, match="grace"):
        client().rotate_secret(secret_hash="h2", now=NOW, grace=grace, **WHO)


def test_revoking_the_previous_secret_leaves_only_the_current_one() -> None:
    c = client()
    c.rotate_secret(secret_hash="h2", now=NOW, grace=timedelta(hours=1), **WHO)
    c.revoke_previous_secret(now=NOW, **WHO)
    assert [s.generation for s in c.secrets] == [2]


def test_there_is_no_previous_secret_to_revoke_after_its_grace() -> None:
    c = client()
    c.rotate_secret(secret_hash="h2", now=NOW, grace=timedelta(seconds=5), **WHO)
    with pytest.raises(ClientCommandRejected, match="no previous secret"):
        c.revoke_previous_secret(now=NOW + timedelta(seconds=5), **WHO)


def test_suspension_needs_a_reason() -> None:
    with pytest.raises(InvalidClientSettings, match="reason"):
        client().suspend(now=NOW, actor="cli:ops", reason=" ")


def test_suspend_and_reactivate_are_transitions_not_repeats() -> None:
    c = client()
    with pytest.raises(ClientCommandRejected):
        c.reactivate(now=NOW, **WHO)
    c.suspend(now=NOW, actor="cli:ops", reason="leak")
    with pytest.raises(ClientCommandRejected):
        c.suspend(now=NOW, actor="cli:ops", reason="again")
    c.reactivate(now=NOW, **WHO)
    assert c.status == "active"


def test_a_deleted_client_accepts_no_command_and_has_no_secret() -> None:
    c = client()
    c.delete(now=NOW, **WHO)
    assert (c.status, c.secrets) == ("deleted", [])
    with pytest.raises(ClientCommandRejected, match="deleted"):
        c.reactivate(now=NOW, **WHO)
    with pytest.raises(ClientCommandRejected, match="deleted"):
        c.rotate_secret(secret_hash="h2", now=NOW, grace=timedelta(0), **WHO)


def test_new_scopes_keep_only_the_defaults_that_stay_allowed() -> None:
    c = client()
    c.change_scopes(allowed_scopes=["b", "c"], default_scopes=None, now=NOW, **WHO)
    assert (c.allowed_scopes, c.default_scopes) == (["b", "c"], [])


@pytest.mark.parametrize("ttl", [59, 86_401])
def test_lifetime_changes_are_bounded(ttl: int) -> None:
    with pytest.raises(InvalidClientSettings, match="lifetime"):
        client().change_token_lifetime(token_ttl=ttl, now=NOW, **WHO)


def test_token_revocation_cannot_reach_into_the_future_or_unknown_secrets() -> None:
    c = client()
    with pytest.raises(InvalidClientSettings, match="future"):
        c.revoke_tokens(cutoff=NOW + timedelta(seconds=1), secret_generation=None, now=NOW, **WHO)
    with pytest.raises(InvalidClientSettings, match="generation 2"):
        c.revoke_tokens(cutoff=NOW, secret_generation=2, now=NOW, **WHO)


def test_every_change_records_actor_and_reason() -> None:
    c = client()
    c.suspend(now=NOW, actor="admin-client-1", reason="compromised host")
    suspended = c.collect_events()[-2]
    assert isinstance(suspended, Client.Suspended)
    assert (suspended.actor, suspended.reason, suspended.at) == (
        "admin-client-1",
        "compromised host",
        NOW,
    )


def test_a_suspension_voids_every_token_issued_before_it_in_the_same_save() -> None:
    c = client()
    c.collect_events()
    c.suspend(now=NOW, actor="admin-client-1", reason="compromised host")
    suspended, cut_off = c.collect_events()
    assert isinstance(suspended, Client.Suspended)
    assert isinstance(cut_off, Client.TokensRevoked)
    assert (cut_off.cutoff, cut_off.secret_generation) == (NOW, None)
    assert (cut_off.actor, cut_off.reason) == ("admin-client-1", "suspended: compromised host")


@pytest.mark.parametrize("value", [0, -1, True, MAX_QUOTA + 1])
def test_a_quota_out_of_range_is_refused(value: int) -> None:
    with pytest.raises(InvalidClientSettings, match="quota"):
        client().change_quotas(tokens_per_minute=value, tokens_per_day=None, now=NOW, **WHO)


def test_quotas_are_set_together_and_none_lifts_one() -> None:
    c = client()
    c.change_quotas(tokens_per_minute=10, tokens_per_day=1000, now=NOW, **WHO)
    c.change_quotas(tokens_per_minute=None, tokens_per_day=500, now=NOW, **WHO)
    assert (c.tokens_per_minute, c.tokens_per_day) == (None, 500)


def test_the_default_audience_must_be_allowed_and_follows_audience_changes() -> None:
    with pytest.raises(InvalidClientSettings, match="default audience"):
        ClientSettings.create(
            name="x", allowed_scopes=["a"], audiences=["https://a"], default_audience="https://b"
        )
    settings = ClientSettings.create(
        name="x",
        allowed_scopes=["a"],
        audiences=["https://a", "https://b"],
        default_audience="https://a",
    )
    client = Client.register(
        client_id=uuid4(), settings=settings, secret_hash="h", now=NOW, actor="t"
    )
    client.change_audiences(audiences=["https://a", "https://c"], now=NOW, actor="t", reason=None)
    assert client.default_audience == "https://a"  # kept: still allowed
    client.change_audiences(audiences=["https://c"], now=NOW, actor="t", reason=None)
    assert client.default_audience is None  # dropped with its audience
    record = None
    for event in client.collect_events():
        record = evolve(record, event)
    assert record is not None
    assert record.default_audience is None
    assert record.audiences == ("https://c",)
