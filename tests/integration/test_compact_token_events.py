"""Issue 17, compact token events, against real stores (SQLite and PostgreSQL): a store
written before the compact format (every event in eventsourcing's JSON) keeps loading, a
store holding both formats reads as one history, and a token issued now is stored compactly."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from eventsourcing.persistence import Mapper, MapperDeserialisationError

from adapters.compact_events import ISSUED_TOPIC, JSON_ISSUED_TOPIC
from adapters.event_store import Ledger
from api.settings import Settings
from api.usecases.analytics import analytics_follower
from domain.token import IssuedToken, token_id
from projections.audit_format import audit_message
from tests.integration.helpers import FORM, basic, register, running

NOW = datetime(2026, 12, 3, 9, 30, 15, 250001, tzinfo=UTC)


def issued(n: int, client_id: str) -> IssuedToken.Issued:
    return IssuedToken.issue(
        jti=str(uuid.uuid4()),
        client_id=client_id,
        scopes=["invoices:read", "invoices:write"][: 1 + n % 2],
        audience=["https://api.example.com"],
        issued_at=NOW + timedelta(minutes=n),
        expires_at=NOW + timedelta(minutes=n, seconds=300),
        kid="Gx3kP9vQ2mN7rT5wY8zB1cD4fH6jL0sA-_uE3iO9pKq",
        client_version=2,
        secret_generation=1,
        auth_method="client_secret_basic",
        source_ip="192.0.2.7",
    )


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    store = Ledger(database_url)
    yield store
    store.close()


def append_in_json(ledger: Ledger, events: list[IssuedToken.Issued]) -> None:
    """As a keyledger before the compact format stored them: eventsourcing's own mapper."""
    before = ledger.events.mapper
    ledger.events.mapper = Mapper(transcoder=ledger.construct_transcoder())
    try:
        ledger.append(events)
    finally:
        ledger.events.mapper = before


def test_events_stored_in_json_still_load_as_events_and_as_tokens(ledger: Ledger) -> None:
    client_id = str(uuid.uuid4())
    old = [issued(n, client_id) for n in range(3)]
    append_in_json(ledger, old)
    rows = ledger.read(0, 10)
    assert {row.topic for row in rows} == {JSON_ISSUED_TOPIC}
    assert [vars(ledger.mapper.to_domain_event(row)) for row in rows] == [vars(e) for e in old]
    token = ledger.repository.get(token_id(old[1].jti))
    assert (token.jti, token.scopes, token.expires_at) == (
        old[1].jti,
        old[1].scopes,
        old[1].expires_at,
    )


def test_a_store_with_both_formats_reads_as_one_history(ledger: Ledger) -> None:
    client_id = str(uuid.uuid4())
    old, new = [issued(n, client_id) for n in range(4)], [issued(n, client_id) for n in range(4)]
    append_in_json(ledger, old)
    ledger.append(new)
    rows = ledger.read(0, 10)
    assert [row.topic for row in rows] == [JSON_ISSUED_TOPIC] * 4 + [ISSUED_TOPIC] * 4
    assert sum(len(r.state) for r in rows[4:]) * 3 < sum(len(r.state) for r in rows[:4])

    # The audit topic says the same of an event whichever format it was stored in.
    again = [ledger.mapper.to_domain_event(row) for row in rows]
    for before, after, one, other in zip(again[:4], again[4:], old, new, strict=True):
        assert vars(before) == vars(one)
        assert vars(after) == vars(other)
        a = audit_message(before, 1, "https://auth.example.test")[1]
        b = audit_message(after, 1, "https://auth.example.test")[1]
        assert _without_ids(a) == _without_ids(b)

    # Analytics counts the tokens of both.
    follower = analytics_follower(ledger, 1.0)
    follower.load()
    follower.catch_up()
    issued_count = sum(row.issued for row in follower.view.all() if row.granularity == "day")
    assert issued_count == 8


def _without_ids(message: bytes) -> dict[str, Any]:
    """The message without what differs between two tokens: their ids."""
    body: dict[str, Any] = json.loads(message)
    body.pop("id")
    body["data"].pop("jti", None)
    assert body["data"]["scopes"]
    assert body["data"]["kid"]
    return body


async def test_a_token_issued_now_is_stored_compactly(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        creds = await register(runtime)
        before = runtime.ledger.head()
        response = await http.post(
            "/oauth2/token",
            content="grant_type=client_credentials&scope=invoices:read",
            headers={**basic(creds.client_id, creds.client_secret), **FORM},
        )
        assert response.status_code == 200, response.text
        [row] = runtime.ledger.read(before, 10)
        assert row.topic == ISSUED_TOPIC
        event = runtime.ledger.mapper.to_domain_event(row)
        assert event.client_id == creds.client_id
        assert event.scopes == ["invoices:read"]


async def test_a_token_is_stored_without_its_jti_or_its_kid_and_reads_back_elsewhere(
    settings: Settings,
) -> None:
    """The jti is the token's id (a UUIDv7) and the key is named by the number of the event
    that added it; a process that has never seen the key reads the event back whole."""
    async with running(settings) as (http, runtime):
        creds = await register(runtime)
        before = runtime.ledger.head()
        response = await http.post(
            "/oauth2/token",
            content="grant_type=client_credentials",
            headers={**basic(creds.client_id, creds.client_secret), **FORM},
        )
        assert response.status_code == 200, response.text
        claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
        kid = jwt.get_unverified_header(response.json()["access_token"])["kid"]
        [row] = runtime.ledger.read(before, 10)
        assert uuid.UUID(claims["jti"]).version == 7
        assert row.originator_id == uuid.UUID(claims["jti"])
        assert uuid.UUID(claims["jti"]).bytes not in row.state
        assert kid.encode() not in row.state
        assert len(row.state) < 120  # two scopes, and a test client for an address
    elsewhere = Ledger(settings.database_url)
    try:
        event = elsewhere.mapper.to_domain_event(row)
    finally:
        elsewhere.close()
    assert (event.jti, event.kid, event.client_id) == (claims["jti"], kid, creds.client_id)


def test_a_key_number_the_store_never_gave_fails_to_load_rather_than_guess(
    ledger: Ledger,
) -> None:
    event = issued(0, str(uuid.uuid4()))
    ledger.mapper.key_numbers.learn(9, event.kid)  # as if read back, but no such key event
    stored = ledger.mapper.to_stored_event(event)
    elsewhere = Ledger(ledger.database_url)
    try:
        with pytest.raises(MapperDeserialisationError, match="signing-keys event 9"):
            elsewhere.mapper.to_domain_event(stored)
    finally:
        elsewhere.close()
