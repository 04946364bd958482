"""The clients read model remembers retired secret hashes, to name a leaked old secret's use."""

from datetime import UTC, datetime, timedelta
from functools import reduce
from uuid import uuid4

from domain.client import Client
from domain.client_record import KEPT_RETIRED_SECRETS, ClientRecord
from domain.client_settings import ClientSettings
from projections.clients import evolve

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
WHO = {"actor": "cli:ops", "reason": None}


def fold(client: Client) -> ClientRecord:
    record = reduce(evolve, client.collect_events(), None)
    assert record is not None
    return record


def new_client() -> Client:
    settings = ClientSettings.create(name="job", allowed_scopes=["a"])
    return Client.register(
        client_id=uuid4(), settings=settings, secret_hash="h1", now=NOW, actor="t"
    )


def test_a_revoked_previous_secret_is_retired_as_revoked() -> None:
    c = new_client()
    c.rotate_secret(secret_hash="h2", now=NOW, grace=timedelta(hours=1), **WHO)
    c.revoke_previous_secret(now=NOW + timedelta(minutes=5), **WHO)
    retired = fold(c).retired_secrets
    assert [(r.generation, r.secret_hash, r.cause) for r in retired] == [(1, "h1", "revoked")]
    assert retired[0].retired_at == NOW + timedelta(minutes=5)


def test_a_previous_secret_past_its_grace_is_retired_as_expired_at_the_next_rotation() -> None:
    c = new_client()
    c.rotate_secret(secret_hash="h2", now=NOW, grace=timedelta(hours=1), **WHO)
    c.rotate_secret(secret_hash="h3", now=NOW + timedelta(hours=2), grace=timedelta(0), **WHO)
    retired = fold(c).retired_secrets
    assert [(r.generation, r.cause, r.retired_at) for r in retired] == [
        (1, "expired", NOW + timedelta(hours=1))
    ]


def test_a_grace_cut_short_by_a_newer_rotation_counts_as_revoked() -> None:
    c = new_client()
    c.rotate_secret(secret_hash="h2", now=NOW, grace=timedelta(hours=1), **WHO)
    c.rotate_secret(
        secret_hash="h3", now=NOW + timedelta(minutes=1), grace=timedelta(hours=1), **WHO
    )
    assert [(r.generation, r.cause) for r in fold(c).retired_secrets] == [(1, "revoked")]


def test_only_the_newest_retired_secrets_are_kept() -> None:
    c = new_client()
    for n in range(2, KEPT_RETIRED_SECRETS + 5):
        c.rotate_secret(
            secret_hash=f"h{n}", now=NOW + timedelta(hours=n), grace=timedelta(0), **WHO
        )
    record = fold(c)
    assert len(record.retired_secrets) == KEPT_RETIRED_SECRETS
    assert record.retired_secrets[-1].generation == record.secrets[1].generation - 1


def test_retired_secrets_survive_the_durable_tables_json() -> None:
    c = new_client()
    c.rotate_secret(secret_hash="h2", now=NOW, grace=timedelta(hours=1), **WHO)
    c.revoke_previous_secret(now=NOW, **WHO)
    record = fold(c)
    assert ClientRecord.from_json(record.to_json()) == record
    assert "h1" not in str(record.public_view())  # admins never see hashes
