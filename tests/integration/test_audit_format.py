"""The audit message format (groundwork for the Kafka audit stream, issue 5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from eventsourcing.domain import Aggregate

from adapters.client_secrets import SecretHasher
from adapters.clock import FixedClock
from adapters.event_store import Ledger
from api.client_admin import ClientAdmin
from domain.client import Client
from domain.client_settings import ClientSettings
from domain.token import IssuedToken
from projections.audit_format import AUDIT_TYPES, audit_event_id, cloud_event, schema_for

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
SOURCE = "https://auth.example.test"


BASES = {"Event", "Created", "Changed"}  # eventsourcing's and ours; never stored themselves


def _event_classes(aggregate: type[Any]) -> set[type[Any]]:
    return {
        value
        for value in vars(aggregate).values()
        if isinstance(value, type)
        and issubclass(value, Aggregate.Event)
        and value.__name__ not in BASES
    }


def test_every_stored_event_type_has_an_audit_type() -> None:
    assert _event_classes(Client) | _event_classes(IssuedToken) == set(AUDIT_TYPES)


@pytest.mark.parametrize("event_class", list(AUDIT_TYPES), ids=lambda c: AUDIT_TYPES[c])
def test_the_committed_schema_is_the_one_the_code_generates(event_class: type[Any]) -> None:
    committed = json.loads((SCHEMAS / f"{AUDIT_TYPES[event_class]}.json").read_text())
    assert committed == schema_for(event_class), "run `make schemas` and commit the result"


def test_there_is_one_schema_file_per_type_and_no_other() -> None:
    assert {p.stem for p in SCHEMAS.glob("*.json")} == set(AUDIT_TYPES.values())


def _lifecycle(sqlite_url: str) -> tuple[Ledger, list[str]]:
    """A client through most of its life, with a token issued and revoked; its secrets."""
    ledger = Ledger(sqlite_url)
    clock = FixedClock(datetime(2026, 11, 20, tzinfo=UTC))
    admin = ClientAdmin(ledger, SecretHasher(b"p" * 32), clock)
    created = admin.register(
        ClientSettings.create(name="job", allowed_scopes=["a"]), actor="cli:ops"
    )
    rotated = admin.rotate_secret(
        created.client_id, grace=timedelta(hours=1), actor="cli:ops", reason="q"
    )
    cid = created.client_id
    for command in [
        lambda c, now: c.revoke_previous_secret(now=now, actor="a", reason=None),
        lambda c, now: c.suspend(now=now, actor="a", reason="leak"),
        lambda c, now: c.reactivate(now=now, actor="a", reason=None),
        lambda c, now: c.change_scopes(
            allowed_scopes=["b"], default_scopes=None, now=now, actor="a", reason=None
        ),
        lambda c, now: c.change_token_lifetime(token_ttl=600, now=now, actor="a", reason=None),
        lambda c, now: c.change_audiences(
            audiences=["https://api.example"], now=now, actor="a", reason=None
        ),
        lambda c, now: c.rename(name="job2", now=now, actor="a", reason=None),
        lambda c, now: c.revoke_tokens(
            cutoff=now, secret_generation=1, now=now, actor="a", reason=None
        ),
    ]:
        admin.change(cid, command)
    now = clock.now()
    token = IssuedToken(
        jti="j1",
        client_id=cid,
        scopes=["b"],
        audience=["https://api.example"],
        issued_at=now,
        expires_at=now + timedelta(seconds=600),
        kid="k",
        client_version=9,
        secret_generation=2,
        auth_method="client_secret_basic",
    )
    token.revoke(now=now, actor=cid, reason="done")
    ledger.save(token)
    admin.change(cid, lambda c, at: c.delete(now=at, actor="a", reason=None))
    return ledger, [created.client_secret, rotated.client_secret]


def test_every_event_of_a_real_history_validates_and_carries_no_secret(sqlite_url: str) -> None:
    ledger, secrets = _lifecycle(sqlite_url)
    try:
        notifications = list(ledger.read(0, 1000))
        messages = [
            cloud_event(ledger.mapper.to_domain_event(n), n.id, SOURCE) for n in notifications
        ]
    finally:
        ledger.close()
    assert {m["type"] for m in messages} == set(AUDIT_TYPES.values())
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    for message, notification in zip(messages, notifications, strict=True):
        schema = json.loads((SCHEMAS / f"{message['type']}.json").read_text())
        jsonschema.validate(message, schema, format_checker=checker)
        assert message["sequence"] == str(notification.id)
        text = json.dumps(message)
        assert "hmac-sha256" not in text
        assert not any(secret in text for secret in secrets)
    client_messages = [m for m in messages if m["type"].startswith("keyledger.client.")]
    assert len({m["subject"] for m in messages}) == 1  # every message names the one client
    assert client_messages[0]["data"]["actor"] == "cli:ops"


def test_an_events_id_is_the_same_every_time_it_is_published(sqlite_url: str) -> None:
    ledger, _ = _lifecycle(sqlite_url)
    try:
        events = [ledger.mapper.to_domain_event(n) for n in ledger.read(0, 1000)]
        again = [ledger.mapper.to_domain_event(n) for n in ledger.read(0, 1000)]
    finally:
        ledger.close()
    ids = [audit_event_id(e) for e in events]
    assert ids == [audit_event_id(e) for e in again]
    assert len(set(ids)) == len(ids)
